"""
The Ollama service's drop-ins beside ours: an override.conf an earlier version of this toolkit wrote is migrated
(removed once ours exists); a user's drop-ins, override.conf included, are read and never changed.
"""

from __future__ import annotations

import shlex
from collections.abc import Iterator

from pyinfra import host, logger
from pyinfra.api import FactBase, operation
from pyinfra.facts.files import FileContents

from .config import DROP_IN_DIR, DROP_IN_MARKER, DROP_IN_PATH, drop_in_settings, legacy_drop_in_leftovers

_FILE = "==> "


class ServiceDropIns(FactBase[dict[str, list[str]]]):
    """Every ``*.conf`` in the Ollama unit's drop-in directory: ``{path: lines}``, in systemd's (lexical) order."""

    def default(self) -> dict[str, list[str]]:
        return {}

    def command(self, directory: str = DROP_IN_DIR) -> str:
        return (f'for f in {shlex.quote(directory)}/*.conf; do [ -f "$f" ] || continue; '
                f'echo "{_FILE}$f"; cat "$f"; echo; done; true')

    def process(self, output: list[str]) -> dict[str, list[str]]:
        files: dict[str, list[str]] = {}
        current: list[str] | None = None
        for line in output:
            if line.startswith(_FILE):
                current = files.setdefault(line.removeprefix(_FILE), [])
            elif current is not None:
                current.append(line)
        return dict(sorted(files.items()))


def override_warnings(drop_ins: dict[str, list[str]], environment: list[str], ours: str = DROP_IN_PATH
                      ) -> list[str]:
    """
    One line per drop-in of someone else's that sets a variable we manage: before ours in systemd's order our
    value wins; after ours (a name sorting past ours) theirs does, and verify then reads what the service got.
    """
    warnings = []
    for path, lines in drop_ins.items():
        if path == ours or (lines and lines[0].startswith(DROP_IN_MARKER)):
            continue
        clash = sorted(set(drop_in_settings(lines).get("Environment", [])) & set(environment))
        if not clash:
            continue
        names = ", ".join(clash)
        if path < ours:
            warnings.append(f"{path} sets {names}, which ollama-claude manages: the value from group_data "
                            f"({ours}) wins; change it there")
        else:
            warnings.append(f"{path} sets {names} and sorts after {ours}, so its value wins over group_data's")
    return warnings


@operation()
def legacy_drop_in_removed(path: str, environment: list[str]) -> Iterator[str]:
    """
    Remove the override.conf an earlier version of this toolkit wrote (our header, nothing but our settings),
    once our own drop-in is in place. One the user wrote, or one of ours the user added settings to, stays.

    + path: the old drop-in (``ollama.service.d/override.conf``)
    + environment: the variables our drop-in sets now (besides the ones we always manage)
    """
    lines = host.get_fact(FileContents, path=path)
    if lines is None:
        host.noop(f"{path} is absent")
        return
    leftovers = legacy_drop_in_leftovers(lines, dict.fromkeys(environment, ""))
    if not leftovers:
        yield f"rm -f {shlex.quote(path)}"
        return
    if lines[0].startswith(DROP_IN_MARKER):
        logger.warning(f"{host.name}: {path} has ollama-claude's old header but also settings of someone else's "
                       f"({', '.join(leftovers)}): left in place; ours now live in {DROP_IN_PATH}")
    host.noop(f"{path} is not ollama-claude's, left in place")
