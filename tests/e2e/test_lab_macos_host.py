"""
The Mac-shaped lab host (`--hosts mac1:laptops@macos`, lab/macos) over real SSH: what a deploy meets on it is what
../shared/reference/macos.md says it meets on a Mac. Among them the fault the product must handle: pyinfra's
`server.Users` fact does not see the laptop user.

Run with OLLAMA_CLAUDE_TEST_LAB=maca OLLAMA_CLAUDE_TEST_SUBNET=10.213.71.0/24
OLLAMA_CLAUDE_TEST_SPARE_SUBNET=10.213.72.0/24.
"""

from __future__ import annotations

import json
import shlex
import subprocess
import sys
from pathlib import Path

import pytest
from pyinfra_cli_run import PYINFRA, REPO

from ollama_claude.lab.inventory import USER_ENV, lab_inventory


def on_mac(lab, command: str, user: str = "dev") -> subprocess.CompletedProcess:
    return lab.ssh("mac1", command, user=user, timeout=30)


def out(lab, command: str, user: str = "dev") -> str:
    result = on_mac(lab, command, user)
    assert result.returncode == 0, (command, result.stderr)
    return result.stdout.strip()


def test_it_is_darwin_on_arm64(mac_lab):
    assert out(mac_lab, "uname -s") == "Darwin"
    assert out(mac_lab, "uname -m") == "arm64"
    assert out(mac_lab, "sw_vers -productVersion").startswith("15.")
    # the Linux GPU box of the same lab is untouched
    assert mac_lab.ssh("gpu1", "uname -s", timeout=30).stdout.strip() == "Linux"


def test_the_laptop_user_is_in_the_directory_not_in_etc_passwd(mac_lab):
    assert on_mac(mac_lab, "grep '^dev:' /etc/passwd").stdout == ""
    assert on_mac(mac_lab, "grep -E '^(dev|staff|admin):' /etc/group").stdout == ""
    assert out(mac_lab, "id -u dev") == "501"
    assert out(mac_lab, "id -gn dev") == "staff"
    assert out(mac_lab, "id -g dev") == "20"
    assert "admin" in out(mac_lab, "id -Gn dev").split()
    assert out(mac_lab, "dscl . -read /Users/dev NFSHomeDirectory") == "NFSHomeDirectory: /Users/dev"
    assert out(mac_lab, "dscl . -read /Users/dev UniqueID UserShell") == "UniqueID: 501\nUserShell: /bin/zsh"
    missing = on_mac(mac_lab, "dscl . -read /Users/nosuchuser UniqueID")
    assert missing.returncode == 56 and "eDSRecordNotFound" in missing.stderr
    assert out(mac_lab, "id -u ada") == "502"


def test_the_laptop_user_logs_in_to_zsh_in_users(mac_lab):
    assert out(mac_lab, "echo $SHELL") == "/bin/zsh"
    assert out(mac_lab, "echo $ZSH_VERSION") != ""  # the command itself ran in zsh
    assert out(mac_lab, "echo $HOME; pwd") == "/Users/dev\n/Users/dev"
    assert out(mac_lab, "stat -f '%Su:%Sg %Lp' /Users/dev") == "dev:staff 750"
    # an interactive login shell on a terminal starts without Debian's new-user menu, as a Mac's zsh does
    shell = out(mac_lab, "perl -e 'alarm 10; exec @ARGV' script -qc \"zsh -lic 'echo ready'\" /dev/null </dev/null",
                user="ada")
    assert shell.replace("\r", "") == "ready"


def test_no_gnu_timeout_or_sha256sum_but_shasum(mac_lab):
    assert on_mac(mac_lab, "command -v timeout").returncode != 0
    assert on_mac(mac_lab, "command -v sha256sum").returncode != 0
    assert out(mac_lab, "printf hi | shasum -a 256").startswith(
        "8f434346648f6b96df89dda901c5176b10a6d83961dd3c1ac88b59b2dc327aa4"
    )


def test_bsd_userland_shims(mac_lab):
    refused = on_mac(mac_lab, "stat -c %s /etc/hostname")
    assert refused.returncode == 1 and "illegal option -- c" in refused.stderr
    assert out(mac_lab, "stat -f %z /etc/hostname") == str(len("mac1\n"))
    assert out(mac_lab, "cd ~ && mkdir -p v1 v2 && ln -sfn v1 cur && ln -sfn v2 nxt && mv -fh nxt cur && "
                        "readlink cur") == "v2"
    plist = ("<?xml version='1.0'?><plist version='1.0'><dict><key>EnvironmentVariables</key><dict>"
             "<key>OLLAMA_CONTEXT_LENGTH</key><string>64000</string></dict></dict></plist>")
    assert out(mac_lab, f"printf %s {shlex.quote(plist)} > ~/a.plist && "
                        "plutil -extract EnvironmentVariables.OLLAMA_CONTEXT_LENGTH raw ~/a.plist") == "64000"
    assert out(mac_lab, "mkdir -p ~/z/A.app && printf '#!/bin/sh\\necho ok\\n' > ~/z/A.app/run && chmod 755 "
                        "~/z/A.app/run && ditto -c -k --keepParent ~/z/A.app ~/a.zip && ditto -xk ~/a.zip ~/out && "
                        "~/out/A.app/run") == "ok"


def test_sudo_h_lands_in_var_root_as_uid_0(mac_lab):
    assert out(mac_lab, "sudo -H sh -c 'echo $HOME; id -u'") == "/var/root\n0"
    assert out(mac_lab, "sudo -n sh -c 'id -un'") == "root"


def test_ada_is_another_laptop_user_without_sudo(mac_lab):
    assert out(mac_lab, "id -un; echo $HOME", user="ada") == "ada\n/Users/ada"
    assert on_mac(mac_lab, "sudo -n true", user="ada").returncode != 0


def test_root_logs_in_with_home_var_root(mac_lab):
    assert out(mac_lab, "id -u; echo $HOME", user="root") == "0\n/var/root"
    # systemd-nspawn makes an empty /root in every container; nothing of root's is there
    assert out(mac_lab, "ls -A /root", user="root") == ""


def test_the_inventory_reaches_the_mac_as_dev_without_host_wide_sudo(mac_lab, monkeypatch):
    monkeypatch.delenv(USER_ENV, raising=False)
    groups = lab_inventory(mac_lab.name, mac_lab.state_root)
    mac = dict(groups["laptops"])["mac1"]
    assert mac["ssh_user"] == "dev" and "_sudo" not in mac
    assert dict(groups["gpu"])["gpu1"]["ssh_user"] == "root"
    monkeypatch.setenv(USER_ENV, "root")
    assert dict(lab_inventory(mac_lab.name, mac_lab.state_root)["laptops"])["mac1"]["ssh_user"] == "root"


def pyinfra_users_fact(lab, user: str | None = None) -> dict:
    env = {key: value for key, value in lab.pyinfra_env().items() if key != USER_ENV}
    if user:
        env[USER_ENV] = user
    done = subprocess.run(
        [str(PYINFRA), "--json", "--limit", "mac1", "inventories/lab.py", "fact", "server.Users"],
        cwd=REPO, env=env, text=True, capture_output=True, timeout=120, check=False,
    )
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)


@pytest.mark.parametrize("user", [None, "root"])
def test_pyinfras_users_fact_does_not_see_the_laptop_user(mac_lab, user):
    """The fault the product must fix (macos.md "Accounts"): server.Users reads /etc/passwd."""
    facts = pyinfra_users_fact(mac_lab, user)
    users = facts["server.Users"]["mac1"]
    assert "root" in users and users["root"]["home"] == "/var/root"
    assert "dev" not in users and "ada" not in users


def test_sudo_with_a_password_on_the_mac(mac_lab):
    """The lab's password mode works for a directory user: the password is set through dscl . -passwd."""
    mac_lab.set_dev_sudo("password", ["mac1"])
    try:
        state = mac_lab.require_state()
        mac = dict(lab_inventory(mac_lab.name, mac_lab.state_root)["laptops"])["mac1"]
        assert mac["_sudo_password"] == state.dev_password and "_sudo" not in mac
        assert on_mac(mac_lab, "sudo -n true").returncode != 0
        asked = on_mac(mac_lab, f"printf '%s\\n' {shlex.quote(state.dev_password)} | sudo -S -k -H sh -c 'id -u'")
        assert asked.stdout.strip() == "0", asked.stderr
    finally:
        mac_lab.set_dev_sudo("nopasswd", ["mac1"])


def test_lab_status_shows_the_flavour(mac_lab):
    result = subprocess.run(
        [str(Path(sys.executable).parent / "ollama-claude"), "lab", "status", "--json", "--name", mac_lab.name,
         "--state-dir", str(mac_lab.state_root)],
        capture_output=True, text=True, check=False,
    )
    assert result.returncode == 0, result.stderr
    hosts = {h["name"]: h for h in json.loads(result.stdout)}
    assert (hosts["mac1"]["flavour"], hosts["mac1"]["suite"]) == ("macos", "bookworm")
    assert hosts["gpu1"]["flavour"] == "linux"
