"""
Ollama install, upgrade and service restart: pinned releases, verified before anything is replaced, switched
atomically, rolled back when the new version does not come up.
"""

from __future__ import annotations

import shlex
from dataclasses import dataclass

from pyinfra import host
from pyinfra.api import operation
from pyinfra.facts.server import Arch, Kernel, Which
from pyinfra.facts.systemd import SystemdEnabled

from ..accounts import Account
from ..hostfail import fail_host, host_reason
from ..packages import KNOWN_MANAGERS, install_command, package_manager
from . import launchd
from .config import render
from .facts import (
    BIN_LINK,
    INSTALL_ROOT,
    LEGACY_LIB,
    GpuVendor,
    OllamaInstall,
    OllamaReleaseSums,
    OllamaServerVersion,
)

UNIT = "ollama.service"
#: Estimated unpacked size of a release archive, as a multiple of its compressed size (disk space check).
UNPACKED_RATIO = 3
_ARCHES = {"x86_64": "amd64", "amd64": "amd64", "aarch64": "arm64", "arm64": "arm64"}
_LINK_TMP = f"{BIN_LINK.rsplit('/', 1)[0]}/.ollama-claude-new-link"


@dataclass(frozen=True)
class Platform:
    """What differs between Linux and macOS releases and tools; the install flow itself is shared."""

    binary: str  # the executable inside a release directory
    sha256: str  # prints "<sum>  <file>"
    move_link: str  # replaces a symlink atomically, never descending into a directory it points to


LINUX = Platform("bin/ollama", "sha256sum", "mv -fT")
DARWIN = Platform("Ollama.app/Contents/Resources/ollama", "shasum -a 256", "mv -fh")


def current_platform() -> Platform:
    return DARWIN if host.get_fact(Kernel) == "Darwin" else LINUX


def gpu_mode(gpu: str, platform: Platform) -> str:
    """The GPU setting with ``auto`` resolved from the host's PCI devices; macOS always runs on Metal."""
    if platform is DARWIN:
        return "metal"
    if gpu != "auto":
        return gpu
    return host.get_fact(GpuVendor)  # nvidia, amd or none: only an explicit "cpu" hides GPUs


def release_name(version: str, mode: str) -> str:
    """The versioned directory of a release: AMD hosts get the ROCm runners in a directory of their own."""
    return f"{version}+rocm" if mode == "amd" else version


def adopted_name(install: dict) -> str:
    """Where an install.sh-style install is kept (as the rollback target) once we take it over."""
    return f"{install['version'] or 'unknown'}+installsh"


def previous_binary(install: dict, name: str) -> str | None:
    """The executable to switch back to if release ``name`` fails its health check; None if nothing changes."""
    if install["current"] == name or install["layout"] == "none":
        return None
    if install["layout"] == "installsh":
        return f"{INSTALL_ROOT}/{adopted_name(install)}/{LINUX.binary}"
    return install["link"]


def _archive_names(platform: Platform, version: str, mode: str) -> list[str] | str:
    """The release's archive files this host needs; a string is the reason there are none."""
    if platform is DARWIN:
        return ["Ollama-darwin.zip"]
    machine = host.get_fact(Arch)
    arch = _ARCHES.get(machine)
    if not arch:
        return f"no Ollama {version} release for architecture {machine!r} (only amd64 and arm64 exist)"
    stems = [f"ollama-linux-{arch}"] + ([f"ollama-linux-{arch}-rocm"] if mode == "amd" else [])
    # Linux releases ship only .tar.zst since v0.14.0 (commit 34d0c55); the .tgz in a release is darwin's.
    return [f"{stem}.tar.zst" for stem in stems]


def _verified_archives(release_url: str, names: list[str], checksum: str,
                       pinned: dict[str, str]) -> list[tuple[str, str | None]] | str:
    """The archives with their sums (pinned, else sha256sum.txt), or why a sum is missing."""
    if checksum == "off" or all(name in pinned for name in names):
        return [(name, pinned.get(name)) for name in names]
    published = host.get_fact(OllamaReleaseSums, url=f"{release_url}/sha256sum.txt")
    if "error" in published:
        return (f"cannot read sha256sum.txt ({published['error']}); check ollama_download_url, "
                "or pin sums in ollama_sha256; a host that reaches it only through a proxy needs https_proxy "
                "(http_proxy for an http:// mirror)")
    known = {**published["sums"], **pinned}
    if missing := [name for name in names if name not in known]:
        return (f"{release_url}/sha256sum.txt lists no sum for {', '.join(missing)}; check ollama_version and "
                "ollama_download_url")
    return [(name, known[name]) for name in names]


def _unpack(archive: str, dest: str) -> str:
    if archive.endswith(".zip"):
        return f"ditto -x -k {archive} {dest}"
    return f"zstd -dc {archive} | tar -xf - -C {dest}"


def _space_check(urls: list[str]) -> str:
    """Fail before downloading when the install root's disk cannot hold the archives and their unpacked tree.

    Sizes come from the server's Content-Length; the unpacked tree is estimated at UNPACKED_RATIO times the
    archive (zstd bundles of runners unpack to about three times their size). Unknown sizes skip the check.
    """
    heads = " ".join(
        f"$(curl -fsSLI --retry 2 {shlex.quote(url)} 2>/dev/null | tr -d '\\r' | "
        "awk 'tolower($1) == \"content-length:\" { n = $2 } END { print n + 0 }')"
        for url in urls
    )
    reason = host_reason(f"not enough disk space for Ollama under {INSTALL_ROOT}: the download and unpacked "
                         "release need about $need bytes, $free bytes are free on $dir; nothing was changed; fix: "
                         "free space there")
    return (f"dir={INSTALL_ROOT}; while [ ! -d \"$dir\" ]; do dir=$(dirname \"$dir\"); done; "
            f"need=0; for size in {heads}; do need=$((need + size * ({UNPACKED_RATIO} + 1))); done; "
            "free=$(df -Pk \"$dir\" | awk 'NR == 2 { printf \"%.0f\", $4 * 1024 }'); "
            f"[ \"$free\" -ge \"$need\" ] || {{ echo \"{reason}\" >&2; exit 1; }}")


def _stage(platform: Platform, release_url: str, archives: list[tuple[str, str | None]], name: str):
    """Download, verify and unpack beside the live install; only a verified, complete tree is moved in."""
    stage = f"{INSTALL_ROOT}/.staging-{name}"
    yield _space_check([f"{release_url}/{file}" for file, _ in archives])
    yield f"rm -rf {stage} && mkdir -p {stage}/tree"
    for file, expected in archives:
        url, local = f"{release_url}/{file}", f"{stage}/{file}"
        yield (f"curl -fsSL --retry 2 -o {local} {shlex.quote(url)} || "
               f"{{ {fail_host(f'download of {url} failed; check ollama_download_url and the network')}; }}")
        if expected:
            reason = shlex.quote(host_reason(f"sha256 mismatch for {url}: expected {expected}, got "))
            yield (f"actual=$({platform.sha256} {local} | cut -d' ' -f1); [ \"$actual\" = {expected} ] || "
                   f"{{ rm -rf {stage}; echo {reason}\"$actual; nothing was changed\" >&2; exit 1; }}")
    for file, _ in archives:
        yield _unpack(f"{stage}/{file}", f"{stage}/tree")
    binary = f"{stage}/tree/{platform.binary}"
    yield f"[ -x {binary} ] || {{ {fail_host(f'the release has no {platform.binary}; nothing was changed')}; }}"
    yield f"rm -rf {INSTALL_ROOT}/{name} && mv {stage}/tree {INSTALL_ROOT}/{name} && rm -rf {stage}"


@operation()
def release(version: str, download_url: str, gpu: str = "auto", checksum: str = "required",
            sha256: dict[str, str] | None = None):
    """
    Install the pinned Ollama release into its own directory and point /usr/local/bin/ollama at it.

    Archives are checked against ``sha256`` (pinned) or the release's sha256sum.txt before anything is replaced;
    an install.sh-style install is taken over (kept as the rollback target); the previous release is kept,
    older ones removed. Models are never touched.

    + version: the release, e.g. ``0.16.3``
    + download_url: release base; files are read from ``<download_url>/v<version>/<file>``
    + gpu: ``auto``, ``nvidia``, ``amd`` (adds the ROCm archive) or ``cpu``
    + checksum: ``required`` or ``off``
    + sha256: pinned sums by archive file name
    """
    platform = current_platform()
    install = host.get_fact(OllamaInstall, binary=platform.binary)
    mode = gpu_mode(gpu, platform)
    name = release_name(version, mode)
    if install["layout"] == "managed" and install["current"] == name:
        host.noop(f"ollama {name} is installed ({BIN_LINK} -> {install['link']})")
        return
    if name not in install["releases"]:
        release_url = f"{download_url}/v{version}"
        names = _archive_names(platform, version, mode)
        archives = names if isinstance(names, str) else _verified_archives(release_url, names, checksum, sha256 or {})
        if isinstance(archives, str):
            yield fail_host(archives)
            return
        yield from _stage(platform, release_url, archives, name)
    keep = {name, install["current"]}
    if install["layout"] == "installsh":
        adopted = f"{INSTALL_ROOT}/{adopted_name(install)}"
        keep.add(adopted_name(install))
        yield f"mkdir -p {adopted}/bin {adopted}/lib && cp -p {BIN_LINK} {adopted}/{LINUX.binary}"
        if install["legacy_lib"]:
            yield f"rm -rf {adopted}/lib/ollama && mv {LEGACY_LIB} {adopted}/lib/ollama"
    yield (f"mkdir -p {BIN_LINK.rsplit('/', 1)[0]} && ln -sfn {INSTALL_ROOT}/{name}/{platform.binary} {_LINK_TMP} && "
           f"{platform.move_link} {_LINK_TMP} {BIN_LINK}")
    for old in install["releases"]:
        if old not in keep:
            yield f"rm -rf {INSTALL_ROOT}/{old}"


@operation()
def zstd_present(install: bool = True):
    """
    Make ``zstd`` available on a Linux host: every Linux release since 0.14 is a ``.tar.zst``.

    + install: install it with the host's package manager; off: fail this host up front, naming it
    """
    if host.get_fact(Which, command="zstd"):
        host.noop("zstd is installed")
        return
    if not install:
        yield fail_host("zstd is missing and ollama_install_zstd is off: Linux releases of Ollama are .tar.zst only; "
                   "fix: install zstd on the host, or set ollama_install_zstd = True")
        return
    manager = package_manager()
    if manager:
        yield (f"{{ {install_command(manager, 'zstd')}; }} && command -v zstd >/dev/null || "
               f"{{ {fail_host(f'installing zstd with {manager} failed: Linux releases of Ollama are .tar.zst only; fix: make zstd installable (or install it) and run again')}; }}")
        return
    yield fail_host(f"zstd is missing and no known package manager ({KNOWN_MANAGERS}) was found: Linux "
               "releases of Ollama are .tar.zst only; fix: install zstd on the host")


def _restart_commands(platform: Platform, account: Account | None) -> tuple[str, str, str, str]:
    """(prelude, restart, log tail, log name) for the host's service manager; macOS: the laptop's account."""
    if platform is DARWIN:
        assert account is not None, "macOS: the service operation needs the laptop's account"
        log = launchd.log_path(account)
        return (launchd.restart_function(account, host.name), "launchd_restart", f"tail -n 40 {shlex.quote(log)}",
                log)
    restart = f"systemctl daemon-reload && systemctl enable --quiet {UNIT} && systemctl restart {UNIT}"
    return "", restart, f'journalctl -u {UNIT} --since "@$started" -n 40 --no-pager', f"journalctl -u {UNIT}"


@operation(is_idempotent=False)
def service(version: str, listen_url: str, health_timeout: int = 60, restart: bool = False,
            previous: str | None = None, account: Account | None = None, port: int = 11434):
    """
    (Re)start the server when its binary or configuration changed (or it is down, not enabled or not loaded, or
    serving another version) and wait until ``/api/version`` reports ``version``. On timeout: print the log
    tail, switch back to ``previous`` (if given) and start it again, and fail this host with the reason.

    + version: the version the server must report
    + listen_url: the server's URL on the host itself
    + health_timeout: seconds to wait for the answer
    + restart: something the server reads changed in this run
    + previous: the executable to switch back to when the new one does not come up
    + account: macOS only, the laptop account whose LaunchAgent runs the server
    + port: macOS only, ``ollama_port`` (whose listeners tell whether our agent's server answers)
    """
    platform = current_platform()
    serving = host.get_fact(OllamaServerVersion, base_url=listen_url)
    if platform is DARWIN:
        assert account is not None, "macOS: the service operation needs the laptop's account"
        enabled = host.get_fact(launchd.MacServer, uid=account.uid, home=account.home, port=port)["loaded"] is not None
    else:
        enabled = host.get_fact(SystemdEnabled, services=UNIT).get(UNIT, False)
    if not restart and enabled and serving == version:
        host.noop(f"ollama {version} is serving on {listen_url}")
        return
    prelude, restart_command, log_tail, log_name = _restart_commands(platform, account)
    yield render(
        "ollama/restart-and-wait.sh.j2", prelude=prelude, restart=restart_command, log_tail=log_tail,
        log_name=log_name, version=version, version_url=f"{listen_url}/api/version", timeout=health_timeout,
        previous_binary=previous, link=BIN_LINK, link_tmp=_LINK_TMP, move_link=platform.move_link,
        host_name=host.name,
    )
