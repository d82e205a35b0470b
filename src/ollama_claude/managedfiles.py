"""
Files a deploy writes and may take back: each carries our marker in its first lines (or is exactly what we
render), and only such a file is ever removed. Shared by the deploys that retire a part (the allowlist, the
LiteLLM proxy) and by uninstall.
"""

from __future__ import annotations

import shlex
from collections.abc import Iterator

from pyinfra import host
from pyinfra.api import operation
from pyinfra.facts.files import FileContents

#: Every file we render says so in its first lines (units, drop-ins, env files, wrappers, plists).
MANAGED_MARKER = "Managed by ollama-claude"


def _then(command: str, after: str | None) -> str:
    return f"{command} && {after}" if after else command


def ours(lines: list[str], content: str | list[str] | None) -> bool:
    """A file is ours when it is exactly ``content`` (one of them), or (none given) when its header has our marker."""
    if isinstance(content, str):
        return lines == content.splitlines()
    if content is not None:
        return any(lines == one.splitlines() for one in content)
    return any(MANAGED_MARKER in line for line in lines[:3])


@operation()
def file_removed(
    path: str, content: str | list[str] | None = None, before: str | None = None, after: str | None = None
) -> Iterator[str]:
    """
    Remove a file we wrote; a file someone else wrote (or changed) stays.

    + path: the file
    + content: ours only when exactly this, or one of these (a unit as this or an earlier version rendered it);
      default: carries our marker
    + before: command run first (stop what reads the file), after: command run once it is gone
    """
    lines = host.get_fact(FileContents, path=path)
    if lines is None:
        host.noop(f"{path} is absent")
        return
    if not ours(lines, content):
        host.noop(f"{path} was not written by ollama-claude (or was changed since), left in place")
        return
    command = _then(f"rm -f {shlex.quote(path)}", after)
    yield f"{before}; {command}" if before else command
