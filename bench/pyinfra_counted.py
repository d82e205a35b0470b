"""
`python bench/pyinfra_counted.py COUNTS.json <pyinfra arguments>`: the pyinfra CLI, unchanged, counting per host
what its SSH connector does: each shell command (facts, operations, and the ones a file upload runs itself) and
each file transfer is at least one round trip to the host. The counts go to COUNTS.json when pyinfra exits:
{"<host>": {"commands": n, "transfers": n}}.
"""

from __future__ import annotations

import atexit
import functools
import json
import sys
from collections import defaultdict
from pathlib import Path

KINDS = {"run_shell_command": "commands", "put_file": "transfers", "get_file": "transfers"}


def install_counters(connector: type, counts: dict) -> None:
    """Wrap the connector's round-trip methods so each call adds one to counts[host][kind]."""
    for method_name, kind in KINDS.items():
        method = getattr(connector, method_name)

        @functools.wraps(method)
        def counted(self, *args, _method=method, _kind=kind, **kwargs):
            counts[self.host.name][_kind] += 1
            return _method(self, *args, **kwargs)

        setattr(connector, method_name, counted)


def new_counts() -> dict:
    return defaultdict(lambda: dict.fromkeys(("commands", "transfers"), 0))


def main() -> None:
    from pyinfra.connectors.ssh import SSHConnector
    from pyinfra_cli.main import main as pyinfra_main

    out = Path(sys.argv.pop(1))
    counts = new_counts()
    install_counters(SSHConnector, counts)
    atexit.register(lambda: out.write_text(json.dumps(counts, sort_keys=True)))
    sys.argv[0] = "pyinfra"
    pyinfra_main()


if __name__ == "__main__":
    main()
