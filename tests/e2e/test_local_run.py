"""
`pyinfra @local deploys/ollama_claude.py` on the machine itself, inside lab hosts: the toolkit pip-installed from
its wheel into a venv on the host (no package index there: the wheelhouse comes from the control machine, pip
from its own wheel), group_data/ and deploys/ beside it as in a checkout. As root on gpu1, as the dev user with
`--sudo` on gpu2: the whole deploy and its real edit test are green, the user's files are the user's, a second
run changes nothing.

Run with OLLAMA_CLAUDE_TEST_LAB=local OLLAMA_CLAUDE_TEST_SUBNET=10.213.63.0/24.
"""

from __future__ import annotations

import io
import json
import shlex
import subprocess
import tarfile
from pathlib import Path

import pytest
import toolkit_wheelhouse
from pyinfra_cli_run import REPO, PyinfraRun

from ollama_claude.lab.release_mirror import serve_release_mirror

pytestmark = [pytest.mark.lab]

WHEELS = "/var/tmp/ollama-claude-wheels"
USER_FILES = ("/home/dev/.claude/settings.json", "/home/dev/.config/ollama-claude/env.sh", "/home/dev/.bashrc")
#: (lab host, account running pyinfra, its project directory, extra pyinfra arguments)
RUNS = {"root": ("gpu1", "root", "/root/ollama-claude", []),
        "sudo": ("gpu2", "dev", "/home/dev/ollama-claude", ["--sudo"])}


def upload(lab, host: str, files: dict[str, Path], dest: str, owner: str) -> None:
    """Files from this machine into ``dest`` on the host (tar over the lab's SSH), owned by ``owner``."""
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as archive:
        for name, path in files.items():
            archive.add(path, arcname=name)
    subprocess.run([*lab.ssh_argv(host), f"mkdir -p {dest} && tar -xf - -C {dest} && chown -R {owner}: {dest}"],
                   input=buffer.getvalue(), check=True, capture_output=True, timeout=120)


def as_user(user: str, command: str) -> str:
    return command if user == "root" else f"su - {user} -c {shlex.quote(command)}"


@pytest.fixture(scope="module")
def installed(lab, tmp_path_factory):
    """Per host: wheelhouse uploaded, a venv made by the running account, the toolkit installed from its wheel."""
    serve_release_mirror(lab)
    wheels = toolkit_wheelhouse.build(tmp_path_factory.mktemp("wheels"))
    pip = next(wheels.glob("pip-*.whl")).name
    for host, user, project, _ in RUNS.values():
        upload(lab, host, {p.name: p for p in wheels.glob("*.whl")}, WHEELS, "root")
        upload(lab, host, {"deploys": REPO / "deploys", "group_data": REPO / "group_data"}, project, user)
        lab.ssh(host, f"chmod -R a+rX {WHEELS}", check=True)
        lab.ssh(host, as_user(user, f"cd {project} && python3 -m venv --without-pip .venv && .venv/bin/python "
                                    f"{WHEELS}/{pip}/pip install -q --no-index --find-links {WHEELS} ollama_claude pip"),
                check=True)
    return lab.require_state().host_data


def local_run(lab, key: str, host_data: dict) -> PyinfraRun:
    host, user, project, extra = RUNS[key]
    data = {**{k: host_data[k] for k in ("ollama_download_url", "claude_code_registry", "claude_users")},
            "verify_report_dir": f"/tmp/report-{key}"}
    options = " ".join(f"--data {shlex.quote(f'{k}={json.dumps(v)}')}" for k, v in data.items())
    command = f"cd {project} && .venv/bin/pyinfra -y {' '.join(extra)} {options} @local deploys/ollama_claude.py"
    done = lab.ssh(host, as_user(user, command), check=False)
    return PyinfraRun(done.returncode, done.stdout, done.stderr)


def statuses(lab, key: str) -> dict[int, str]:
    host = RUNS[key][0]
    report = json.loads(lab.ssh(host, f"cat /tmp/report-{key}/verify.json", check=True).stdout)
    return {r["item"]: r["status"] for r in report["records"] if r["user"] == "dev"}


@pytest.mark.parametrize("key", list(RUNS), ids=["as_root", "as_dev_with_sudo"])
def test_local_run_deploys_and_verifies_green_and_a_rerun_changes_nothing(lab, installed, key):
    host, _, project, _ = RUNS[key]
    assert "templates" in lab.ssh(host, f"ls {project}/.venv/lib/python3*/site-packages/ollama_claude",
                                  check=True).stdout  # the templates travel in the wheel
    run = local_run(lab, key, installed)
    assert run.rc == 0, run
    assert statuses(lab, key) == dict.fromkeys(range(1, 10), "pass"), run
    owners = lab.ssh(host, f"stat -c %U:%G {' '.join(USER_FILES)}", check=True).stdout.split()
    assert set(owners) == {"dev:dev"}
    assert lab.ssh(host, "stat -c %U /usr/local/lib/ollama-claude /etc/systemd/system/ollama.service",
                   check=True).stdout.split() == ["root", "root"]
    again = local_run(lab, key, installed)
    assert again.rc == 0, again
    assert again.changes == 0, again
