"""
Who runs an operation: every operation honours the connection's privilege settings, none hard-codes its own.

A fleet connects as root, or as a user with ``_sudo: True`` (NOPASSWD, or with ``_sudo_password``) in its host
data; pyinfra applies those to every operation and fact, so operations pass nothing. The one exception is this
seam: on macOS the deploy connects as the laptop's own user (its LaunchAgent and home are that user's), and
only the system parts (the release under /usr/local) take sudo. Reworking macOS means changing this function.
"""

from __future__ import annotations

from typing import Any


def system_privilege(darwin: bool) -> dict[str, Any]:
    """Global arguments for an operation that changes system paths (/usr/local, /etc)."""
    return {"_sudo": True} if darwin else {}
