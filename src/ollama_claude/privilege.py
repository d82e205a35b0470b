"""
Who runs an operation: every operation honours the connection's privilege settings, none hard-codes its own.

A Linux fleet connects as root, or as a user with ``_sudo: True`` (NOPASSWD, or with ``_sudo_password``) in its
host data; pyinfra applies those to every operation and fact, so operations pass nothing. A Mac is reached as
its laptop user (Remote Login, or ``@local`` by the user) and the LaunchAgent and home files are that user's, so
a host-wide ``_sudo`` would send them to ``/var/root`` and ``gui/0`` (pyinfra runs ``sudo -H``); there the
system parts (/usr/local, /opt, /Library) take sudo per operation, and so do another user's files. Connected as
root (as MDM tools run), sudo is a no-op.
"""

from __future__ import annotations

from typing import Any

from pyinfra import host
from pyinfra.facts.server import Kernel

from .accounts import ConnectionUser


def _darwin() -> bool:
    return host.get_fact(Kernel) == "Darwin"


def system_privilege() -> dict[str, Any]:
    """Global arguments for an operation that changes system paths (/usr/local, /opt, /etc, /Library)."""
    return {"_sudo": True} if _darwin() else {}


def user_privilege(user: str) -> dict[str, Any]:
    """Global arguments for an operation on ``user``'s own files (home, LaunchAgent): on a Mac, sudo when the
    deploy connected as another user."""
    return {"_sudo": True} if _darwin() and host.get_fact(ConnectionUser) != user else {}
