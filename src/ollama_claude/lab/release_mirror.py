"""
The lab's release mirror as a lab service: built in the lab's own directory (so fault switches of one lab never
reach another), served on the lab bridge address, and every host's data pointed at it. This is the only place
where the lab tells the deploy where to download from; the deploy itself treats it like any mirror.
"""

from __future__ import annotations

import sys
from pathlib import Path

from .errors import LabError
from .fleet import Lab
from .mirror import build_mirror
from .system import wait_until_serving

MIRROR_PORT = 8470
MIRROR_SERVICE = "release-mirror"
#: The unprivileged account every lab host has; it is the user Claude Code is configured for.
LAB_USER = "dev"


def mirror_root(lab: Lab) -> Path:
    return lab.dir / "mirror"


def gateway_ip(lab: Lab) -> str:
    """The bridge address without its prefix length: where lab services listen."""
    return lab.require_state().gateway.split("/")[0]


def mirror_url(lab: Lab) -> str:
    return f"http://{gateway_ip(lab)}:{MIRROR_PORT}"


def serve_release_mirror(lab: Lab, timeout: float = 20, release_size: int | None = None) -> str:
    """Build (cached) and start the mirror on the bridge address; point the hosts' data at it; return its URL.

    release_size pads the main Linux archives (see build_mirror; None keeps what this lab's mirror has)."""
    root = build_mirror(mirror_root(lab), release_size=release_size)
    lab.stop_service(MIRROR_SERVICE)
    argv = [sys.executable, "-m", "ollama_claude.lab.mirror", "serve", "--root", str(root),
            "--bind", gateway_ip(lab), "--port", str(MIRROR_PORT)]
    lab.start_service(MIRROR_SERVICE, argv)
    url = mirror_url(lab)
    try:
        wait_until_serving(f"{url}/npm/", timeout)
    except OSError as error:
        raise LabError(f"the lab's release mirror did not answer at {url} within {timeout}s: {error}") from None
    lab.set_host_data(
        ollama_download_url=f"{url}/ollama/releases/download",
        claude_code_registry=f"{url}/npm",
        claude_users=[LAB_USER],
    )
    return url
