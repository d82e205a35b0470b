"""
Shell rc files as users keep them: a ``~/.bashrc`` may be a symlink into a dotfiles repository (stow, chezmoi,
yadm). We change the file the link points to and leave the link alone, so the user's repository keeps owning it.
"""

from __future__ import annotations

import shlex

from pyinfra.api import FactBase

_LINK = "link "


class SymlinkTarget(FactBase[str | None]):
    """
    Where ``path`` leads when it is a symlink (followed to the end, made absolute): the file to change instead
    of the link. None when ``path`` is not a symlink; ``""`` when the link cannot be resolved (a loop).
    """

    def command(self, path: str) -> str:
        quoted = shlex.quote(path)
        return f'if [ -L {quoted} ]; then echo "{_LINK}$(readlink -f {quoted} 2>/dev/null)"; fi; true'

    def process(self, output: list[str]) -> str | None:
        for line in output:
            if line.startswith(_LINK.rstrip()):
                return line[len(_LINK):].strip()
        return None


def backup_command(path: str, suffix: str) -> str:
    """A timestamped copy of the file's content beside ``path`` (a link is followed: the copy is a file)."""
    return f'cp -pL {shlex.quote(path)} "{path}.$(date +%Y%m%d%H%M%S).{suffix}"'
