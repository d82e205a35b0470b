"""The one way an operation fails a single host: pyinfra keeps going on the others."""

from __future__ import annotations

import shlex

from pyinfra import host


def host_reason(message: str) -> str:
    """A reason as the operator reads it among many hosts' output: it starts with the host."""
    return f"host {host.name}: {message}"


def fail_host(message: str) -> str:
    """A command that fails this host alone, with a one-line reason naming the host on stderr."""
    return f"echo {shlex.quote(host_reason(message))} >&2; exit 1"
