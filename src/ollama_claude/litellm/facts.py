"""What the proxy route reads from a host: installed virtualenvs and whether the proxy answers."""

from __future__ import annotations

import shlex

from pyinfra.api import FactBase

from ..ollama_api import api_command, parse_response

#: Written last by the install script: a virtualenv without it is a broken install and is redone.
MARKER = ".ollama-claude-complete"


class LitellmVirtualenvs(FactBase[dict[str, bool]]):
    """``{version: complete}`` for each virtualenv under ``root`` (``<root>/<version>``)."""

    def default(self) -> dict[str, bool]:
        return {}

    def command(self, root: str) -> str:
        return (
            f"for d in {shlex.quote(root)}/*/; do [ -d \"$d\" ] || continue; n=$(basename \"$d\"); "
            f'if [ -f "$d/{MARKER}" ]; then echo "complete $n"; else echo "partial $n"; fi; done; true'
        )

    def process(self, output: list[str]) -> dict[str, bool]:
        found = {}
        for line in output:
            state, _, version = line.partition(" ")
            if version:
                found[version] = state == "complete"
        return found


class LitellmAlive(FactBase[bool]):
    """True when the proxy at ``url`` answers its liveliness check (no key needed); False when down."""

    def default(self) -> bool:
        return False

    def command(self, url: str) -> str:
        return api_command(url, "/health/liveliness", "GET")

    def process(self, output: list[str]) -> bool:
        return parse_response(output).ok


class DirectoryEntries(FactBase[list[str]]):
    """Names in a directory (dot-files included); empty when it is missing."""

    def default(self) -> list[str]:
        return []

    def command(self, path: str) -> str:
        return f"ls -A {shlex.quote(path)} 2>/dev/null; true"

    def process(self, output: list[str]) -> list[str]:
        return sorted(output)
