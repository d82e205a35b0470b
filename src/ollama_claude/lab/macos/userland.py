"""
The Mac-shaped lab host's userland: what turns a Debian bookworm tree into something that answers like macOS.

A lab part, never product code. Each modelled behaviour cites ../shared/reference/macos.md ("macos.md", by
section). Debian stays underneath (systemd, sshd, sudo, PAM): only what a deploy's shell commands meet is Mac-like.

- Shims (``bin/``): every file is copied to the Mac root's /usr/bin, mode 0755, replacing what is there
  (uname, sw_vers, dscl, stat, ditto, plutil, mv; the launchd part's launchctl & co. as well).
- Accounts: laptop users in the lab directory (/var/lib/lab-directory/{passwd,group,shadow}, served by the NSS
  `db` module from /var/lib/misc/*.db), standing in for Open Directory; absent from /etc/passwd and /etc/group.
  root's home is /var/root. (NSS extrausers would be simpler but ignores ids below 1000, and Mac ids are 501,
  20, 80.)
- Removed: GNU timeout, sha256sum, getent.
"""

from __future__ import annotations

import hashlib
import os
import re
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

HERE = Path(__file__).parent
BIN = HERE / "bin"
SBIN = HERE / "sbin"
#: where the GNU tools a shim replaces stay reachable (the shims delegate to some; lab tooling may use them)
GNU_DIR = "usr/lib/ollama-claude-lab/gnu"
REPLACED_GNU = ("usr/bin/uname", "usr/bin/stat", "usr/bin/mv", "usr/sbin/chpasswd")
DIRECTORY = "var/lib/lab-directory"
#: Debian packages the Mac root adds: zsh (macos.md "Accounts": zsh is the default login shell), libnss-db
#: (serves the directory), perl (/usr/bin/shasum: macos.md "Userland differences"), sqlite3 (Ollama.app's
#: settings database, macos.md "Ollama on a Mac"), unzip (inspecting app zips).
PACKAGES = ("zsh", "libnss-db", "sqlite3", "perl", "unzip", "lsof")  # lsof: /usr/sbin/lsof on a Mac
#: macos.md "Userland differences": no GNU `timeout`, no `sha256sum` (`shasum -a 256` instead). macOS has no
#: `getent` either (accounts come from dscl/id; not in the reference, but no Mac ships it).
REMOVED = ("usr/bin/timeout", "usr/bin/sha256sum", "usr/bin/getent")
ROOT_HOME = "/var/root"  # macos.md "Privilege": under `sudo -H` $HOME is /var/root
STAFF_GID = 20
ADMIN_GID = 80
#: Debian groups whose name or gid collide with the Mac's (dialout is gid 20, staff is gid 50)
CLASHING_GROUPS = ("dialout", "staff")


@dataclass(frozen=True)
class MacUser:
    """A laptop account in the lab's directory service."""

    name: str
    uid: int
    real_name: str
    admin: bool

    @property
    def home(self) -> str:
        return f"/Users/{self.name}"  # macos.md "Accounts": homes are /Users/<name>


#: The laptop users: `dev` (the lab user, an admin with sudo per the lab's dev_sudo mode) and `ada`, another
#: account at the same Mac (no sudo). macos.md "Accounts": real users have uid >= 501, shell zsh.
USERS = (MacUser("dev", 501, "Dev", admin=True), MacUser("ada", 502, "Ada", admin=False))
SHELL = "/bin/zsh"


def user(name: str) -> MacUser:
    for candidate in USERS:
        if candidate.name == name:
            return candidate
    raise KeyError(name)


def content_hash() -> str:
    """Every file of this part (shims, this module, the launchd part): an edit rebuilds the Mac tree."""
    digest = hashlib.sha256()
    for path in sorted(HERE.rglob("*")):
        if path.is_file() and "__pycache__" not in path.parts and not path.name.endswith(".pyc"):
            digest.update(str(path.relative_to(HERE)).encode() + b"\0")
            digest.update(path.read_bytes() + b"\0")
    return digest.hexdigest()[:16]


def customise_macos(root: Path) -> None:
    """Make a customised Debian lab tree (rootfs.customise already ran) the Mac-shaped host's tree."""
    install_shims(root)
    for relative in REMOVED:
        (root / relative).unlink(missing_ok=True)
    use_lab_directory(root)
    move_root_home(root)
    make_accounts(root)
    make_mac_directories(root)
    quiet_zsh(root)
    login_path(root)
    # The launchd part (its daemon unit, the SSH session hook; bin/launchctl came with the shims above).
    from . import launchd

    launchd.customise(root)


#: A Mac's /etc/paths: what path_helper puts first in every login shell's PATH (/usr/local/bin among them).
ETC_PATHS = "/usr/local/bin\n/System/Cryptexes/App/usr/bin\n/usr/bin\n/bin\n/usr/sbin\n/sbin\n"
#: path_helper -s: /etc/paths, then /etc/paths.d/*, then the rest of $PATH, each once (path_helper(8)).
PATH_HELPER = """#!/bin/sh
p=
for f in /etc/paths /etc/paths.d/*; do
  [ -f "$f" ] || continue
  while read -r d; do case ":$p:" in *":$d:"*) ;; *) p="${p:+$p:}$d" ;; esac; done < "$f"
done
IFS=:
for d in $PATH; do case ":$p:" in *":$d:"*) ;; *) p="${p:+$p:}$d" ;; esac; done
echo "PATH=\\"$p\\"; export PATH;"
"""
#: macOS /etc/zprofile: every zsh login shell runs path_helper (so `zsh -l` finds /usr/local/bin/claude).
ZPROFILE = "if [ -x /usr/libexec/path_helper ]; then\n\teval `/usr/libexec/path_helper -s`\nfi\n"


def login_path(root: Path) -> None:
    """A login shell's PATH as on a Mac; Debian's zsh reads /etc/zsh/zprofile where macOS reads /etc/zprofile."""
    (root / "etc" / "paths").write_text(ETC_PATHS)
    helper = root / "usr" / "libexec" / "path_helper"
    helper.parent.mkdir(parents=True, exist_ok=True)
    helper.write_text(PATH_HELPER)
    helper.chmod(0o755)
    (root / "etc" / "zprofile").write_text(ZPROFILE)
    (root / "etc" / "zsh" / "zprofile").write_text(ZPROFILE)


def install_shims(root: Path) -> None:
    gnu = root / GNU_DIR
    gnu.mkdir(parents=True, exist_ok=True)
    for relative in REPLACED_GNU:
        original = root / relative
        if original.exists() and not (gnu / original.name).exists():
            shutil.copy2(original, gnu / original.name)
    for source_dir, target in ((BIN, "usr/bin"), (SBIN, "usr/sbin")):
        for shim in sorted(source_dir.iterdir()):
            if not shim.is_file():
                continue
            destination = root / target / shim.name
            if destination.is_symlink() or destination.exists():
                destination.unlink()
            shutil.copyfile(shim, destination)
            destination.chmod(0o755)


def edit_lines(path: Path, keep=lambda fields: True, change=lambda fields: fields) -> None:
    lines = path.read_text().splitlines() if path.exists() else []
    out = [":".join(change(line.split(":"))) for line in lines if not line or keep(line.split(":"))]
    path.write_text("\n".join(out) + "\n")


def use_lab_directory(root: Path) -> None:
    """nsswitch: files, then the lab directory (macos.md "Accounts": the Open Directory stand-in)."""
    nsswitch = root / "etc" / "nsswitch.conf"
    text = nsswitch.read_text()
    for database in ("passwd", "group", "shadow"):
        pattern = re.compile(rf"^{database}:.*$", re.MULTILINE)
        line = f"{database}:         files db" + (" systemd" if database != "shadow" else "")
        text = pattern.sub(line, text) if pattern.search(text) else text + line + "\n"
    nsswitch.write_text(text)


def move_root_home(root: Path) -> None:
    """root's home is /var/root (macos.md "Privilege": `sudo -H` lands HOME=/var/root)."""
    edit_lines(
        root / "etc" / "passwd",
        change=lambda f: [*f[:5], ROOT_HOME, *f[6:]] if f[0] == "root" else f,
    )
    old, new = root / "root", root / ROOT_HOME.lstrip("/")
    new.mkdir(parents=True, exist_ok=True)
    if old.is_dir() and not old.is_symlink():
        for entry in old.iterdir():
            shutil.move(str(entry), new / entry.name)
        old.rmdir()
    new.chmod(0o750)
    # systemd-tmpfiles would make /root (and /root/.ssh) again at boot: the same rules for /var/root instead.
    provision = root / "usr/lib/tmpfiles.d/provision.conf"
    if provision.exists():
        override = root / "etc/tmpfiles.d/provision.conf"
        override.parent.mkdir(parents=True, exist_ok=True)
        override.write_text(re.sub(r"(\s)/root\b", rf"\1{ROOT_HOME}", provision.read_text()))


def make_accounts(root: Path) -> None:
    """Laptop users in the lab directory only: `id`, sshd and sudo see them (NSS), /etc/passwd does not
    (macos.md "Accounts": /etc/passwd lists only system accounts; pyinfra's server.Users reads it)."""
    etc = root / "etc"
    names = {u.name for u in USERS}
    # The base tree's lab user (rootfs.customise: useradd dev) and the groups clashing with the Mac's go.
    for table in ("passwd", "shadow"):
        edit_lines(etc / table, keep=lambda f: f[0] not in names)
    for table in ("group", "gshadow"):
        edit_lines(
            etc / table,
            keep=lambda f: f[0] not in names and f[0] not in CLASHING_GROUPS,
            change=lambda f: [*f[:-1], ",".join(m for m in f[-1].split(",") if m and m not in names)],
        )
    shutil.rmtree(root / "home" / "dev", ignore_errors=True)
    for path in (root / "var/local",):  # Debian's staff (gid 50, removed above) owned it
        if path.exists():
            os.chown(path, 0, 0)

    extra = root / DIRECTORY
    extra.mkdir(parents=True, exist_ok=True)
    (extra / "passwd").write_text(
        "".join(f"{u.name}:x:{u.uid}:{STAFF_GID}:{u.real_name}:{u.home}:{SHELL}\n" for u in USERS)
    )
    admins = ",".join(["root", *(u.name for u in USERS if u.admin)])
    (extra / "group").write_text(
        # macOS: gid 0 is "wheel" (Debian's "root" keeps gid 0 in /etc/group; this adds the Mac name),
        # staff 20 every user's primary group, admin 80 the administrators (sudo on a real Mac).
        f"wheel:x:0:root\nstaff:x:{STAFF_GID}:root\nadmin:x:{ADMIN_GID}:{admins}\n"
    )
    shadow = extra / "shadow"
    shadow.write_text("".join(f"{u.name}:*:20000:0:99999:7:::\n" for u in USERS))
    shadow_gid = group_id(etc / "group", "shadow")
    os.chown(shadow, 0, shadow_gid)
    shadow.chmod(0o640)
    if (root / "usr/bin/makedb").exists():  # not in the unit tests' fake tree
        subprocess.run(["chroot", str(root), "/usr/bin/python3", "/usr/bin/dscl", ".", "-labcompile"], check=True)
    # systemd-sysusers would add Debian's dialout (gid 20) and staff back at boot: an /etc override without them.
    basic = root / "usr/lib/sysusers.d/basic.conf"
    if basic.exists():
        override = root / "etc/sysusers.d/basic.conf"
        override.parent.mkdir(parents=True, exist_ok=True)
        override.write_text("".join(
            line + "\n" for line in basic.read_text().splitlines()
            if not re.match(rf"^[gu]\s+({'|'.join(CLASHING_GROUPS)})\s", line)
        ))

    users_dir = root / "Users"
    users_dir.mkdir(exist_ok=True)
    os.chown(users_dir, 0, ADMIN_GID)
    users_dir.chmod(0o755)
    shared = users_dir / "Shared"
    shared.mkdir(exist_ok=True)
    shared.chmod(0o1777)
    for u in USERS:
        home = root / u.home.lstrip("/")
        for sub in ("", "Library", "Library/Application Support", "Library/Preferences", "Desktop", "Documents"):
            path = home / sub
            path.mkdir(parents=True, exist_ok=True)
            os.chown(path, u.uid, STAFF_GID)
        home.chmod(0o750)
        (home / "Library").chmod(0o700)


def make_mac_directories(root: Path) -> None:
    """The system folders a deploy writes to: /Applications (Ollama.app), /Library (managed settings,
    macos.md "Claude Code on a Mac"; LaunchAgents/Daemons, macos.md "launchd")."""
    applications = root / "Applications"
    applications.mkdir(exist_ok=True)
    os.chown(applications, 0, ADMIN_GID)
    applications.chmod(0o775)
    for sub in ("Library", "Library/Application Support", "Library/LaunchAgents", "Library/LaunchDaemons",
                "Library/Preferences"):
        path = root / sub
        path.mkdir(exist_ok=True)
        path.chmod(0o755)


ZSHENV_LINES = """
# ollama-claude lab (Mac-shaped host): a Mac's zsh starts an account without dotfiles with no new-user menu
zsh-newuser-install() { :; }
"""


def quiet_zsh(root: Path) -> None:
    """Debian's zsh offers a configuration menu to an interactive shell of a user without dotfiles; a Mac's does
    not (not in the reference: interactive convenience for `lab ssh`, and a `zsh -i` reading its menu would hang)."""
    zshenv = root / "etc/zsh/zshenv"
    if zshenv.exists() and "zsh-newuser-install()" not in zshenv.read_text():
        with open(zshenv, "a") as handle:
            handle.write(ZSHENV_LINES)


def group_id(group_file: Path, name: str) -> int:
    for line in group_file.read_text().splitlines():
        fields = line.split(":")
        if fields[0] == name:
            return int(fields[2])
    return 0
