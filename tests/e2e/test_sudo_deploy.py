"""
The README's inventory shape on the lab: a non-root SSH user (the lab's `dev`) with `_sudo: True`, sudo without a
password on gpu1 and with one (`_sudo_password`) on gpu2. The whole deploy and its real edit test are green, the
files in the user's home belong to the user, and a second run changes nothing.

Run with OLLAMA_CLAUDE_TEST_LAB=fleet OLLAMA_CLAUDE_TEST_SUBNET=10.213.41.0/24.
"""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest
from pyinfra_cli_run import PYINFRA, REPO, PyinfraRun

from ollama_claude.lab.inventory import USER_ENV
from ollama_claude.lab.release_mirror import serve_release_mirror

USER = "dev"
HOME = f"/home/{USER}"
#: What the deploy writes for the user: each must be the user's own file.
USER_FILES = (f"{HOME}/.claude/settings.json", f"{HOME}/.config/ollama-claude/env.sh", f"{HOME}/.bashrc")


def deploy_as_dev(lab, host: str, report_dir: Path, deploy: str = "deploys/ollama_claude.py") -> PyinfraRun:
    """`pyinfra inventories/lab.py` connecting as dev with sudo (the inventory adds the password if sudo asks)."""
    done = subprocess.run(
        [str(PYINFRA), "-y", "--limit", host, "--data", f"verify_report_dir={json.dumps(str(report_dir))}",
         "inventories/lab.py", deploy],
        cwd=REPO, env={**lab.pyinfra_env(), USER_ENV: USER}, text=True, capture_output=True, timeout=900,
        check=False,
    )
    return PyinfraRun(done.returncode, done.stdout, done.stderr)


def statuses(report_dir: Path, host: str) -> dict[int, str]:
    report = json.loads((report_dir / "verify.json").read_text())
    return {r["item"]: r["status"] for r in report["records"] if r["host"] == host and r["user"] == USER}


def owners(lab, host: str) -> dict[str, str]:
    out = lab.ssh(host, f"stat -c '%n %U:%G' {' '.join(USER_FILES)}", check=True).stdout
    return dict(line.split(" ", 1) for line in out.splitlines())


@pytest.fixture(scope="module")
def mirror(lab):
    return serve_release_mirror(lab)


def test_lab_user_has_the_sudo_each_mode_gives(lab):
    lab.set_dev_sudo("password", hosts=["gpu2"])
    assert lab.ssh("gpu1", "sudo -n true", user=USER).returncode == 0
    asks = lab.ssh("gpu2", "sudo -n true", user=USER)
    assert asks.returncode != 0 and "password is required" in asks.stderr, asks
    password = lab.require_state().dev_password
    assert lab.ssh("gpu2", f"echo {password} | sudo -S -p '' id -u", user=USER).stdout.strip() == "0"


@pytest.mark.parametrize("host", ["gpu1", "gpu2"], ids=["nopasswd", "sudo_password"])
def test_sudo_user_deploys_and_verifies_green(lab, mirror, host, tmp_path):
    lab.set_dev_sudo("nopasswd" if host == "gpu1" else "password", hosts=[host])
    run = deploy_as_dev(lab, host, tmp_path)
    assert run.rc == 0, run
    assert statuses(tmp_path, host) == dict.fromkeys(range(1, 10), "pass"), run
    assert set(owners(lab, host).values()) == {f"{USER}:{USER}"}
    # Only the system parts are root's.
    assert lab.ssh(host, "stat -c %U /usr/local/lib/ollama-claude /etc/systemd/system/ollama.service",
                   check=True).stdout.split() == ["root", "root"]
    again = deploy_as_dev(lab, host, tmp_path)
    assert again.rc == 0, again
    assert again.changes == 0, again
