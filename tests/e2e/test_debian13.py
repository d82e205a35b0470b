"""
Debian 13 beside Debian 12: a mixed lab fleet (gpu1 bookworm, gpu2 trixie, each from its own cached rootfs) runs
the whole deploy (deploys/ollama_claude.py, ending with verify and the real Claude Code edit test) green, as root
and as the lab user with sudo; a second run changes nothing; a full uninstall leaves nothing of ours on either.

Run with OLLAMA_CLAUDE_TEST_LAB=trixie OLLAMA_CLAUDE_TEST_SUBNET=10.213.71.0/24.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from pyinfra_cli_run import PYINFRA, REPO, PyinfraRun

from ollama_claude.lab.inventory import USER_ENV
from ollama_claude.lab.release_mirror import serve_release_mirror

HOSTS = {"gpu1": ("bookworm", "12"), "gpu2": ("trixie", "13")}
ALL_PASS = {item: "pass" for item in range(1, 10)}


@pytest.fixture(scope="module")
def lab(mixed_lab):
    """gpu1 on Debian 12, gpu2 on Debian 13: every lab fixture of this module uses that fleet."""
    return mixed_lab


@pytest.fixture(scope="module")
def deploy(lab, tmp_path_factory):
    serve_release_mirror(lab)

    def run(user: str = "root", deploy_file: str = "deploys/ollama_claude.py", **data) -> tuple[PyinfraRun, Path]:
        reports = tmp_path_factory.mktemp("verify")
        data = {"verify_report_dir": str(reports), **data}
        options = [item for key, value in data.items() for item in ("--data", f"{key}={json.dumps(value)}")]
        done = subprocess.run(
            [str(PYINFRA), "-y", *options, "inventories/lab.py", deploy_file],
            cwd=REPO, env={**lab.pyinfra_env(), USER_ENV: user}, text=True, capture_output=True, timeout=900,
            check=False,
        )
        return PyinfraRun(done.returncode, done.stdout, done.stderr), reports

    return run


def statuses(reports: Path) -> dict[str, dict[int, str]]:
    records = json.loads((reports / "verify.json").read_text())["records"]
    by_host: dict[str, dict[int, str]] = {}
    for record in records:
        by_host.setdefault(record["host"], {})[record["item"]] = record["status"]
    return by_host


def sh(lab, host: str, command: str) -> str:
    result = lab.ssh(host, command, timeout=120)
    assert result.returncode == 0, f"{command}\n{result.stdout}\n{result.stderr}"
    return result.stdout


def test_each_host_runs_the_debian_release_of_its_spec(lab):
    for host, (codename, version) in HOSTS.items():
        release = sh(lab, host, ". /etc/os-release; echo $VERSION_CODENAME $VERSION_ID")
        assert release.split() == [codename, version], (host, release)
        assert sh(lab, host, "systemctl is-system-running --wait || true").strip() in ("running", "degraded")
    state = lab.require_state()
    assert {h.name: h.suite for h in state.hosts} == {"gpu1": "bookworm", "gpu2": "trixie"}
    assert state.host("gpu1").rootfs != state.host("gpu2").rootfs  # one cached tree per suite
    status = subprocess.run(
        [str(Path(sys.executable).parent / "ollama-claude"), "lab", "status", "--json", "--name", lab.name,
         "--state-dir", str(lab.state_root)],
        capture_output=True, text=True, check=False,
    )
    assert status.returncode == 0, status.stderr
    assert {h["name"]: h["suite"] for h in json.loads(status.stdout)} == {"gpu1": "bookworm", "gpu2": "trixie"}


def test_mixed_fleet_deploys_and_passes_the_edit_test_then_changes_nothing(lab, deploy):
    first, reports = deploy()
    assert first.rc == 0 and first.changes > 0, first
    assert statuses(reports) == {"gpu1": ALL_PASS, "gpu2": ALL_PASS}, first
    for host in HOSTS:
        assert "0.32.15" in sh(lab, host, "curl -fsS 127.0.0.1:11434/api/version")
        assert sh(lab, host, "sudo -u dev -i claude --version").startswith("2.1.332")

    second, reports = deploy()
    assert second.rc == 0 and second.changes == 0, second
    assert statuses(reports) == {"gpu1": ALL_PASS, "gpu2": ALL_PASS}, second


def test_as_the_lab_user_with_sudo_asking_for_a_password(lab, deploy):
    """trixie's sudo 1.9.16 beside bookworm's 1.9.13: the README's inventory shape, `_sudo` + `_sudo_password`."""
    lab.set_dev_sudo("password")
    try:
        run, reports = deploy(user="dev")
        assert run.rc == 0 and run.changes == 0, run
        assert statuses(reports) == {"gpu1": ALL_PASS, "gpu2": ALL_PASS}, run
    finally:
        lab.set_dev_sudo("nopasswd")


def test_full_uninstall_leaves_nothing_of_ours_on_either_release(lab, deploy):
    run, _ = deploy(deploy_file="deploys/uninstall.py", uninstall_scope="everything")
    assert run.rc == 0 and run.changes > 0, run
    gone = ("/etc/systemd/system/ollama.service", "/usr/local/bin/ollama", "/usr/local/bin/claude",
            "/usr/local/lib/ollama-claude", "/home/dev/.config/ollama-claude")
    for host in HOSTS:
        assert sh(lab, host, " ".join(f"[ -e {p} ] && echo {p};" for p in gone) + " true").split() == [], host
        assert sh(lab, host, "grep -l ollama-claude /home/dev/.bashrc /home/dev/.profile || true").strip() == ""
    again, _ = deploy(deploy_file="deploys/uninstall.py", uninstall_scope="everything")
    assert again.rc == 0 and again.changes == 0, again
