"""The real Claude Code CLI run by tests as an unprivileged user: the account, the binary where that user can
reach it, and a workspace (HOME + project) the user owns. pytest's tmp_path is root-only, and Claude Code refuses
its headless flags as root."""

from __future__ import annotations

import contextlib
import os
import pwd
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path

from ollama_claude.lab.releases import CLAUDE_CODE_VERSION, claude_cli_path


def ensure_user(name: str, shell: str = "/usr/sbin/nologin", home: bool = False) -> str:
    """The account, created once (with a home directory when ``home``)."""
    try:
        pwd.getpwnam(name)
    except KeyError:
        subprocess.run(["useradd", "-m" if home else "-M", "-s", shell, name], check=True)
    return name


@contextlib.contextmanager
def linked_claude(prefix: str, version: str = CLAUDE_CODE_VERSION) -> Iterator[Path]:
    """The pinned native binary, hard-linked into a directory any user can traverse."""
    directory = Path(tempfile.mkdtemp(prefix=prefix))
    directory.chmod(0o755)
    binary = directory / "claude"
    os.link(claude_cli_path(version), binary)
    try:
        yield binary
    finally:
        shutil.rmtree(directory)


@contextlib.contextmanager
def user_workspace(user: str, prefix: str, directories: tuple[str, ...] = ("home", "project")) -> Iterator[Path]:
    """A fresh directory holding ``directories``, each owned by ``user``."""
    root = Path(tempfile.mkdtemp(prefix=prefix))
    for sub in directories:
        (root / sub).mkdir()
        shutil.chown(root / sub, user, user)
    root.chmod(0o755)
    try:
        yield root
    finally:
        shutil.rmtree(root)
