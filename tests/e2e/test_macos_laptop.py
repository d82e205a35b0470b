"""
A Mac laptop beside a Linux GPU box, on the Mac-shaped lab host (lab/macos: Darwin userland, accounts in a
directory service, launchd with GUI and background domains, Ollama.app): the whole deploy, verify and the real
edit test as the laptop's user, reached as that user over SSH (sudo only for the system parts) and as root the way
MDM tools run; logged out of the GUI, with Ollama.app installed, a config change while a model is loaded; a
second run changes nothing; uninstall restores. Each of these failed on the earlier macOS path (issue 16).

Run with OLLAMA_CLAUDE_TEST_LAB=mac OLLAMA_CLAUDE_TEST_SUBNET=10.213.57.0/24.
"""

from __future__ import annotations

import json
import shlex
import subprocess
from pathlib import Path

import pytest
import toolkit_wheelhouse
from pyinfra_cli_run import PYINFRA, REPO, PyinfraRun
from toolkit_on_host import as_user, install_toolkit

from ollama_claude.lab.inventory import USER_ENV
from ollama_claude.lab.macos import launchd as lab_launchd
from ollama_claude.lab.release_mirror import serve_release_mirror

pytestmark = [pytest.mark.lab]

MAC, USER, HOME = "mac1", "dev", "/Users/dev"
PLIST = f"{HOME}/Library/LaunchAgents/com.ollama-claude.ollama.plist"
LABEL = "com.ollama-claude.ollama"
ALL_PASS = dict.fromkeys(range(1, 10), "pass")


def deploy(lab, report_dir: Path, deploy_file: str = "deploys/ollama_claude.py", user: str | None = None,
           limit: tuple[str, ...] = ("--limit", MAC), **data) -> PyinfraRun:
    """The real pyinfra CLI against the lab inventory, limited to the Mac (connected as dev unless ``user``)."""
    options = [arg for key, value in {"verify_report_dir": str(report_dir), **data}.items()
               for arg in ("--data", f"{key}={json.dumps(value)}")]
    env = {**lab.pyinfra_env(), **({USER_ENV: user} if user else {})}
    done = subprocess.run([str(PYINFRA), "-y", *limit, *options, "inventories/lab.py", deploy_file],
                          cwd=REPO, env=env, text=True, capture_output=True, timeout=900, check=False)
    return PyinfraRun(done.returncode, done.stdout, done.stderr)


def statuses(report_dir: Path, user: str = USER, host: str = MAC) -> dict[int, str]:
    report = json.loads((report_dir / "verify.json").read_text())
    return {r["item"]: r["status"] for r in report["records"] if r["host"] == host and r["user"] == user}


def on_mac(lab, command: str, user: str = "root") -> str:
    return lab.ssh(MAC, command, user=user, check=True).stdout


def agent_domains(lab) -> list[str]:
    return [d for d in ("gui/501", "user/501")
            if lab.ssh(MAC, f"launchctl print {d}/{LABEL} >/dev/null 2>&1").returncode == 0]


def context_in_effect(lab) -> str:
    return on_mac(lab, f"plutil -extract EnvironmentVariables.OLLAMA_CONTEXT_LENGTH raw -o - {PLIST}").strip()


@pytest.fixture(scope="module")
def mac(mac_lab):
    serve_release_mirror(mac_lab)
    return mac_lab


def test_the_host_is_mac_shaped_where_the_old_path_broke(mac):
    """What each fault met: no laptop user in /etc/passwd, no GNU timeout, sudo's HOME is /var/root."""
    assert on_mac(mac, "uname -s").strip() == "Darwin"
    assert mac.ssh(MAC, f"grep -c '^{USER}:' /etc/passwd").stdout.strip() == "0"
    assert on_mac(mac, f"id -u {USER}").strip() == "501"
    assert mac.ssh(MAC, "command -v timeout").returncode != 0
    assert on_mac(mac, "sudo -H sh -c 'echo $HOME'", user=USER).strip() == "/var/root"


def test_laptop_user_deploys_green_at_the_login_window_and_again_with_no_changes(mac, tmp_path):
    """Nobody at the GUI (gui/501 absent): the agent loads in the background domain, as dev, with its env; the
    fleet's Linux GPU box (reached as root) in the same run."""
    lab_launchd.console_logout(mac, MAC)
    run = deploy(mac, tmp_path, limit=())
    assert run.rc == 0, run
    assert statuses(tmp_path) == ALL_PASS, run
    assert statuses(tmp_path, host="gpu1") == ALL_PASS, run
    assert agent_domains(mac) == ["user/501"]
    assert on_mac(mac, f"stat -f %Su {PLIST} {HOME}/.claude/settings.json {HOME}/.zshenv").split() == [USER] * 3
    assert "ollama-claude" in on_mac(mac, f"cat {HOME}/.zshenv")  # zsh, the account's shell, not bash's files
    assert on_mac(mac, "stat -f %Su /usr/local/lib/ollama-claude").strip() == "root"  # the system part via sudo
    server_user = on_mac(mac, "ps -o user= -p $(lsof -nP -iTCP:11434 -sTCP:LISTEN -t | head -n1)").strip()
    assert server_user in (USER, "501")
    again = deploy(mac, tmp_path)
    assert again.rc == 0 and again.changes == 0, again


def test_an_allowlist_that_macos_cannot_enforce_fails_the_host_before_any_change(mac, tmp_path):
    """It was silently left unenforced: the server listened on the LAN for everyone."""
    plist_before = on_mac(mac, f"cat {PLIST}")
    run = deploy(mac, tmp_path, ollama_host="0.0.0.0", ollama_allow_lan=True, ollama_allowed_clients=["10.0.0.0/8"])
    assert run.rc != 0 and "cannot be enforced on macOS" in run.output, run
    assert on_mac(mac, f"cat {PLIST}") == plist_before


def test_a_config_change_while_a_model_is_loaded_restarts_cleanly(mac, tmp_path):
    """bootout returns before the old server has exited; an immediate bootstrap got EIO and left it unloaded."""
    assert "qwen3-coder" in on_mac(mac, "curl -s http://127.0.0.1:11434/api/ps")  # the edit test loaded it
    run = deploy(mac, tmp_path, ollama_keep_alive="45m")
    assert run.rc == 0, run
    assert statuses(tmp_path) == ALL_PASS, run
    assert on_mac(mac, f"plutil -extract EnvironmentVariables.OLLAMA_KEEP_ALIVE raw -o - {PLIST}").strip() == "45m"


def test_logging_in_at_the_gui_keeps_one_server_and_a_run_stays_green(mac, tmp_path):
    lab_launchd.console_login(mac, MAC, USER)
    run = deploy(mac, tmp_path, ollama_keep_alive="45m")
    assert run.rc == 0, run
    assert statuses(tmp_path) == ALL_PASS, run


def test_ollama_app_fails_the_host_by_default_and_is_stopped_when_asked(mac, tmp_path):
    """Ollama.app serves with its own context and kills other servers: never both; the choice is the user's."""
    lab_launchd.install_app(mac, MAC, USER, "0.32.15")
    lab_launchd.console_login(mac, MAC, USER)  # its login item starts it
    refused = deploy(mac, tmp_path, ollama_keep_alive="45m")
    assert refused.rc != 0 and "Ollama.app is installed" in refused.output and "ollama_macos_app" in refused.output
    run = deploy(mac, tmp_path, ollama_keep_alive="45m", ollama_macos_app="stop")
    assert run.rc == 0, run
    assert statuses(tmp_path) == ALL_PASS, run
    assert mac.ssh(MAC, "pgrep -x Ollama").returncode != 0
    assert context_in_effect(mac) == "64000"
    lab_launchd.console_logout(mac, MAC)
    lab_launchd.console_login(mac, MAC, USER)  # its login item stays disabled
    assert mac.ssh(MAC, "pgrep -x Ollama").returncode != 0
    again = deploy(mac, tmp_path, ollama_keep_alive="45m", ollama_macos_app="stop")
    assert again.rc == 0 and again.changes == 0, again


def test_root_configures_the_console_user_as_mdm_tools_do(mac, tmp_path):
    run = deploy(mac, tmp_path, user="root", ollama_keep_alive="30m", ollama_macos_app="stop")
    assert run.rc == 0, run
    assert statuses(tmp_path) == ALL_PASS, run
    assert mac.ssh(MAC, "ls /var/root/Library/LaunchAgents 2>/dev/null").stdout.strip() == ""
    assert agent_domains(mac) and on_mac(mac, f"stat -f %Su {PLIST}").strip() == USER


def test_a_second_laptop_user_is_configured_and_tested_through_sudo(mac, tmp_path):
    """Connected as dev, ada's files and her edit test need sudo (su would ask for her password)."""
    run = deploy(mac, tmp_path, claude_users=[USER, "ada"], ollama_macos_app="stop")
    assert run.rc == 0, run
    assert statuses(tmp_path, "ada") == ALL_PASS, run
    assert on_mac(mac, "stat -f %Su /Users/ada/.claude/settings.json /Users/ada/.zshenv").split() == ["ada"] * 2


def test_the_laptops_user_runs_it_at_local_with_sudo_for_the_system_parts_only(mac, tmp_path_factory):
    """`pyinfra @local deploys/ollama_claude.py` by the laptop's user, no --sudo: the documented one-developer way."""
    project = f"{HOME}/ollama-claude"
    install_toolkit(mac, MAC, USER, project, toolkit_wheelhouse.build(tmp_path_factory.mktemp("wheels")))
    host_data = mac.require_state().host_data
    data = {**{k: host_data[k] for k in ("ollama_download_url", "claude_code_registry", "claude_users")},
            "verify_report_dir": "/tmp/report-local", "ollama_macos_app": "stop"}
    options = " ".join(f"--data {shlex.quote(f'{k}={json.dumps(v)}')}" for k, v in data.items())
    command = f"cd {project} && .venv/bin/pyinfra -y {options} @local deploys/ollama_claude.py"
    for attempt in ("first", "again"):
        done = mac.ssh(MAC, as_user(USER, command), timeout=900)
        run = PyinfraRun(done.returncode, done.stdout, done.stderr)
        assert run.rc == 0, run
        report = json.loads(on_mac(mac, "cat /tmp/report-local/verify.json"))
        assert {r["item"]: r["status"] for r in report["records"] if r["user"] == USER} == ALL_PASS, run
        assert attempt == "first" or run.changes == 0, run
    assert on_mac(mac, f"stat -f %Su {PLIST} {HOME}/.claude/settings.json").split() == [USER] * 2


def test_uninstall_restores_the_laptop(mac, tmp_path):
    run = deploy(mac, tmp_path, "deploys/uninstall.py", uninstall_scope="everything", ollama_macos_app="stop",
                 uninstall_remove_models=True)
    assert run.rc == 0, run
    assert agent_domains(mac) == []
    assert mac.ssh(MAC, f"test -e {PLIST} || test -e /usr/local/bin/ollama || test -e /usr/local/bin/claude")\
        .returncode != 0
    assert "ollama-claude" not in on_mac(mac, f"cat {HOME}/.zshenv 2>/dev/null || true")
    # The app's login item (disabled by ollama_macos_app = "stop") is the user's again.
    assert '"com.ollama.ollama" => disabled' not in on_mac(mac, "launchctl print-disabled gui/501")
    # uninstall_remove_models: the laptop user's own store (the server ran as dev), not the Linux service user's
    assert mac.ssh(MAC, f"test -d {HOME}/.ollama/models").returncode != 0
