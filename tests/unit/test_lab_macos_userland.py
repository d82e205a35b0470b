"""The Mac-shaped lab host's userland (lab/macos): its shims run here directly, its tree customisation on a
small fake root, its flavour through HostSpec, the rootfs key and the inventory."""

from __future__ import annotations

import json
import os
import plistlib
import re
import stat
import subprocess
import sys
import time
import zipfile
from pathlib import Path

import pytest
from test_lab_state import sample_state

from ollama_claude.lab import rootfs
from ollama_claude.lab.errors import LabError
from ollama_claude.lab.fleet import HostSpec, login_homes
from ollama_claude.lab.inventory import connection_data
from ollama_claude.lab.macos import userland

BIN = userland.BIN


def shim(name: str, *args: str, env: dict | None = None, cwd: Path | None = None) -> subprocess.CompletedProcess:
    script = BIN / name
    interpreter = [sys.executable] if script.read_text().startswith("#!/usr/bin/python3") else ["sh"]
    return subprocess.run(
        [*interpreter, str(script), *args],
        capture_output=True,
        text=True,
        env={**os.environ, **(env or {})},
        cwd=cwd,
        check=False,
    )


# -- uname, sw_vers ---------------------------------------------------------------------------------------


def test_uname_answers_as_an_apple_silicon_mac():
    assert shim("uname").stdout == "Darwin\n"
    assert shim("uname", "-s").stdout == "Darwin\n"
    assert shim("uname", "-m").stdout == "arm64\n"
    assert shim("uname", "-r").stdout == "24.6.0\n"
    assert shim("uname", "-sm").stdout == "Darwin arm64\n"
    everything = shim("uname", "-a").stdout.split()
    assert everything[0] == "Darwin" and everything[2] == "24.6.0" and everything[-1] == "arm64"


def test_uname_refuses_gnu_options_like_bsd_uname():
    result = shim("uname", "-i")
    assert result.returncode == 1
    assert "illegal option -- i" in result.stderr and "usage: uname" in result.stderr


def test_sw_vers_reports_macos_15():
    assert shim("sw_vers", "-productVersion").stdout.startswith("15.")
    assert shim("sw_vers", "-productName").stdout == "macOS\n"
    full = shim("sw_vers").stdout
    assert re.search(r"^ProductName:\s+macOS$", full, re.MULTILINE)
    assert re.search(r"^BuildVersion:\s+\w+$", full, re.MULTILINE)


# -- stat ---------------------------------------------------------------------------------------------------


def test_stat_f_formats_like_bsd_stat(tmp_path):
    path = tmp_path / "file"
    path.write_text("hello")
    path.chmod(0o640)
    os.utime(path, (1_700_000_000, 1_700_000_100))
    info = path.stat()
    out = shim("stat", "-f", "%z %Lp %p %u %g %m %N", str(path)).stdout
    assert out == f"5 640 100640 {info.st_uid} {info.st_gid} 1700000100 {path}\n"
    import grp
    import pwd

    names = shim("stat", "-f", "%Su:%Sg %Sp %HT", str(path)).stdout
    user, group = pwd.getpwuid(info.st_uid).pw_name, grp.getgrgid(info.st_gid).gr_name
    assert names == f"{user}:{group} -rw-r----- Regular File\n"


def test_stat_f_answers_pyinfras_bsd_file_fact_for_files_and_links(tmp_path):
    from pyinfra.facts.files import BSD_STAT_COMMAND, STAT_REGEX

    fmt = BSD_STAT_COMMAND.split("'")[1]
    target = tmp_path / "target"
    target.write_text("x")
    link = tmp_path / "link"
    link.symlink_to(target)
    file_line = shim("stat", "-f", fmt, str(target)).stdout
    match = re.match(STAT_REGEX, file_line)
    assert match and match.group(3) == stat.filemode(target.stat().st_mode)
    assert match.group(7) == "1" and match.group(8) == f"{target}\n"[:-1] + ""
    link_line = shim("stat", "-f", fmt, str(link)).stdout.rstrip("\n")
    assert re.match(STAT_REGEX, link_line).group(8) == f"{link} -> {target}"


def test_stat_L_follows_links(tmp_path):
    target = tmp_path / "target"
    target.write_text("abc")
    link = tmp_path / "link"
    link.symlink_to(target)
    assert shim("stat", "-f", "%HT %z", str(link)).stdout == f"Symbolic Link {len(str(target))}\n"
    assert shim("stat", "-L", "-f", "%HT %z", str(link)).stdout == "Regular File 3\n"


def test_gnu_stat_c_fails_the_bsd_way(tmp_path):
    result = shim("stat", "-c", "%s", str(tmp_path))
    assert result.returncode == 1
    assert result.stdout == ""
    assert result.stderr.startswith("stat: illegal option -- c\nusage: stat ")
    assert shim("stat", "--format=%s", str(tmp_path)).returncode == 1


def test_stat_of_a_missing_file_fails(tmp_path):
    result = shim("stat", "-f", "%z", str(tmp_path / "nope"))
    assert result.returncode == 1
    assert result.stderr == f"stat: {tmp_path / 'nope'}: stat: No such file or directory\n"
    assert shim("stat", "-q", "-f", "%z", str(tmp_path / "nope")).stderr == ""


# -- plutil -------------------------------------------------------------------------------------------------

AGENT = {
    "Label": "com.ollama.ollama",
    "ProgramArguments": ["/usr/local/bin/ollama", "serve"],
    "EnvironmentVariables": {"OLLAMA_CONTEXT_LENGTH": "64000", "OLLAMA_HOST": "127.0.0.1:11434"},
    "KeepAlive": True,
    "ThrottleInterval": 5,
}


@pytest.fixture
def agent_plist(tmp_path) -> Path:
    path = tmp_path / "com.ollama.ollama.plist"
    path.write_bytes(plistlib.dumps(AGENT))
    return path


def test_plutil_extracts_a_launch_agents_environment(agent_plist):
    result = shim("plutil", "-extract", "EnvironmentVariables.OLLAMA_CONTEXT_LENGTH", "raw", str(agent_plist))
    assert (result.returncode, result.stdout) == (0, "64000\n")
    assert shim("plutil", "-extract", "KeepAlive", "raw", str(agent_plist)).stdout == "true\n"
    assert shim("plutil", "-extract", "ProgramArguments.1", "raw", str(agent_plist)).stdout == "serve\n"
    as_json = shim("plutil", "-extract", "EnvironmentVariables", "json", "-o", "-", str(agent_plist)).stdout
    assert json.loads(as_json) == AGENT["EnvironmentVariables"]
    as_xml = shim("plutil", "-extract", "ProgramArguments", "xml1", "-o", "-", str(agent_plist)).stdout
    assert plistlib.loads(as_xml.encode()) == AGENT["ProgramArguments"]


def test_plutil_extract_of_a_missing_key_fails_like_plutil(agent_plist):
    result = shim("plutil", "-extract", "EnvironmentVariables.NOPE", "raw", str(agent_plist))
    assert result.returncode == 1
    assert result.stdout == ""
    assert "Could not extract value" in result.stderr and "EnvironmentVariables.NOPE" in result.stderr


def test_plutil_lint_convert_and_print(agent_plist, tmp_path):
    assert shim("plutil", "-lint", str(agent_plist)).stdout == f"{agent_plist}: OK\n"
    broken = tmp_path / "broken.plist"
    broken.write_text("<plist><dict><key>x</key>")
    assert shim("plutil", "-lint", str(broken)).returncode == 1
    assert shim("plutil", "-lint", str(tmp_path / "missing.plist")).returncode == 1
    assert shim("plutil", "-convert", "json", str(agent_plist)).returncode == 0
    assert json.loads(agent_plist.read_text()) == AGENT
    assert shim("plutil", "-convert", "xml1", str(agent_plist)).returncode == 0
    assert plistlib.loads(agent_plist.read_bytes()) == AGENT
    printed = shim("plutil", "-p", str(agent_plist)).stdout
    assert '"KeepAlive" => true' in printed and '0 => "/usr/local/bin/ollama"' in printed


def test_plutil_replace_and_remove(agent_plist):
    env = "EnvironmentVariables.OLLAMA_CONTEXT_LENGTH"
    assert shim("plutil", "-replace", env, "-string", "128000", str(agent_plist)).returncode == 0
    assert shim("plutil", "-extract", env, "raw", str(agent_plist)).stdout == "128000\n"
    assert shim("plutil", "-remove", env, str(agent_plist)).returncode == 0
    assert shim("plutil", "-extract", env, "raw", str(agent_plist)).returncode == 1


# -- dscl ---------------------------------------------------------------------------------------------------


@pytest.fixture
def directory(tmp_path) -> dict:
    (tmp_path / "etc").mkdir()
    (tmp_path / "etc" / "passwd").write_text(
        "root:x:0:0:root:/var/root:/bin/bash\ndaemon:x:1:1:daemon:/usr/sbin:/usr/sbin/nologin\n"
    )
    (tmp_path / "etc" / "group").write_text("root:x:0:\ndaemon:x:1:\n")
    extra = tmp_path / "var" / "lib" / "lab-directory"
    extra.mkdir(parents=True)
    (extra / "passwd").write_text(
        "dev:x:501:20:Dev:/Users/dev:/bin/zsh\nada:x:502:20:Ada Lovelace:/Users/ada:/bin/zsh\n"
    )
    (extra / "group").write_text("staff:x:20:root\nadmin:x:80:root,dev\n")
    (extra / "shadow").write_text("dev:*:20000:0:99999:7:::\nada:*:20000:0:99999:7:::\n")
    return {"OLLAMA_CLAUDE_LAB_DSCL_ROOT": str(tmp_path)}


def test_dscl_reads_a_laptop_user(directory):
    result = shim("dscl", ".", "-read", "/Users/dev", "UniqueID", "NFSHomeDirectory", "UserShell", env=directory)
    assert result.returncode == 0
    assert result.stdout == "UniqueID: 501\nNFSHomeDirectory: /Users/dev\nUserShell: /bin/zsh\n"
    assert shim("dscl", ".", "-read", "/Users/dev", "PrimaryGroupID", env=directory).stdout == "PrimaryGroupID: 20\n"
    # a value holding a space goes on its own line, as dscl prints it
    assert shim("dscl", ".", "-read", "/Users/ada", "RealName", env=directory).stdout == "RealName:\n Ada Lovelace\n"
    assert "RecordName: dev" in shim("dscl", ".", "-read", "/Users/dev", env=directory).stdout


def test_dscl_searches_by_attribute_and_takes_commands_without_dash(directory):
    found = shim("dscl", ".", "-search", "/Users", "UniqueID", "501", env=directory).stdout
    assert found == "dev\t\tUniqueID = (\n    501\n)\n"
    assert shim("dscl", ".", "read", "/Users/dev", "UniqueID", env=directory).stdout == "UniqueID: 501\n"


def test_dscl_unknown_user_fails_like_dscl(directory):
    result = shim("dscl", ".", "-read", "/Users/nobody-here", "UniqueID", env=directory)
    assert result.returncode == 56
    assert result.stdout == ""
    assert result.stderr == "<dscl_cmd> DS Error: -14136 (eDSRecordNotFound)\n"


def test_dscl_lists_system_and_laptop_users(directory):
    assert shim("dscl", ".", "-list", "/Users", env=directory).stdout.split() == ["ada", "daemon", "dev", "root"]
    rows = [line.split() for line in shim("dscl", ".", "-list", "/Users", "UniqueID", env=directory).stdout.splitlines()]
    assert ["dev", "501"] in rows and ["root", "0"] in rows
    admin = shim("dscl", ".", "-read", "/Groups/admin", "GroupMembership", env=directory).stdout
    assert admin == "GroupMembership: root dev\n"


def test_dscl_passwd_sets_a_crypt_hash_in_the_directorys_shadow(directory):
    if os.geteuid() != 0:
        pytest.skip("keeps the shadow file's owner: needs root")
    assert shim("dscl", ".", "-passwd", "/Users/dev", "s3cret", env=directory).returncode == 0
    shadow = Path(directory["OLLAMA_CLAUDE_LAB_DSCL_ROOT"], "var/lib/lab-directory/shadow").read_text()
    assert shadow.splitlines()[0].startswith("dev:$6$")
    assert shadow.splitlines()[1].startswith("ada:*:")


# -- ditto --------------------------------------------------------------------------------------------------


def make_app_zip(path: Path) -> None:
    """Ollama-darwin.zip's shape: an .app with an executable and a framework symlink."""
    with zipfile.ZipFile(path, "w") as zf:
        directory = zipfile.ZipInfo("Ollama.app/Contents/Resources/")
        directory.external_attr = (stat.S_IFDIR | 0o755) << 16 | 0x10
        zf.writestr(directory, b"")
        binary = zipfile.ZipInfo("Ollama.app/Contents/Resources/ollama")
        binary.external_attr = (stat.S_IFREG | 0o755) << 16
        zf.writestr(binary, b"#!/bin/sh\necho ollama\n")
        plist = zipfile.ZipInfo("Ollama.app/Contents/Info.plist")
        plist.external_attr = (stat.S_IFREG | 0o644) << 16
        zf.writestr(plist, plistlib.dumps({"CFBundleShortVersionString": "0.32.15"}))
        link = zipfile.ZipInfo("Ollama.app/Contents/Frameworks/Current")
        link.external_attr = (stat.S_IFLNK | 0o755) << 16
        zf.writestr(link, "../Resources")
        fork = zipfile.ZipInfo("__MACOSX/Ollama.app/._Info.plist")
        zf.writestr(fork, b"resource fork")


@pytest.mark.parametrize("flags", [["-x", "-k"], ["-xk"]])
def test_ditto_unpacks_an_app_zip_keeping_modes_and_links(tmp_path, flags):
    archive = tmp_path / "Ollama-darwin.zip"
    make_app_zip(archive)
    dest = tmp_path / "Applications"
    result = shim("ditto", *flags, str(archive), str(dest))
    assert result.returncode == 0, result.stderr
    binary = dest / "Ollama.app/Contents/Resources/ollama"
    assert stat.S_IMODE(binary.stat().st_mode) == 0o755
    assert stat.S_IMODE((dest / "Ollama.app/Contents/Info.plist").stat().st_mode) == 0o644
    link = dest / "Ollama.app/Contents/Frameworks/Current"
    assert link.is_symlink() and os.readlink(link) == "../Resources"
    assert not (dest / "__MACOSX").exists()
    assert subprocess.run([str(binary)], check=False, capture_output=True, text=True).stdout == "ollama\n"


def test_ditto_creates_a_zip_it_can_unpack(tmp_path):
    app = tmp_path / "src" / "Tool.app"
    (app / "bin").mkdir(parents=True)
    (app / "bin" / "tool").write_text("#!/bin/sh\n")
    (app / "bin" / "tool").chmod(0o755)
    (app / "current").symlink_to("bin")
    archive = tmp_path / "Tool.zip"
    assert shim("ditto", "-c", "-k", "--keepParent", str(app), str(archive)).returncode == 0
    assert shim("ditto", "-x", "-k", str(archive), str(tmp_path / "out")).returncode == 0
    assert stat.S_IMODE((tmp_path / "out/Tool.app/bin/tool").stat().st_mode) == 0o755
    assert os.readlink(tmp_path / "out/Tool.app/current") == "bin"


def test_ditto_of_a_missing_archive_fails(tmp_path):
    result = shim("ditto", "-x", "-k", str(tmp_path / "none.zip"), str(tmp_path / "out"))
    assert result.returncode == 1 and "No such file" in result.stderr


# -- mv -----------------------------------------------------------------------------------------------------

GNU_MV = {"OLLAMA_CLAUDE_LAB_GNU_MV": "/bin/mv"}


def test_mv_h_replaces_a_symlink_to_a_directory(tmp_path):
    (tmp_path / "v1").mkdir()
    (tmp_path / "v2").mkdir()
    (tmp_path / "current").symlink_to("v1")
    (tmp_path / "next").symlink_to("v2")
    result = shim("mv", "-fh", "next", "current", env=GNU_MV, cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert os.readlink(tmp_path / "current") == "v2"
    assert not (tmp_path / "v1" / "next").exists()


def test_mv_without_h_moves_into_the_linked_directory(tmp_path):
    (tmp_path / "v1").mkdir()
    (tmp_path / "current").symlink_to("v1")
    (tmp_path / "file").write_text("x")
    assert shim("mv", "-f", "file", "current", env=GNU_MV, cwd=tmp_path).returncode == 0
    assert (tmp_path / "v1" / "file").exists()


def test_mv_refuses_gnu_options(tmp_path):
    (tmp_path / "a").write_text("x")
    result = shim("mv", "-fT", "a", "b", env=GNU_MV, cwd=tmp_path)
    assert result.returncode == 64
    assert "mv: illegal option -- T" in result.stderr
    assert (tmp_path / "a").exists()


# -- the tree, the flavour, the inventory -------------------------------------------------------------------


def fake_debian_root(root: Path) -> Path:
    """The files customise_macos reads or edits, as rootfs.customise leaves them (dev added by useradd)."""
    for sub in ("etc", "usr/bin", "usr/sbin", "root/.ssh", "home/dev", "var/lib"):
        (root / sub).mkdir(parents=True, exist_ok=True)
    (root / "etc/passwd").write_text(
        "root:x:0:0:root:/root:/bin/bash\nsshd:x:100:65534::/run/sshd:/usr/sbin/nologin\n"
        "dev:x:1000:1000::/home/dev:/bin/bash\n"
    )
    (root / "etc/shadow").write_text("root:*:19000:0:99999:7:::\ndev:!:19000:0:99999:7:::\n")
    (root / "etc/group").write_text(
        "root:x:0:\ndialout:x:20:\nsudo:x:27:\nshadow:x:42:\nstaff:x:50:\ndev:x:1000:\n"
    )
    (root / "etc/gshadow").write_text("root:*::\ndialout:*::\nstaff:*::\ndev:!::\n")
    (root / "etc/nsswitch.conf").write_text("passwd:         files systemd\ngroup:          files systemd\n"
                                            "shadow:         files\nhosts:          files dns\n")
    for tool in ("timeout", "sha256sum", "getent", "uname", "stat", "mv", "shasum"):
        (root / "usr/bin" / tool).write_text(f"gnu {tool}\n")
    (root / "usr/sbin/chpasswd").write_text("gnu chpasswd\n")
    (root / "root/.ssh/authorized_keys").write_text("key\n")
    (root / "etc/zsh").mkdir()
    (root / "etc/zsh/zshenv").write_text("# debian\n")
    return root


@pytest.mark.skipif(os.geteuid() != 0, reason="the tree's homes are chowned to the laptop users: needs root")
def test_customise_macos_makes_the_mac_userland(tmp_path):
    root = fake_debian_root(tmp_path / "root-tree")
    userland.customise_macos(root)
    passwd = (root / "etc/passwd").read_text()
    assert "dev" not in passwd and "root:x:0:0:root:/var/root:/bin/bash" in passwd
    group = (root / "etc/group").read_text()
    assert not re.search(r"^(dev|dialout|staff):", group, re.MULTILINE)
    assert "dev" not in (root / "etc/shadow").read_text()
    extra = root / "var/lib/lab-directory"
    assert "dev:x:501:20:Dev:/Users/dev:/bin/zsh" in (extra / "passwd").read_text()
    assert "ada:x:502:20:" in (extra / "passwd").read_text()
    assert "admin:x:80:root,dev" in (extra / "group").read_text()
    assert stat.S_IMODE((extra / "shadow").stat().st_mode) == 0o640
    assert "passwd:         files db systemd" in (root / "etc/nsswitch.conf").read_text()
    assert (root / "var/root/.ssh/authorized_keys").read_text() == "key\n"
    assert not (root / "root").exists() and not (root / "home/dev").exists()
    home = root / "Users/dev"
    assert (home.stat().st_uid, home.stat().st_gid) == (501, 20)
    for tool in ("timeout", "sha256sum", "getent"):
        assert not (root / "usr/bin" / tool).exists()
    assert (root / "usr/bin/shasum").read_text() == "gnu shasum\n"
    shims = [shim_file for shim_file in BIN.iterdir() if shim_file.is_file()]  # not a test's __pycache__
    assert {"launchctl", "dscl", "plutil", "uname"} <= {shim_file.name for shim_file in shims}
    assert not (root / "usr/bin/__pycache__").exists()
    for shim_file in shims:
        installed = root / "usr/bin" / shim_file.name
        assert installed.read_bytes() == shim_file.read_bytes()
        assert stat.S_IMODE(installed.stat().st_mode) == 0o755
    assert (root / userland.GNU_DIR / "mv").read_text() == "gnu mv\n"
    assert (root / "usr/sbin/chpasswd").read_bytes() == (userland.SBIN / "chpasswd").read_bytes()
    assert (root / "Applications").is_dir() and (root / "Library/LaunchAgents").is_dir()
    assert "zsh-newuser-install() { :; }" in (root / "etc/zsh/zshenv").read_text()


def test_macos_flavour_parses_to_bookworm_with_a_mac_userland():
    spec = HostSpec.parse("mac1:laptops@macos")
    assert (spec.name, spec.groups, spec.suite, spec.flavour) == ("mac1", ("laptops",), "bookworm", "macos")
    assert HostSpec.parse("gpu1@trixie").flavour == "linux"
    with pytest.raises(LabError, match="macos"):
        HostSpec.parse("mac1@ventura")


def test_the_mac_tree_has_its_own_key_following_the_shims(monkeypatch):
    assert rootfs.macos_key() != rootfs.rootfs_key()
    assert rootfs.macos_base_key() != rootfs.rootfs_key()
    before = rootfs.macos_key()
    monkeypatch.setattr(userland, "content_hash", lambda: "changed")
    assert rootfs.macos_key() != before


def test_outdated_mac_trees_are_pruned_unless_mounted_or_recent(tmp_path):
    current, mounted, recent, old, linux = (tmp_path / name for name in (
        "macos-current", "macos-mounted", "macos-recent", "macos-old", "0123456789abcdef"))
    for tree in (current, mounted, recent, old, linux):
        tree.mkdir()
    later = time.time() + 3600  # an hour from now, every tree is old but the one just touched
    os.utime(recent, (later, later))
    mountinfo = tmp_path / "mountinfo"
    mountinfo.write_text(f"99 1 0:1 / /x rw - overlay oc-x rw,lowerdir={mounted},upperdir=/u,workdir=/w\n")
    rootfs.prune_macos_trees(current, log=lambda _: None, mountinfo=mountinfo, now=later)
    assert sorted(p.name for p in tmp_path.iterdir() if p.is_dir()) == sorted(
        t.name for t in (current, mounted, recent, linux))


def test_mac_logins_are_root_in_var_root_and_the_laptop_users(tmp_path):
    homes = login_homes(tmp_path, "macos")
    assert (tmp_path / "var/root", 0, 0) in homes
    assert (tmp_path / "Users/dev", 501, 20) in homes and (tmp_path / "Users/ada", 502, 20) in homes
    assert login_homes(tmp_path, "linux") == [(tmp_path / "root", 0, 0), (tmp_path / "home/dev", 1000, 1000)]


def test_a_mac_host_is_reached_as_dev_without_host_wide_sudo(tmp_path, monkeypatch):
    monkeypatch.delenv("OLLAMA_CLAUDE_LAB_USER", raising=False)
    state = sample_state(tmp_path)
    mac = state.hosts[0]
    mac.flavour = "macos"
    data = connection_data(state, mac)
    assert data["ssh_user"] == "dev" and "_sudo" not in data and "_sudo_password" not in data
    mac.dev_sudo = "password"
    assert connection_data(state, mac)["_sudo_password"] == state.dev_password
    assert "_sudo" not in connection_data(state, mac)
    monkeypatch.setenv("OLLAMA_CLAUDE_LAB_USER", "root")
    assert connection_data(state, mac)["ssh_user"] == "root"
    assert "_sudo_password" not in connection_data(state, mac)


def test_linux_hosts_are_unchanged(tmp_path, monkeypatch):
    monkeypatch.delenv("OLLAMA_CLAUDE_LAB_USER", raising=False)
    state = sample_state(tmp_path)
    assert connection_data(state, state.hosts[0])["ssh_user"] == "root"
    monkeypatch.setenv("OLLAMA_CLAUDE_LAB_USER", "dev")
    assert connection_data(state, state.hosts[0])["_sudo"] is True
