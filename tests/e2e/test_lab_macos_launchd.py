"""The Mac-shaped lab host's launchd and Ollama.app on a real lab (lab/macos/bin/launchctl, lab/macos/app.py):
domains follow the console login, jobs run with their plist's environment, bootout drains, KeepAlive restarts,
and an installed Ollama.app starts at login, serves with its store's context and reaps a foreign server."""

from __future__ import annotations

import re
import shlex
import time
from pathlib import Path

import pytest

from ollama_claude.lab.macos import launchd

HOST = "mac1"
UID = 501


@pytest.fixture(scope="module")
def mac(mac_lab):
    """The lab with launchd running on mac1 (its customisation applied if the Mac tree predates it)."""
    if mac_lab.ssh(HOST, "systemctl is-active lab-launchd").stdout.strip() != "active":
        launchd.customise(Path(mac_lab.require_state().host(HOST).root))
        mac_lab.ssh(HOST, "systemctl daemon-reload && systemctl enable --now lab-launchd", check=True)
        mac_lab.ssh(HOST, "for i in $(seq 50); do [ -S /run/lab-launchd/launchd.sock ] && break; sleep 0.1; done",
                    check=True)
    return mac_lab


@pytest.fixture
def logged_out(mac):
    launchd.console_logout(mac, HOST)
    yield mac
    launchd.console_logout(mac, HOST)


def dev(lab, command: str, timeout: float = 60):
    return lab.ssh(HOST, command, user="dev", timeout=timeout)


def write_plist(lab, label: str, program: list[str], env: dict[str, str] | None = None, keep_alive=False,
                sessions=("Aqua", "Background"), directory="/Users/dev/plists") -> str:
    """A plist outside ~/Library/LaunchAgents by default (those load at each login: an SSH login loads their
    Background ones)."""
    arguments = "".join(f"<string>{a}</string>" for a in program)
    variables = "".join(f"<key>{k}</key><string>{v}</string>" for k, v in (env or {}).items())
    types = "".join(f"<string>{t}</string>" for t in sessions)
    plist = (
        '<?xml version="1.0" encoding="UTF-8"?>\n<plist version="1.0"><dict>'
        f"<key>Label</key><string>{label}</string>"
        f"<key>ProgramArguments</key><array>{arguments}</array>"
        f"<key>EnvironmentVariables</key><dict>{variables}</dict>"
        f"<key>RunAtLoad</key><true/><key>KeepAlive</key><{'true' if keep_alive else 'false'}/>"
        f"<key>LimitLoadToSessionType</key><array>{types}</array></dict></plist>\n"
    )
    path = f"{directory}/{label}.plist"
    dev(lab, f"mkdir -p {directory} && printf %s {shlex.quote(plist)} > {path}").check_returncode()
    return path


def pid_of(output: str) -> int | None:
    match = re.search(r"^\tpid = (\d+)$", output, re.MULTILINE)
    return int(match.group(1)) if match else None


def wait_gone(lab, target: str, timeout: float = 15) -> float:
    started = time.monotonic()
    while dev(lab, f"launchctl print {target}").returncode == 0:
        assert time.monotonic() - started < timeout, f"{target} still there after {timeout}s"
        time.sleep(0.2)
    return time.monotonic() - started


def test_a_gui_job_runs_with_its_plist_environment_which_getenv_never_shows(logged_out):
    lab = logged_out
    launchd.console_login(lab, HOST, "dev")
    plist = write_plist(lab, "com.example.env", ["/bin/sleep", "600"],
                        {"OLLAMA_CONTEXT_LENGTH": "64000"})
    assert dev(lab, f"launchctl bootstrap gui/{UID} {plist}").returncode == 0
    printed = dev(lab, f"launchctl print gui/{UID}/com.example.env")
    assert printed.returncode == 0 and "\tstate = running" in printed.stdout
    assert "\t\tOLLAMA_CONTEXT_LENGTH => 64000" in printed.stdout.split("\tenvironment = {")[1]
    pid = pid_of(printed.stdout)
    environ = lab.ssh(HOST, f"tr '\\0' '\\n' < /proc/{pid}/environ | sort").stdout.split()
    assert environ == sorted([
        "HOME=/Users/dev", "LOGNAME=dev", "OLLAMA_CONTEXT_LENGTH=64000", "PATH=/usr/bin:/bin:/usr/sbin:/sbin",
        "SHELL=/bin/zsh", "TMPDIR=/var/folders/zz/dev/T/", "USER=dev", "XPC_FLAGS=0x0",
        "XPC_SERVICE_NAME=com.example.env",
    ])
    assert lab.ssh(HOST, f"ps -o user= -p {pid}").stdout.strip() == "dev"
    getenv = dev(lab, "launchctl getenv OLLAMA_CONTEXT_LENGTH")
    assert (getenv.returncode, getenv.stdout) == (0, "")
    # Another user's domain needs root; root may.
    denied = dev(lab, f"launchctl bootstrap gui/502 {plist}")
    assert denied.returncode == 1 and "Operation not permitted" in denied.stderr


def test_logged_out_gui_fails_with_125_and_user_domain_works(logged_out):
    lab = logged_out
    plist = write_plist(lab, "com.example.both", ["/bin/sleep", "600"])
    refused = dev(lab, f"launchctl bootstrap gui/{UID} {plist}")
    assert refused.returncode == 125
    assert refused.stderr.strip() == "Bootstrap failed: 125: Domain does not support specified action"
    assert dev(lab, f"launchctl print gui/{UID}").returncode != 0
    assert dev(lab, f"launchctl bootstrap user/{UID} {plist}").returncode == 0
    assert "state = running" in dev(lab, f"launchctl print user/{UID}/com.example.both").stdout
    # An agent for the GUI only (the default session type) does not load into user/<uid>.
    aqua = write_plist(lab, "com.example.aqua", ["/bin/sleep", "600"], sessions=("Aqua",))
    assert dev(lab, f"launchctl bootstrap user/{UID} {aqua}").returncode == 5
    dev(lab, f"launchctl bootout user/{UID}/com.example.both")
    # An agent in ~/Library/LaunchAgents allowing Background loads into user/<uid> at the next SSH login.
    write_plist(lab, "com.example.atlogin", ["/bin/sleep", "600"], directory="/Users/dev/Library/LaunchAgents")
    assert "state = running" in dev(lab, f"launchctl print user/{UID}/com.example.atlogin").stdout
    dev(lab, f"launchctl bootout user/{UID}/com.example.atlogin; rm ~/Library/LaunchAgents/com.example.atlogin.plist")


def test_bootout_drains_bootstrap_right_after_is_eio_then_succeeds(logged_out):
    lab = logged_out
    plist = write_plist(lab, "com.example.drain", ["/bin/sleep", "600"])
    assert dev(lab, f"launchctl bootstrap user/{UID} {plist}").returncode == 0
    assert dev(lab, f"launchctl bootstrap user/{UID} {plist}").returncode == 37  # already loaded
    started = time.monotonic()
    assert dev(lab, f"launchctl bootout user/{UID}/com.example.drain").returncode == 0
    assert time.monotonic() - started < 3  # returns at once
    again = dev(lab, f"launchctl bootstrap user/{UID} {plist}")
    assert again.returncode == 5 and again.stderr.startswith("Bootstrap failed: 5: Input/output error")
    waited = wait_gone(lab, f"user/{UID}/com.example.drain")
    assert waited > 2
    assert dev(lab, f"launchctl bootstrap user/{UID} {plist}").returncode == 0
    dev(lab, f"launchctl bootout user/{UID}/com.example.drain")


def test_keepalive_restarts_a_killed_job(logged_out):
    lab = logged_out
    plist = write_plist(lab, "com.example.keep", ["/bin/sleep", "600"], keep_alive=True)
    assert dev(lab, f"launchctl bootstrap user/{UID} {plist}").returncode == 0
    first = pid_of(dev(lab, f"launchctl print user/{UID}/com.example.keep").stdout)
    dev(lab, f"kill -9 {first}")
    deadline = time.monotonic() + 10
    while True:
        second = pid_of(dev(lab, f"launchctl print user/{UID}/com.example.keep").stdout)
        if second and second != first:
            break
        assert time.monotonic() < deadline, "KeepAlive did not restart the job"
        time.sleep(0.3)
    dev(lab, f"launchctl bootout user/{UID}/com.example.keep")


def server_context(lab) -> str | None:
    """The context of the app's running server, from its log (rotated each time the app starts)."""
    log = lab.ssh(HOST, "cat /Users/dev/.ollama/logs/server.log").stdout
    found = re.findall(r"OLLAMA_CONTEXT_LENGTH=(\d+)", log)
    return found[-1] if found else None


def wait_serving(lab, timeout: float = 20) -> str:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        result = lab.ssh(HOST, "curl -fsS http://127.0.0.1:11434/api/version")
        if result.returncode == 0:
            return result.stdout
        time.sleep(0.3)
    raise AssertionError("nothing serves on 11434")


def test_ollama_app_starts_at_login_with_its_stores_context_and_reaps_a_foreign_server(logged_out):
    lab = logged_out
    launchd.install_app(lab, HOST, "dev", "0.16.3")
    lab.ssh(HOST, "ln -sf /Applications/Ollama.app/Contents/Resources/ollama /usr/local/bin/ollama", check=True)
    # A foreign `ollama serve` (as a deploy's LaunchAgent would run it) holds the port, with context 64000.
    foreign = write_plist(lab, "com.example.foreign", ["/usr/local/bin/ollama", "serve"],
                          {"OLLAMA_CONTEXT_LENGTH": "64000"})
    assert dev(lab, f"launchctl bootstrap user/{UID} {foreign}").returncode == 0
    wait_serving(lab)
    foreign_pid = pid_of(dev(lab, f"launchctl print user/{UID}/com.example.foreign").stdout)
    assert foreign_pid
    # At login the app's login item (SMAppService, com.ollama.ollama) starts it; its server cannot bind, exits 1,
    # and the app SIGTERMs every `ollama` process, then serves itself with the store's 4096.
    launchd.console_login(lab, HOST, "dev")
    printed = dev(lab, f"launchctl print gui/{UID}/com.ollama.ollama")
    assert printed.returncode == 0 and "Squirrel" in printed.stdout
    deadline = time.monotonic() + 20
    while lab.ssh(HOST, f"kill -0 {foreign_pid}").returncode == 0:
        assert time.monotonic() < deadline, "the app did not stop the foreign server"
        time.sleep(0.3)
    assert '"0.16.3"' in wait_serving(lab)
    assert lab.ssh(HOST, "pgrep -x Ollama").returncode == 0
    assert server_context(lab) == "4096"
    store = "/Users/dev/Library/Application Support/Ollama/db.sqlite"
    assert lab.ssh(HOST, f"sqlite3 '{store}' 'SELECT context_length FROM settings'").stdout.strip() == "4096"
    assert "stopped external ollama process" in lab.ssh(HOST, "cat /Users/dev/.ollama/logs/app.log").stdout
    # Adopting the app: its store's context, then its server restarted.
    dev(lab, f"sqlite3 '{store}' 'UPDATE settings SET context_length = 64000 WHERE id = 1'").check_returncode()
    assert dev(lab, f"launchctl kickstart -k gui/{UID}/com.ollama.ollama").returncode == 0
    deadline = time.monotonic() + 20
    while server_context(lab) != "64000":
        assert time.monotonic() < deadline, "the app's server did not restart with the store's context"
        time.sleep(0.3)
    wait_serving(lab)
    # Logging out ends the app and its server.
    launchd.console_logout(lab, HOST)
    deadline = time.monotonic() + 25
    while lab.ssh(HOST, "pgrep -x Ollama || pgrep -f 'ollama serve'").returncode == 0:
        assert time.monotonic() < deadline, "the app outlived the GUI session"
        time.sleep(0.3)
    dev(lab, f"launchctl bootout user/{UID}/com.example.foreign")


def test_a_reboot_logs_everyone_out_and_loads_the_launch_daemons(mac):
    launchd.console_login(mac, HOST, "dev")
    assert launchd.console_user(mac, HOST) == "dev"
    daemon = ('<?xml version="1.0" encoding="UTF-8"?>\n<plist version="1.0"><dict>'
              "<key>Label</key><string>com.example.daemon</string>"
              "<key>ProgramArguments</key><array><string>/bin/sleep</string><string>600</string></array>"
              "<key>RunAtLoad</key><true/></dict></plist>\n")
    mac.ssh(HOST, f"printf %s {shlex.quote(daemon)} > /Library/LaunchDaemons/com.example.daemon.plist", check=True)
    mac.restart_host(HOST)
    assert launchd.console_user(mac, HOST) is None
    assert mac.ssh(HOST, f"launchctl print gui/{UID}").returncode != 0
    assert mac.ssh(HOST, "systemctl is-active lab-launchd").stdout.strip() == "active"
    printed = mac.ssh(HOST, "launchctl print system/com.example.daemon")
    assert printed.returncode == 0 and "\tstate = running" in printed.stdout and "\tusername = root" in printed.stdout
    mac.ssh(HOST, "launchctl bootout system/com.example.daemon; rm /Library/LaunchDaemons/com.example.daemon.plist")


def test_open_starts_the_app_only_in_a_gui_session_and_osascript_quits_it(logged_out):
    lab = logged_out
    # A first run: no store, no login item (the previous test's are removed).
    lab.ssh(HOST, "rm -rf '/Users/dev/Library/Application Support/Ollama' /var/db/lab-launchd/login-items/501.json",
            check=True)
    launchd.install_app(lab, HOST, "dev", "0.32.15", register_login_item=False)
    refused = dev(lab, "open -a Ollama")
    assert refused.returncode == 1 and "error -610" in refused.stderr
    launchd.console_login(lab, HOST, "dev")
    assert dev(lab, "open -a Ollama").returncode == 0
    assert '"0.32.15"' in wait_serving(lab)
    assert dev(lab, "pgrep -x Ollama").returncode == 0
    # 0.32.15's store leaves the context to the server (0: VRAM-based), which gives 4096 here.
    store = "/Users/dev/Library/Application Support/Ollama/db.sqlite"
    assert lab.ssh(HOST, f"sqlite3 '{store}' 'SELECT context_length FROM settings'").stdout.strip() == "0"
    assert lab.ssh(HOST, "curl -s http://127.0.0.1:11434/api/ps").returncode == 0
    # The app registered its login item on its first run (SMAppService).
    assert "/Applications/Ollama.app" in lab.ssh(HOST, "cat /var/db/lab-launchd/login-items/501.json").stdout
    assert dev(lab, "open -a Ollama").returncode == 0  # already running: only activated
    assert len(dev(lab, "pgrep -x Ollama").stdout.split()) == 1
    assert dev(lab, "osascript -e 'quit app \"Ollama\"'").returncode == 0
    deadline = time.monotonic() + 15
    while lab.ssh(HOST, "pgrep -x Ollama || pgrep -f 'ollama serve'").returncode == 0:
        assert time.monotonic() < deadline, "the app did not quit with its server"
        time.sleep(0.3)
    lab.ssh(HOST, "rm -f /var/db/lab-launchd/login-items/501.json")


def test_a_server_with_a_model_loaded_drains_longer(logged_out):
    lab = logged_out
    launchd.install_app(lab, HOST, "dev", "0.32.15", register_login_item=False)
    lab.ssh(HOST, "ln -sf /Applications/Ollama.app/Contents/Resources/ollama /usr/local/bin/ollama", check=True)
    env = {"OLLAMA_HOST": "127.0.0.1:11500", "OLLAMA_KEEP_ALIVE": "30m"}
    plist = write_plist(lab, "com.example.server", ["/usr/local/bin/ollama", "serve"], env)
    target = f"user/{UID}/com.example.server"
    timings = {}
    for loaded in (False, True):
        assert dev(lab, f"launchctl bootstrap user/{UID} {plist}").returncode == 0
        dev(lab, "for i in $(seq 50); do curl -fs http://127.0.0.1:11500/api/version && break; sleep 0.2; done")
        if loaded:
            dev(lab, "OLLAMA_HOST=127.0.0.1:11500 ollama pull qwen3 >/dev/null", timeout=120).check_returncode()
            dev(lab, "curl -fsS http://127.0.0.1:11500/api/chat -d '{\"model\": \"qwen3\", \"stream\": false, "
                     "\"messages\": [{\"role\": \"user\", \"content\": \"hi\"}]}' >/dev/null").check_returncode()
            assert "qwen3" in dev(lab, "curl -fsS http://127.0.0.1:11500/api/ps").stdout
        assert dev(lab, f"launchctl bootout {target}").returncode == 0
        timings[loaded] = wait_gone(lab, target)
    # launchd keeps the label ~5 s after bootout; a server holding a model takes longer to let go.
    assert 3.5 < timings[False] < 7.5 and timings[True] > 6.5, timings
