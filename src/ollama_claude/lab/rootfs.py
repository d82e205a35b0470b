"""The lab's Debian root filesystem: built once with debootstrap, cached by the hash of what went into it."""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import tempfile
import time
from pathlib import Path

from .errors import LabError

SUITE = "bookworm"
#: Debian releases a lab host can run (`--hosts gpu2@trixie`); SUITE is the default.
SUITES = ("bookworm", "trixie")
#: Host flavours: "linux" (plain Debian) or "macos", the Mac-shaped host (`--hosts mac1:laptops@macos`), a Debian
#: bookworm tree with a Mac userland (lab/macos/userland.py). A flavour takes the place of a suite after '@'.
LINUX = "linux"
MACOS = "macos"
FLAVOURS = (LINUX, MACOS)
MACOS_SUITE = "bookworm"
# Claude Code ships a native binary, so no nodejs; iproute2/procps let tests and deploys inspect a host.
PACKAGES = (
    "systemd",
    "systemd-sysv",
    "dbus",
    "openssh-server",
    "curl",
    "ca-certificates",
    "sudo",
    "zstd",
    "python3",
    "iproute2",
    "procps",
    "nftables",  # ollama_allowed_clients is enforced with an nftables table of ours
)
# Bump when the post-build customisation below changes, so cached trees are rebuilt.
CUSTOMISATION_VERSION = "1"
LAB_USER = "dev"
LAB_USER_UID = 1000
SOURCES_FILE = Path("/etc/apt/sources.list.d/debian.sources")

SSHD_LAB_CONFIG = """\
# Lab hosts: keys only, one host key generated per host before boot.
HostKey /etc/ssh/ssh_host_ed25519_key
PasswordAuthentication no
KbdInteractiveAuthentication no
PermitRootLogin prohibit-password
UseDNS no
"""
ETC_HOSTS = """\
127.0.0.1\tlocalhost
::1\tlocalhost ip6-localhost ip6-loopback
ff02::1\tip6-allnodes
ff02::2\tip6-allrouters
"""


def cache_root() -> Path:
    """Where built trees live; OLLAMA_CLAUDE_CACHE moves it (CI caches this directory)."""
    return Path(os.environ.get("OLLAMA_CLAUDE_CACHE", Path.home() / ".cache" / "ollama-claude")) / "rootfs"


def rootfs_key(packages: tuple[str, ...] = PACKAGES, suite: str = SUITE) -> str:
    """A short hash of everything that shapes the tree: a new package list means a new tree."""
    recipe = "\n".join([suite, CUSTOMISATION_VERSION, *sorted(packages)])
    return hashlib.sha256(recipe.encode()).hexdigest()[:16]


def macos_base_key() -> str:
    """The Mac tree's Debian layer: bookworm with the Mac packages (built with debootstrap, cached)."""
    from .macos import userland

    return rootfs_key((*PACKAGES, *userland.PACKAGES), MACOS_SUITE)


def macos_key() -> str:
    """The Mac tree: its Debian layer plus every file of lab/macos (shims, customisation), so an edit there
    rebuilds it (a copy of the cached Debian layer, seconds)."""
    from .macos import userland

    recipe = f"{MACOS}\n{macos_base_key()}\n{userland.content_hash()}"
    return "macos-" + hashlib.sha256(recipe.encode()).hexdigest()[:16]


def check_suite(suite: str) -> str:
    if suite not in SUITES:
        raise LabError(f"lab hosts run Debian {' or '.join(SUITES)}, not '{suite}'")
    return suite


def debian_mirror(sources_file: Path = SOURCES_FILE) -> str:
    """The machine's own Debian mirror (deb822 sources), so the build uses the registry it is allowed to reach.
    The stanza of the machine's own release names the archive; every lab suite is built from that archive."""
    if mirror := os.environ.get("OLLAMA_CLAUDE_DEBIAN_MIRROR"):
        return mirror
    try:
        stanzas = sources_file.read_text().split("\n\n")
    except FileNotFoundError:
        raise LabError(f"no {sources_file}: set OLLAMA_CLAUDE_DEBIAN_MIRROR to a Debian mirror URL") from None
    for stanza in stanzas:
        fields = dict(
            line.split(":", 1) for line in stanza.splitlines() if ":" in line and not line.startswith("#")
        )
        suites = fields.get("Suites", "").split()
        if any(suite in suites for suite in SUITES) and "URIs" in fields:
            return fields["URIs"].split()[0]
    raise LabError(
        f"no {'/'.join(SUITES)} stanza in {sources_file}: set OLLAMA_CLAUDE_DEBIAN_MIRROR to a Debian mirror URL"
    )


def ensure_rootfs(log=print, suite: str = SUITE, flavour: str = LINUX) -> Path:
    """Return the cached tree for the current recipe of ``suite`` (and flavour), building it first if missing."""
    check_suite(suite)
    if flavour == MACOS:
        return ensure_macos_rootfs(log)
    if flavour != LINUX:
        raise LabError(f"lab host flavour '{flavour}': choose one of {', '.join(FLAVOURS)}")
    return build_debian(cache_root() / rootfs_key(suite=suite), suite, PACKAGES, log)


def ensure_macos_rootfs(log=print) -> Path:
    """The Mac-shaped host's tree: a copy of its cached Debian layer, customised by lab/macos/userland.py."""
    from .macos import userland

    target = cache_root() / macos_key()
    if (target / "etc" / "os-release").exists():
        return target
    base = build_debian(
        cache_root() / macos_base_key(), MACOS_SUITE, (*PACKAGES, *userland.PACKAGES), log
    )
    building = Path(tempfile.mkdtemp(prefix=f".{target.name}-", dir=target.parent))
    try:
        log(f"building the Mac-shaped lab rootfs {target} from {base.name}")
        subprocess.run(["cp", "-a", "--reflink=auto", f"{base}/.", str(building)], check=True)
        userland.customise_macos(building)
        publish(building, target, log)
    finally:
        if building.exists():
            shutil.rmtree(building, ignore_errors=True)
    prune_macos_trees(keep=target, log=log)
    return target


#: a Mac tree left by an earlier version of lab/macos is removed once this old and not under any mounted host
STALE_MACOS_TREE_SECONDS = 1800


def prune_macos_trees(keep: Path, log=print, mountinfo: Path = Path("/proc/self/mountinfo"),
                      now: float | None = None) -> None:
    """Every edit under lab/macos makes a new Mac tree (about 420 MB); drop the old ones no host overlays (a
    lowerdir in the mount table) and that are old enough that no concurrent `up` can be about to mount them
    (age from the tree's ctime, set when it was renamed into place; cp -a keeps the base tree's mtime)."""
    try:
        mounts = mountinfo.read_text()
    except OSError:
        return
    for tree in keep.parent.glob(f"{MACOS}-*"):
        if tree == keep or not tree.is_dir() or str(tree) in mounts:
            continue
        try:
            info = tree.stat()
        except FileNotFoundError:
            continue
        age = (time.time() if now is None else now) - max(info.st_mtime, info.st_ctime)
        if age > STALE_MACOS_TREE_SECONDS:
            log(f"removing the outdated Mac-shaped lab rootfs {tree}")
            shutil.rmtree(tree, ignore_errors=True)


def build_debian(target: Path, suite: str, packages: tuple[str, ...], log=print) -> Path:
    """debootstrap ``suite`` with ``packages`` into ``target`` (if not there yet) and make it a lab template."""
    if (target / "etc" / "os-release").exists():
        return target
    target.parent.mkdir(parents=True, exist_ok=True)
    building = Path(tempfile.mkdtemp(prefix=f".{target.name}-", dir=target.parent))
    try:
        log(f"building lab rootfs {target} (debootstrap {suite}, about a minute)")
        subprocess.run(
            [
                "debootstrap",
                "--variant=minbase",
                f"--include={','.join(packages)}",
                suite,
                str(building),
                debian_mirror(),
            ],
            check=True,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
        )
        customise(building)
        publish(building, target, log)
    except subprocess.CalledProcessError as error:
        tail = "\n".join(error.stderr.splitlines()[-10:])
        raise LabError(f"debootstrap failed (see {building}/debootstrap/debootstrap.log):\n{tail}") from None
    finally:
        if building.exists():
            shutil.rmtree(building, ignore_errors=True)
    return target


def publish(building: Path, target: Path, log=print) -> None:
    """Move a finished tree into the cache; another lab that built the same recipe meanwhile (two `up`s at once)
    made one as good as ours."""
    try:
        building.rename(target)
    except OSError:
        if not (target / "etc" / "os-release").exists():
            raise
        log(f"lab rootfs {target} was built meanwhile by another run; using it")


def customise(root: Path) -> None:
    """Make the generic tree a lab host template: per-host identity is left blank and filled in at boot."""
    (root / "etc" / "hosts").write_text(ETC_HOSTS)
    # Hosts have no DNS: an empty resolv.conf keeps the builder's resolvers out and fails lookups fast.
    (root / "etc" / "resolv.conf").unlink(missing_ok=True)
    (root / "etc" / "resolv.conf").write_text("")
    (root / "etc" / "hostname").unlink(missing_ok=True)
    (root / "etc" / "machine-id").write_text("")
    (root / "var" / "lib" / "dbus" / "machine-id").unlink(missing_ok=True)
    for key in (root / "etc" / "ssh").glob("ssh_host_*"):
        key.unlink()
    (root / "etc" / "ssh" / "sshd_config.d" / "lab.conf").write_text(SSHD_LAB_CONFIG)
    subprocess.run(
        [
            "chroot",
            str(root),
            "useradd",
            "--create-home",
            "--uid",
            str(LAB_USER_UID),
            "--shell",
            "/bin/bash",
            LAB_USER,
        ],
        check=True,
    )
    # debootstrap's postinst does not reliably enable units inside a chroot; the lab reaches hosts via sshd.
    subprocess.run(["systemctl", f"--root={root}", "enable", "ssh.service"], check=True, capture_output=True)
