"""What an uninstall needs to read beyond pyinfra's file facts: the backups our settings merge kept."""

from __future__ import annotations

import shlex

from pyinfra.api import FactBase

from ..claude.operations import BACKUP_SUFFIX


class SettingsBackups(FactBase[list[str]]):
    """Our backups of a settings file (``<path>.<timestamp>.ollama-claude.bak``), oldest first."""

    def default(self) -> list[str]:
        return []

    def command(self, path: str) -> str:
        return f'for f in {shlex.quote(path)}.*.{BACKUP_SUFFIX}; do [ -f "$f" ] && echo "$f"; done; true'

    def process(self, output: list[str]) -> list[str]:
        return sorted(output)
