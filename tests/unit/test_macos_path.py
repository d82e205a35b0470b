"""The macOS path's decisions without a host: accounts, privilege, the agent's restart, Ollama.app, the timeout."""

from __future__ import annotations

import os
import plistlib
import stat
import subprocess
import time
from pathlib import Path

from harness import FakeHost, FakeState, _fact_key, run_operation
from pyinfra.context import ctx_host, ctx_state

from ollama_claude.accounts import Account, Accounts, laptop_account, laptop_account_name, with_account
from ollama_claude.ollama import config, launchd
from ollama_claude.ollama.launchd_operations import app_login_item_restored, mac_port_is_ours
from ollama_claude.ollama.operations import service
from ollama_claude.settings import ClaudeUser, parse_settings
from ollama_claude.verify.facts import TIMEOUT, as_user

DEV = Account("dev", 501, "staff", "/Users/dev", "/bin/zsh")
URL = "http://127.0.0.1:11434"


def on_host(facts: dict, call, *args, **kwargs):
    with ctx_state.use(FakeState()), ctx_host.use(FakeHost(facts)):
        return call(*args, **kwargs)


# --- accounts ------------------------------------------------------------------------------------------------
def test_accounts_come_from_dscl_on_a_mac_and_getent_elsewhere():
    """/etc/passwd on a Mac has no laptop users: pyinfra's Users fact saw none of them."""
    command = Accounts().command(names=("dev",))
    assert "dscl . -read /Users/dev UniqueID NFSHomeDirectory UserShell" in command
    assert "getent passwd dev" in command and "cat /etc/passwd" not in command
    parsed = Accounts().process(["dev\t501\tstaff\t/Users/dev\t/bin/zsh", "garbage"])
    assert parsed == {"dev": DEV}


def test_the_accounts_command_answers_on_this_linux_machine():
    output = subprocess.run(["sh", "-c", Accounts().command(names=("root", "no-such-user-here"))],
                            capture_output=True, text=True, check=True).stdout.splitlines()
    accounts = Accounts().process(output)
    assert list(accounts) == ["root"] and accounts["root"].uid == 0 and accounts["root"].group == "root"


def test_home_and_shell_default_to_the_accounts():
    """zsh is a Mac's default login shell: a user declared by name alone gets .zshenv, not bash's files."""
    user = with_account(ClaudeUser(name="dev"), DEV)
    assert (user.home, user.shell) == ("/Users/dev", "zsh")
    assert with_account(ClaudeUser(name="dev", shell="fish", home="/h"), DEV).shell == "fish"
    assert Account("x", 1, "x", "/h", "/usr/local/bin/tcsh").shell_name == "bash"


def test_the_laptop_account_is_the_setting_then_the_connection_then_the_first_user():
    users = {"claude_users": ["ada"]}
    assert on_host({"ConnectionUser": "dev"}, laptop_account_name, parse_settings(users, "h")) == "dev"
    assert on_host({"ConnectionUser": "dev"}, laptop_account_name,
                   parse_settings({**users, "ollama_macos_user": "bob"}, "h")) == "bob"
    # Connected as root, as MDM tools run: not root's own home (/var/root, gui/0) but the laptop's user.
    assert on_host({"ConnectionUser": "root"}, laptop_account_name, parse_settings(users, "h")) == "ada"
    reason = on_host({"ConnectionUser": "root"}, laptop_account, parse_settings({}, "h"))
    assert isinstance(reason, str) and "ollama_macos_user" in reason
    missing = on_host({"ConnectionUser": "dev", "Accounts": {}}, laptop_account, parse_settings({}, "h"))
    assert "no account 'dev'" in missing


def test_the_laptop_account_comes_from_the_lookup_of_all_claude_users():
    """The Claude Code step and verify look up every one of claude_users in one command: the laptop's user among
    them is not looked up again on its own."""
    settings = parse_settings({"claude_users": ["dev", "ada"]}, "h")
    accounts = {_fact_key({"names": ("dev", "ada")}): {"dev": DEV}}  # any other lookup finds no account
    assert on_host({"ConnectionUser": "dev", "Accounts": accounts}, laptop_account, settings) == DEV
    alone = {_fact_key({"names": ("bob",)}): {"bob": Account("bob", 503, "staff", "/Users/bob", "/bin/zsh")}}
    assert on_host({"Accounts": alone}, laptop_account,
                   parse_settings({"claude_users": ["dev"], "ollama_macos_user": "bob"}, "h")).uid == 503


# --- running as the user ---------------------------------------------------------------------------------------
def test_as_user_runs_directly_when_the_deploy_already_is_that_user():
    """A Mac reached as its laptop user: su would ask for that user's password."""
    command = as_user("root", "echo $HOME; id -un")
    result = subprocess.run(["sh", "-c", command], check=False, capture_output=True, text=True,
                            env={**os.environ, "SHELL": "/bin/sh"})
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == [os.path.expanduser("~root"), "root"]


def run_timeout(seconds: int, *command: str) -> tuple[int, float]:
    started = time.monotonic()
    result = subprocess.run(["sh", "-c", f"{TIMEOUT} {seconds} \"$@\"", "sh", *command], check=False)
    return result.returncode, time.monotonic() - started


def test_the_portable_timeout_keeps_gnu_timeouts_contract(tmp_path: Path):
    """macOS ships no `timeout`: exit 124 when time runs out, the whole process group stopped, else the status."""
    assert run_timeout(5, "sh", "-c", "exit 3")[0] == 3
    assert run_timeout(5, "true")[0] == 0
    marker = tmp_path / "child-survived"
    status, seconds = run_timeout(1, "sh", "-c", f"(sleep 3; touch {marker}) & sleep 30")
    assert status == 124 and seconds < 10
    time.sleep(3)
    assert not marker.exists()


# --- the LaunchAgent -------------------------------------------------------------------------------------------
def test_the_agent_loads_in_gui_and_background_sessions():
    plist = plistlib.loads(config.launchd_plist({"OLLAMA_CONTEXT_LENGTH": "64000"}, "/Users/dev").encode())
    assert plist["LimitLoadToSessionType"] == ["Aqua", "Background"]
    assert plist["EnvironmentVariables"] == {"OLLAMA_CONTEXT_LENGTH": "64000"}


FAKE_LAUNCHCTL = """#!/bin/sh
# Records calls; bootstrap answers EIO (5) while $STATE/eio-left > 0, then 0 (or $STATE/bootstrap-status).
echo "$*" >> "$STATE/calls"
case "$1" in
  print) [ "$2" = gui/501 ] && [ -f "$STATE/gui" ] && exit 0; exit 113 ;;
  bootout) exit 3 ;;
  bootstrap)
    n=$(cat "$STATE/eio-left" 2>/dev/null || echo 0)
    if [ "$n" -gt 0 ]; then echo $((n - 1)) > "$STATE/eio-left"; echo "Bootstrap failed: 5: Input/output error" >&2; exit 5; fi
    s=$(cat "$STATE/bootstrap-status" 2>/dev/null || echo 0)
    [ "$s" = 0 ] || echo "Bootstrap failed: $s: Domain does not support specified action" >&2
    exit "$s" ;;
esac
"""


def restart_with_fake_launchctl(tmp_path: Path, eio: int = 0, status: int = 0, gui: bool = False):
    bin_dir, state = tmp_path / "bin", tmp_path / "state"
    bin_dir.mkdir()
    state.mkdir()
    (bin_dir / "launchctl").write_text(FAKE_LAUNCHCTL)
    (bin_dir / "launchctl").chmod(stat.S_IRWXU)
    (state / "eio-left").write_text(str(eio))
    (state / "bootstrap-status").write_text(str(status))
    if gui:
        (state / "gui").touch()
    account = Account("dev", 501, "staff", str(tmp_path / "home"), "/bin/zsh")
    script = launchd.restart_function(account, "mac1") + "launchd_restart\n"
    result = subprocess.run(["sh", "-c", script], check=False, capture_output=True, text=True, timeout=120,
                            env={**os.environ, "PATH": f"{bin_dir}:{os.environ['PATH']}", "STATE": str(state)})
    calls = (state / "calls").read_text().splitlines()
    return result, [call for call in calls if call.startswith("bootstrap")]


def test_restart_retries_bootstrap_while_launchd_answers_eio(tmp_path: Path):
    """bootout returns before the old job exits; bootstrap fails with EIO meanwhile (macos.md, launchd)."""
    result, bootstraps = restart_with_fake_launchctl(tmp_path, eio=2)
    assert result.returncode == 0, result.stderr
    assert len(bootstraps) == 3 and all(call.startswith("bootstrap user/501 ") for call in bootstraps)


def test_restart_uses_the_gui_domain_only_while_the_user_is_logged_in_there(tmp_path: Path):
    result, bootstraps = restart_with_fake_launchctl(tmp_path, gui=True)
    assert result.returncode == 0 and bootstraps[0].startswith("bootstrap gui/501 ")


def test_a_failed_bootstrap_fails_with_launchctls_reason(tmp_path: Path):
    """Its status was ignored: the health check then waited for a server that was never loaded."""
    result, bootstraps = restart_with_fake_launchctl(tmp_path, status=125)
    assert result.returncode == 1 and len(bootstraps) == 1
    assert "mac1: launchctl bootstrap user/501" in result.stderr and "failed (125)" in result.stderr


def service_facts(loaded: str | None, serving: str = "0.32.15") -> dict:
    mac = {**launchd.MacServer().default(), "loaded": loaded, "pids": [42] if loaded else []}
    return {"Kernel": "Darwin", "OllamaServerVersion": serving, "MacServer": mac}


def test_an_agent_that_is_not_loaded_is_loaded_even_when_something_answers():
    """Ollama.app's server may answer the version while our agent is not loaded (a reboot at the login window)."""
    commands, _ = run_operation(service, service_facts(None), version="0.32.15", listen_url=URL, account=DEV)
    assert len(commands) == 1 and "launchd_restart() {" in commands[0] and "if launchd_restart; then" in commands[0]
    assert "gui/501" in commands[0] and 'gui/"$(id -u)"' not in commands[0]  # root's uid under sudo was used
    commands, noops = run_operation(service, service_facts("user/501"), version="0.32.15", listen_url=URL,
                                    account=DEV)
    assert commands == [] and noops == ["ollama 0.32.15 is serving on http://127.0.0.1:11434"]


# --- Ollama.app and the port -----------------------------------------------------------------------------------
def port_facts(**mac) -> dict:
    return {"MacServer": {**launchd.MacServer().default(), **mac}}


def test_no_app_and_our_own_listener_is_a_noop():
    facts = port_facts(loaded="gui/501", pids=[42], listeners=[{"pid": 42, "ppid": 1, "name": "ollama"}])
    commands, noops = run_operation(mac_port_is_ours, facts, account=DEV, port=11434)
    assert commands == [] and noops


def test_a_foreign_server_on_the_port_fails_before_anything_changes():
    facts = port_facts(listeners=[{"pid": 77, "ppid": 1, "name": "ollama"}])
    commands, _ = run_operation(mac_port_is_ours, facts, account=DEV, port=11434)
    assert len(commands) == 1 and "held by ollama (pid 77)" in commands[0] and commands[0].endswith("exit 1")


def test_an_installed_app_fails_the_host_naming_the_choice_by_default():
    facts = port_facts(apps=["/Applications/Ollama.app"])
    commands, _ = run_operation(mac_port_is_ours, facts, account=DEV, port=11434)
    assert "Ollama.app is installed (/Applications/Ollama.app)" in commands[0]
    assert "ollama_macos_app" in commands[0] and commands[0].endswith("exit 1")


def test_stop_quits_the_app_and_its_server_and_disables_its_login_item_once():
    running = port_facts(apps=["/Applications/Ollama.app"], app_pids=[10],
                         listeners=[{"pid": 11, "ppid": 10, "name": "ollama"}])
    commands, _ = run_operation(mac_port_is_ours, running, account=DEV, port=11434, app="stop")
    assert commands[0] == ("launchctl bootout gui/501/com.ollama.ollama 2>/dev/null; "
                           "launchctl disable gui/501/com.ollama.ollama")
    assert commands[1].startswith("kill 10 11 2>/dev/null;")
    stopped = port_facts(apps=["/Applications/Ollama.app"], app_disabled=True)
    commands, noops = run_operation(mac_port_is_ours, stopped, account=DEV, port=11434, app="stop")
    assert commands == [] and "stopped and its login item disabled" in noops[0]


def test_mac_server_fact_parses_its_lines():
    fact = launchd.MacServer()
    assert fact.process(["loaded gui/501", "pid 42", "loaded user/501", "pid 43", "app /Applications/Ollama.app",
                         "app_pid 7", "app_disabled", "listener 42 1 ollama"]) == {
        "loaded": "gui/501", "pids": [42, 43], "apps": ["/Applications/Ollama.app"], "app_pids": [7],
        "app_disabled": True, "listeners": [{"pid": 42, "ppid": 1, "name": "ollama"}]}


def test_bootout_covers_both_domains_and_waits_for_the_job_to_go():
    command = launchd.bootout_command(DEV)
    assert command.startswith("launchctl bootout gui/501/com.ollama-claude.ollama 2>/dev/null; "
                              "launchctl bootout user/501/com.ollama-claude.ollama 2>/dev/null; ")
    assert "while { launchctl print gui/501/com.ollama-claude.ollama >/dev/null 2>&1 || " in command


def test_uninstall_gives_the_app_its_login_item_back():
    stopped = port_facts(apps=["/Applications/Ollama.app"], app_disabled=True)
    assert run_operation(app_login_item_restored, stopped, account=DEV, port=11434)[0] == [
        "launchctl enable gui/501/com.ollama.ollama"]
    assert run_operation(app_login_item_restored, port_facts(app_disabled=True), account=DEV, port=11434)[0] == []
