"""
The lab user's sudo, so deploys can connect the way most fleets allow: a non-root SSH user with sudo.

Modes per host: ``nopasswd`` (sudo without a password, the lab's default), ``password`` (sudo asks for the lab's
password, kept in the lab state for the inventory's ``_sudo_password``) or ``none`` (no sudo at all).
"""

from __future__ import annotations

import secrets
import shlex

from .errors import LabError
from .rootfs import LAB_USER

MODES = ("nopasswd", "password", "none")
DEFAULT_MODE = "nopasswd"
SUDOERS_FILE = "/etc/sudoers.d/ollama-claude-lab"


def check_mode(mode: str) -> str:
    if mode not in MODES:
        raise LabError(f"dev sudo mode {mode!r}: choose one of {', '.join(MODES)}")
    return mode


def new_password() -> str:
    return secrets.token_urlsafe(12)


def sudoers_line(mode: str, user: str = LAB_USER) -> str | None:
    """The sudoers rule for a mode; None for ``none``."""
    if check_mode(mode) == "none":
        return None
    tag = "NOPASSWD: " if mode == "nopasswd" else ""
    return f"{user} ALL=(ALL:ALL) {tag}ALL\n"


def setup_script(mode: str, password: str, user: str = LAB_USER) -> str:
    """Run as root on a host: the sudoers rule (checked by visudo before it is moved in) and the password."""
    line = sudoers_line(mode, user)
    steps = [f"echo {shlex.quote(f'{user}:{password}')} | chpasswd"]
    if line is None:
        steps.append(f"rm -f {SUDOERS_FILE}")
    else:
        staged = f"{SUDOERS_FILE}.new"
        steps += [
            f"printf %s {shlex.quote(line)} > {staged}",
            f"chmod 0440 {staged}",
            f"visudo -cqf {staged}",
            f"mv -f {staged} {SUDOERS_FILE}",
        ]
    # sudo keeps a timestamp per user and terminal: forget it, so a password mode asks again.
    steps.append(f"rm -rf /run/sudo/ts/{user}")
    return "set -e; " + "; ".join(steps)
