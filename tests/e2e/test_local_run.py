"""
`pyinfra @local deploys/ollama_claude.py` on the machine itself, inside lab hosts: the toolkit pip-installed from
its wheel into a venv on the host (no package index there: the wheelhouse comes from the control machine, pip
from its own wheel), group_data/ and deploys/ beside it as in a checkout. As root on gpu1, as the dev user with
`--sudo` on gpu2: the whole deploy and its real edit test are green, the user's files are the user's, a second
run changes nothing.

Run with OLLAMA_CLAUDE_TEST_LAB=local OLLAMA_CLAUDE_TEST_SUBNET=10.213.63.0/24.
"""

from __future__ import annotations

import json
import shlex

import pytest
import toolkit_wheelhouse
from pyinfra_cli_run import PyinfraRun
from toolkit_on_host import as_user, install_toolkit

from ollama_claude.lab.release_mirror import serve_release_mirror

pytestmark = [pytest.mark.lab]

USER_FILES = ("/home/dev/.claude/settings.json", "/home/dev/.config/ollama-claude/env.sh", "/home/dev/.bashrc")
#: (lab host, account running pyinfra, its project directory, extra pyinfra arguments)
RUNS = {"root": ("gpu1", "root", "/root/ollama-claude", []),
        "sudo": ("gpu2", "dev", "/home/dev/ollama-claude", ["--sudo"])}


@pytest.fixture(scope="module")
def installed(lab, tmp_path_factory):
    """Per host: wheelhouse uploaded, a venv made by the running account, the toolkit installed from its wheel."""
    serve_release_mirror(lab)
    wheels = toolkit_wheelhouse.build(tmp_path_factory.mktemp("wheels"))
    for host, user, project, _ in RUNS.values():
        install_toolkit(lab, host, user, project, wheels)
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
