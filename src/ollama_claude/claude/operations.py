"""
Operations that install Claude Code at its pin and point each user's Claude Code at Ollama.

Files we own entirely (env files, wrapper) are compared by checksum; settings.json is compared by meaning, so
a user's formatting survives when nothing of ours changed. Every file is uploaded (never echoed: it may carry
the token), written beside its destination, given owner and mode, and only then moved into place.
Host-state failures (unreadable settings.json, checksum mismatch, unknown user) fail only their host.
"""

from __future__ import annotations

import hashlib
import posixpath
import shlex
from collections.abc import Iterator
from io import StringIO
from typing import Any

from pyinfra import host, logger
from pyinfra.api import FileUploadCommand, operation
from pyinfra.facts.files import File, FileContents, Sha256File
from pyinfra.facts.npm import NpmPackages

from .. import templating
from ..accounts import Accounts
from ..hostfail import fail_host
from ..rcfiles import SymlinkTarget, backup_command
from .facts import PACKAGE_PREFIX, ClaudeCodeInstall, ClaudeNativePackage, ClaudePlatform
from .settings_merge import SettingsFileError, merge_settings, parse_settings_text

#: Marker of our block in rc files; the same text every run, so the block is replaced in place.
RC_MARKER = "# {mark} ollama-claude: Claude Code on Ollama"
#: Suffix of the backup kept each time we change a settings file (a timestamp goes before it).
BACKUP_SUFFIX = "ollama-claude.bak"


def render(name: str, **data: Any) -> str:
    """A file or script from templates/claude/<name>."""
    return templating.render(f"claude/{name}", **data)


# --- install ------------------------------------------------------------------------------------------------


@operation()
def claude_code_native(version: str, registry: str, install_dir: str, link: str) -> Iterator[str]:
    """
    Install the pinned native Claude Code into ``<install_dir>/<version>/claude`` behind the stable ``link``.

    + version: the pinned release
    + registry: npm registry or mirror URL serving ``@anthropic-ai/claude-code-<platform>``
    + install_dir: versioned install root; older versions stay, so a rollback is a switch back
    + link: the stable command on PATH, a symlink to the version in use

    The download is checked against the sha512 ``dist.integrity`` the registry publishes, and the unpacked
    binary must report the pinned version, before the link moves.

    **Example:**

    .. code:: python

        claude_code_native(version="2.1.197", registry="http://mirror:8080/npm",
                           install_dir="/opt/claude-code", link="/usr/local/bin/claude")
    """
    binary = f"{install_dir}/{version}/claude"
    installed = host.get_fact(ClaudeCodeInstall, link=link, binary=binary)
    paths = {"binary": binary, "link": link, "link_dir": posixpath.dirname(link), "install_dir": install_dir}
    if installed["pinned"] == version:
        if installed["link"] == binary:
            host.noop(f"Claude Code {version} is installed and {link} points at it")
            return
        yield render("switch-link.sh", **paths).strip()
        return
    platform = host.get_fact(ClaudePlatform)
    if platform is None:
        yield fail_host(
            "no native Claude Code for this platform; set claude_code_install = 'npm'"
        )
        return
    package = host.get_fact(ClaudeNativePackage, registry=registry, platform=platform, version=version)
    if "error" in package:
        yield fail_host(f"claude_code_registry: {package['error']}")
        return
    yield render(
        "install-native.sh",
        tarball=package["tarball"],
        sha512=package["sha512"],
        version=version,
        version_dir=posixpath.dirname(binary),
        **paths,
        download_failed=(
            f"host {host.name}: download of {package['tarball']} failed; check claude_code_registry"
        ),
        checksum_failed=(
            f"host {host.name}: {package['tarball']} does not match the registry's sha512; "
            "nothing was switched, "
            "check the mirror's copy"
        ),
        version_failed=f"host {host.name}: {binary} does not report version {version}; nothing was switched",
    ).strip()


@operation()
def claude_code_npm(version: str, registry: str) -> Iterator[str]:
    """
    Install the pinned Claude Code with ``npm install -g`` (needs Node.js; postinstall links the native
    binary).

    + version: the pinned release
    + registry: npm registry or mirror URL
    """
    installed = host.get_fact(NpmPackages)
    if version in installed.get(PACKAGE_PREFIX, []):
        host.noop(f"{PACKAGE_PREFIX}@{version} is installed globally")
        return
    missing_npm = fail_host(
        "npm not found; install Node.js or set claude_code_install = 'native'"
    )
    yield (
        f"command -v npm >/dev/null 2>&1 || {{ {missing_npm}; }}; "
        f"npm install -g --registry {shlex.quote(registry)} {shlex.quote(f'{PACKAGE_PREFIX}@{version}')}"
    )


# --- files --------------------------------------------------------------------------------------------------


def _make_dirs(path: str, owner: str, group: str, below: str) -> str:
    """
    Create the missing parent directories of ``path``: a system path with ``mkdir -p``; a path in a home
    one directory at a time under ``below``, each owned by the user and private (0700).
    """
    parent = posixpath.dirname(path)
    if owner == "root":
        return f"mkdir -p {shlex.quote(parent)}"
    steps = []
    while parent not in (below, "/", ""):
        steps.append(parent)
        parent = posixpath.dirname(parent)
    return "; ".join(
        f"[ -d {shlex.quote(step)} ] || {{ mkdir -m 0700 {shlex.quote(step)} && "
        f"chown {shlex.quote(owner)}:{shlex.quote(group)} {shlex.quote(step)}; }}"
        for step in reversed(steps)
    )


def _write(
    path: str, content: str, owner: str, group: str, mode: str, below: str, exists: bool, backup: bool
) -> Iterator[Any]:
    """Upload beside the destination, set owner and mode, keep a timestamped backup if asked, then move."""
    staged = f"{path}.ollama-claude.tmp"
    qpath, qstaged = shlex.quote(path), shlex.quote(staged)
    dirs = "" if exists else _make_dirs(path, owner, group, below)
    if dirs:
        yield dirs
    yield FileUploadCommand(StringIO(content), staged)
    keep = f'cp -p {qpath} "{path}.$(date +%Y%m%d%H%M%S).{BACKUP_SUFFIX}" && ' if backup and exists else ""
    yield (
        f"chown {shlex.quote(owner)}:{shlex.quote(group)} {qstaged} && chmod {mode} {qstaged} && "
        f"{keep}mv -f {qstaged} {qpath}"
    )


def _fix_metadata(path: str, current: dict[str, Any], owner: str, group: str, mode: str) -> Iterator[str]:
    if current.get("mode") != int(mode):
        yield f"chmod {mode} {shlex.quote(path)}"
    if (current.get("user"), current.get("group")) != (owner, group):
        yield f"chown {shlex.quote(owner)}:{shlex.quote(group)} {shlex.quote(path)}"


@operation()
def managed_file(
    path: str, content: str, owner: str, group: str, mode: str = "600", below: str = "/"
) -> Iterator[Any]:
    """
    A file we own entirely (env file, wrapper), uploaded only when its checksum differs.

    + path: destination
    + content: the whole file
    + owner, group: its owner (missing directories under ``below`` get the same owner, mode 0700)
    + mode: octal mode, e.g. ``600`` (it may hold the token) or ``755`` (a wrapper)
    """
    current = host.get_fact(File, path=path)
    if current and host.get_fact(Sha256File, path=path) == hashlib.sha256(content.encode()).hexdigest():
        changes = list(_fix_metadata(path, current, owner, group, mode))
        if not changes:
            host.noop(f"{path} is up to date")
        yield from changes
        return
    yield from _write(path, content, owner, group, mode, below, exists=bool(current), backup=False)


@operation()
def claude_settings(
    path: str,
    managed: dict[str, Any],
    owner: str,
    group: str,
    mode: str = "600",
    below: str = "/",
    drop_env: list[str] | None = None,
    backup: bool = True,
) -> Iterator[Any]:
    """
    Merge the managed keys into a Claude Code settings file, keeping everything else of the user's.

    + path: ``~/.claude/settings.json``, ``$CLAUDE_CONFIG_DIR/settings.json`` or ``managed-settings.json``
    + managed: the keys we own (env, model, permissions.defaultMode; see settings_merge)
    + owner, group, mode: of the file (a user's: 0600, it holds the token)
    + below: missing directories under this one are created with the file's owner
    + drop_env: env keys to remove (provider switches, the small/fast model that beats the haiku mapping)
    + backup: keep a backup of each change (off for Claude Code's own state file, ~/.claude.json)

    A file that is not a JSON object fails this host and stays untouched. Each change keeps a backup
    ``<path>.<timestamp>.ollama-claude.bak``; overridden keys are reported by name, never by value.
    """
    lines = host.get_fact(FileContents, path=path)
    text = None if lines is None else "\n".join(lines)
    try:
        existing = parse_settings_text(text, path)
    except SettingsFileError as error:
        yield fail_host(str(error))
        return
    merge = merge_settings(existing, managed, tuple(drop_env or ()))
    if text is not None and merge.data == existing:
        changes = list(_fix_metadata(path, host.get_fact(File, path=path) or {}, owner, group, mode))
        if not changes:
            host.noop(f"{path} already has the managed keys")
        yield from changes
        return
    if merge.report:
        logger.warning(f"[{host.name}] {path}: {merge.report} (backup kept)")
    yield from _write(path, merge.render(), owner, group, mode, below, exists=text is not None, backup=backup)


def with_rc_block(lines: list[str] | None, block: str) -> list[str]:
    """
    The rc file's lines with our marked block: replaced where it is, appended if absent; any further copy
    of it (a hand-made duplicate) is dropped, so the block is there exactly once.
    """
    begin, end = RC_MARKER.format(mark="BEGIN"), RC_MARKER.format(mark="END")
    wanted = [begin, *block.rstrip("\n").split("\n"), end]
    result: list[str] = []
    placed = inside = False
    for line in lines or []:
        if line == begin and not inside:
            inside = True
            if not placed:
                result.extend(wanted)
                placed = True
        elif inside:
            inside = line != end
        else:
            result.append(line)
    if not placed:
        result.extend(([""] if result and result[-1].strip() else []) + wanted)
    return result


@operation()
def rc_block(path: str, content: str, owner: str, group: str, below: str = "/") -> Iterator[Any]:
    """
    Our marked block in a shell rc file: added once, replaced in place when it changes, never duplicated.

    A file that is there keeps a backup (``<path>.<timestamp>.ollama-claude.bak``) of each change, and its mode. A
    symlink (a dotfiles manager's: stow, chezmoi, yadm) stays a symlink: the block goes into the file it points to,
    whose owner and mode are kept; a link to nothing fails this host, changing nothing.

    + path: the rc file (created, owned by ``owner``, if missing; otherwise its mode is kept)
    + content: the block's lines, without markers
    + below: missing directories under this one are created with the file's owner
    """
    target = host.get_fact(SymlinkTarget, path=path)
    real = target or path
    lines = host.get_fact(FileContents, path=real) if target != "" else None
    if target is not None and lines is None:
        yield fail_host(f"{path} is a symlink to {target or 'nothing it can resolve'}, which "
                        "does not exist; restore the file (or remove the link) and re-run")
        return
    wanted = with_rc_block(lines, content)
    if lines == wanted:
        host.noop(f"{path} has the ollama-claude block" + (f" (in {real})" if target else ""))
        return
    text = "\n".join(wanted) + "\n"
    if lines is None:
        yield from _write(path, text, owner, group, "644", below, exists=False, backup=False)
        return
    current = host.get_fact(File, path=real) or {}
    if target:
        owner, group = current.get("user") or owner, current.get("group") or group
    yield backup_command(path, BACKUP_SUFFIX)
    yield from _write(real, text, owner, group, str(current.get("mode") or 644), "/", exists=True, backup=False)


@operation()
def claude_user_exists(user: str, declared: tuple[str, ...] = ()) -> Iterator[str]:
    """
    Fail this host, naming the account, when a declared ``claude_users`` entry has no account here (looked up
    in the host's directory service: dscl on macOS, getent on Linux).

    + user: the account name
    + declared: every claude_users name, so one lookup answers for all of them
    """
    if user in host.get_fact(Accounts, names=declared or (user,)):
        host.noop(f"user {user} exists")
        return
    yield fail_host(
        f"claude_users: no account {user!r}; create it or remove it from claude_users"
    )
