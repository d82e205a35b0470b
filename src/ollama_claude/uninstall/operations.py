"""
Operations that take back what a deploy put on a host, and nothing else: a file goes only when it carries our
marker (or is exactly what we render), a link only when it points into our install root, an rc file loses only
our marked block, a settings file only our keys (the user's earlier values come back from our oldest backup).
Each yields nothing once its work is done, so a second uninstall changes nothing.
"""

from __future__ import annotations

import shlex
from collections.abc import Iterator
from typing import Any

from pyinfra import host
from pyinfra.api import operation
from pyinfra.facts.files import File, FileContents, Link

from ..claude.operations import BACKUP_SUFFIX, RC_MARKER, _write
from ..claude.settings_merge import Merge, SettingsFileError, parse_settings_text
from ..hostfail import fail_host
from ..rcfiles import SymlinkTarget, backup_command
from .facts import SettingsBackups
from .restore import ManagedKeys, restored, written_by_us


@operation()
def link_removed(path: str, inside: str, put_back: str | None = None) -> Iterator[str]:
    """
    Remove the stable command link when it points into our install root; a link or file elsewhere stays.

    + path: the link (``/usr/local/bin/ollama``, ``/usr/local/bin/claude``)
    + inside: our install root
    + put_back: what the install moved aside from ``path`` (restored to ``path`` if present)
    """
    link = host.get_fact(Link, path=path)
    target = link.get("link_target", "") if link else ""
    if not target.startswith(inside.rstrip("/") + "/"):
        host.noop(f"{path} is not ours ({'absent' if link is None else target or 'not a link'}), left in place")
        return
    command = f"rm -f {shlex.quote(path)}"
    if put_back:
        qback = shlex.quote(put_back)
        command += f" && if [ -e {qback} ]; then mv -f {qback} {shlex.quote(path)}; fi"
    yield command


def without_rc_block(lines: list[str]) -> list[str]:
    """The rc file's lines without our marked block(s), and without the blank line the deploy put before one."""
    begin, end = RC_MARKER.format(mark="BEGIN"), RC_MARKER.format(mark="END")
    result: list[str] = []
    inside = False
    for line in lines:
        if line == begin and not inside:
            inside = True
            if result and not result[-1].strip():
                result.pop()
        elif inside:
            inside = line != end
        else:
            result.append(line)
    return result


@operation()
def rc_block_removed(path: str) -> Iterator[Any]:
    """
    Take our marked block out of a shell rc file, keeping every other line (a backup of the file is kept); a file
    that held nothing but the block (the deploy created it) is removed. A symlink stays: the block comes out of
    the file it points to, which stays even when nothing else is left in it.

    + path: the rc file
    """
    target = host.get_fact(SymlinkTarget, path=path)
    real = target or path
    lines = host.get_fact(FileContents, path=real) if target != "" else None
    if lines is None or RC_MARKER.format(mark="BEGIN") not in lines:
        host.noop(f"{path} has no ollama-claude block")
        return
    kept = without_rc_block(lines)
    if not target and not any(line.strip() for line in kept):
        yield f"rm -f {shlex.quote(path)}"
        return
    current = host.get_fact(File, path=real)
    yield backup_command(path, BACKUP_SUFFIX)
    yield from _write(real, "\n".join(kept) + "\n" if kept else "", current["user"], current["group"],
                      str(current["mode"]), "/", exists=True, backup=False)


def _keys(written: list[str], always: list[str]) -> ManagedKeys:
    return ManagedKeys(written=tuple(tuple(k.split(".")) for k in written),
                       always=tuple(tuple(k.split(".")) for k in always))


@operation()
def settings_restored(path: str, written: list[str], always: list[str]) -> Iterator[Any]:
    """
    Take our keys out of a Claude Code settings file, giving back the user's own values from the oldest
    ollama-claude backup (the file as it was before our first change); remove our backups.

    Without a backup the file was created by us: our keys go, the file too if nothing else is left. A file
    without a backup that does not carry our whole key set is not ours and stays untouched.

    + path: settings.json or managed-settings.json
    + written: dotted keys a deploy may write (``env.ANTHROPIC_BASE_URL``, ``model``)
    + always: dotted keys every deploy writes (how our own output is recognised)
    """
    keys = _keys(written, always)
    backups = host.get_fact(SettingsBackups, path=path)
    lines = host.get_fact(FileContents, path=path)
    if lines is None:
        host.noop(f"{path} is absent")
        return
    try:
        current = parse_settings_text("\n".join(lines), path)
        original_lines = host.get_fact(FileContents, path=backups[0]) if backups else None
        original = parse_settings_text("\n".join(original_lines), backups[0]) if original_lines else None
    except SettingsFileError as error:
        yield fail_host(str(error))
        return
    if written_by_us(original, keys):  # the first backup is of a file we had created ourselves
        original = None
    if not backups and not written_by_us(current, keys):
        host.noop(f"{path} has no ollama-claude keys to remove")
        return
    result = restored(current, original, keys)
    drop_backups = " ".join(shlex.quote(backup) for backup in backups)
    cleanup = f" && rm -f {drop_backups}" if backups else ""
    qpath = shlex.quote(path)
    if result is None:
        yield f"rm -f {qpath}{cleanup}"
    elif original is not None and result == original:
        yield f"cp -p {shlex.quote(backups[0])} {qpath}{cleanup}"  # the user's own bytes, owner and mode
    elif result == current:
        if not backups:
            host.noop(f"{path} has no ollama-claude keys to remove")
            return
        yield f"rm -f {drop_backups}"
    else:
        meta = host.get_fact(File, path=path)
        yield from _write(path, Merge(result).render(), meta["user"], meta["group"], str(meta["mode"]), "/",
                          exists=True, backup=False)
        if backups:
            yield cleanup.removeprefix(" && ")


def dotted(paths: tuple[tuple[str, ...], ...]) -> list[str]:
    """Key paths as the dotted strings operations take."""
    return [".".join(path) for path in paths]

