"""The lab's Debian root filesystem: built once with debootstrap, cached by the hash of what went into it."""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import tempfile
from pathlib import Path

from .errors import LabError

SUITE = "bookworm"
#: Debian releases a lab host can run (`--hosts gpu2@trixie`); SUITE is the default.
SUITES = ("bookworm", "trixie")
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


def ensure_rootfs(log=print, suite: str = SUITE) -> Path:
    """Return the cached tree for the current recipe of ``suite``, building it first if missing."""
    check_suite(suite)
    target = cache_root() / rootfs_key(suite=suite)
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
                f"--include={','.join(PACKAGES)}",
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
        try:
            building.rename(target)
        except OSError:
            # Another lab built the same recipe meanwhile (two `up`s at once): theirs is as good as ours.
            if not (target / "etc" / "os-release").exists():
                raise
            log(f"lab rootfs {target} was built meanwhile by another run; using it")
    except subprocess.CalledProcessError as error:
        tail = "\n".join(error.stderr.splitlines()[-10:])
        raise LabError(f"debootstrap failed (see {building}/debootstrap/debootstrap.log):\n{tail}") from None
    finally:
        if building.exists():
            shutil.rmtree(building, ignore_errors=True)
    return target


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
