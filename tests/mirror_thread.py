"""A lab mirror served from a thread of the test process, on loopback, for tests that need no lab."""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Iterator
from pathlib import Path

from ollama_claude.lab import mirror


@contextlib.contextmanager
def serving(root: Path) -> Iterator[str]:
    """Serve root on a free loopback port; yields the base URL, shuts the server down afterwards."""
    server = mirror.make_server(root)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()
