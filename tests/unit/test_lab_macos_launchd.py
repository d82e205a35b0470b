"""The Mac-shaped lab host's launchctl (lab/macos/bin/launchctl) and Ollama.app program (lab/macos/app.py):
pure logic, with a temporary state directory and the `record` backend (no processes)."""

from __future__ import annotations

import importlib.machinery
import importlib.util
import io
import os
import plistlib
import pwd
import sqlite3
import subprocess
import sys
import time
import zipfile
from pathlib import Path

import pytest

from ollama_claude.lab import releases
from ollama_claude.lab.macos import app, launchd

LAUNCHCTL = Path(launchd.__file__).parent / "bin" / "launchctl"
USER = pwd.getpwuid(65534)  # nobody: an account every test machine has, standing in for the laptop user


def load_launchctl(tmp_path: Path, caller: int = 0):
    loader = importlib.machinery.SourceFileLoader(f"launchctl_{tmp_path.name}", str(LAUNCHCTL))
    spec = importlib.util.spec_from_loader(loader.name, loader)
    module = importlib.util.module_from_spec(spec)
    loader.exec_module(module)
    module.RUN, module.DB = tmp_path / "run", tmp_path / "db"
    os.environ["LAB_LAUNCHD_BACKEND"] = "record"
    os.environ["LAB_LAUNCHD_UID"] = str(caller)
    return module


@pytest.fixture
def lc(tmp_path, monkeypatch):
    monkeypatch.setenv("LAB_LAUNCHD_BACKEND", "record")
    monkeypatch.setenv("LAB_LAUNCHD_UID", "0")
    module = load_launchctl(tmp_path)
    module.has_session = lambda uid: False  # nobody has no processes of its own on most machines: be sure
    return module


def run(lc, *argv, caller: int = 0, capsys=None):
    os.environ["LAB_LAUNCHD_UID"] = str(caller)
    code = lc.main(list(argv))
    out = capsys.readouterr() if capsys else None
    return code, out


def agent(tmp_path: Path, label="com.example.agent", **extra) -> Path:
    plist = {"Label": label, "ProgramArguments": ["/usr/bin/ollama", "serve"], "RunAtLoad": True,
             "EnvironmentVariables": {"OLLAMA_CONTEXT_LENGTH": "64000", "OLLAMA_HOST": "127.0.0.1:11434"}, **extra}
    path = tmp_path / f"{label}.plist"
    path.write_bytes(plistlib.dumps(plist))
    path.chmod(0o644)
    return path


def login(lc, user=USER):
    lc.RUN.mkdir(parents=True, exist_ok=True)
    (lc.RUN / "console-user").write_text(user.pw_name + "\n")


GUI = f"gui/{USER.pw_uid}"
USER_DOMAIN = f"user/{USER.pw_uid}"


def test_gui_domain_exists_only_for_the_console_user(lc, tmp_path, capsys):
    plist = agent(tmp_path)
    code, out = run(lc, "bootstrap", GUI, str(plist), capsys=capsys)
    assert code == 125
    assert out.err.strip() == "Bootstrap failed: 125: Domain does not support specified action"
    assert run(lc, "print", GUI, capsys=capsys)[0] == 113
    login(lc)
    assert run(lc, "print", GUI, capsys=capsys)[0] == 0
    assert run(lc, "bootstrap", GUI, str(plist), capsys=capsys)[0] == 0
    assert run(lc, "bootstrap", "gui/0", str(plist), capsys=capsys)[0] == 125  # root is never at the console


def test_job_environment_is_launchds_minimal_plus_the_plist(lc, tmp_path, capsys):
    login(lc)
    run(lc, "bootstrap", GUI, str(agent(tmp_path)))
    code, out = run(lc, "print", f"{GUI}/com.example.agent", capsys=capsys)
    assert code == 0
    assert "\tstate = running" in out.out and "\tpid = 4242" in out.out
    environment = out.out.split("\tenvironment = {")[1].split("\t}")[0]
    assert "\t\tOLLAMA_CONTEXT_LENGTH => 64000" in environment
    assert f"\t\tHOME => {USER.pw_dir}" in environment and "XPC_SERVICE_NAME => com.example.agent" in environment
    started = lc.Recorded().path(lc.Domain("gui", USER.pw_uid), "com.example.agent")
    import json

    env = json.loads(started.read_text())["env"]
    assert set(env) == {"PATH", "HOME", "USER", "LOGNAME", "SHELL", "TMPDIR", "XPC_SERVICE_NAME", "XPC_FLAGS",
                        "OLLAMA_CONTEXT_LENGTH", "OLLAMA_HOST"}
    assert env["PATH"] == "/usr/bin:/bin:/usr/sbin:/sbin"


def test_getenv_never_shows_a_plists_environment(lc, tmp_path, capsys):
    login(lc)
    run(lc, "bootstrap", GUI, str(agent(tmp_path)))
    code, out = run(lc, "getenv", "OLLAMA_CONTEXT_LENGTH", caller=USER.pw_uid, capsys=capsys)
    assert (code, out.out) == (0, "")
    run(lc, "setenv", "OLLAMA_CONTEXT_LENGTH", "8192", caller=USER.pw_uid)
    code, out = run(lc, "getenv", "OLLAMA_CONTEXT_LENGTH", caller=USER.pw_uid, capsys=capsys)
    assert out.out == "8192\n"
    # setenv reaches jobs started afterwards; the plist's own value still wins for its job.
    run(lc, "bootstrap", GUI, str(agent(tmp_path, "com.example.other", EnvironmentVariables={})))
    _, out = run(lc, "print", f"{GUI}/com.example.other", capsys=capsys)
    assert "OLLAMA_CONTEXT_LENGTH => 8192" in out.out
    _, out = run(lc, "print", f"{GUI}/com.example.agent", capsys=capsys)
    assert "OLLAMA_CONTEXT_LENGTH => 64000" in out.out


def test_print_of_an_absent_service_is_113(lc, capsys):
    login(lc)
    code, out = run(lc, "print", f"{GUI}/com.example.none", capsys=capsys)
    assert code == 113 and 'Could not find service "com.example.none"' in out.err


def test_bootstrap_of_a_loaded_label_is_37(lc, tmp_path, capsys):
    login(lc)
    plist = agent(tmp_path)
    assert run(lc, "bootstrap", GUI, str(plist))[0] == 0
    code, out = run(lc, "bootstrap", GUI, str(plist), capsys=capsys)
    assert code == 37 and out.err.strip() == "Bootstrap failed: 37: Operation already in progress"


def test_bootout_drains_then_bootstrap_works(lc, tmp_path, capsys):
    login(lc)
    plist = agent(tmp_path)
    run(lc, "bootstrap", GUI, str(plist))
    assert run(lc, "bootout", f"{GUI}/com.example.agent")[0] == 0
    code, out = run(lc, "bootstrap", GUI, str(plist), capsys=capsys)
    assert code == 5 and out.err.startswith("Bootstrap failed: 5: Input/output error")
    code, out = run(lc, "print", f"{GUI}/com.example.agent", capsys=capsys)
    assert code == 0 and "\tstate = exiting" in out.out  # still there while it drains
    lc.DRAIN_SECONDS = 0.2
    lc.drain_path(lc.Domain("gui", USER.pw_uid), "com.example.agent").write_text(str(time.time() + 0.2))
    time.sleep(0.3)
    assert run(lc, "print", f"{GUI}/com.example.agent", capsys=capsys)[0] == 113
    assert run(lc, "bootstrap", GUI, str(plist), capsys=capsys)[0] == 0


def test_drain_lasts_five_seconds_and_longer_with_a_model_loaded(lc, tmp_path):
    login(lc)
    run(lc, "bootstrap", GUI, str(agent(tmp_path)))
    lc.model_loaded = lambda record: True
    before = time.time()
    run(lc, "bootout", f"{GUI}/com.example.agent")
    deadline = float(lc.drain_path(lc.Domain("gui", USER.pw_uid), "com.example.agent").read_text())
    assert 7.9 <= deadline - before <= 8.5
    run(lc, "bootstrap", GUI, str(agent(tmp_path, "com.example.b")))
    lc.model_loaded = lambda record: False
    before = time.time()
    run(lc, "bootout", GUI, str(tmp_path / "com.example.b.plist"))  # bootout DOMAIN PLIST
    deadline = float(lc.drain_path(lc.Domain("gui", USER.pw_uid), "com.example.b").read_text())
    assert 4.9 <= deadline - before <= 5.5


def test_another_users_domain_needs_root(lc, tmp_path, capsys):
    login(lc)
    code, out = run(lc, "bootstrap", GUI, str(agent(tmp_path)), caller=12345, capsys=capsys)
    assert code == 1 and out.err.startswith("Bootstrap failed: 1: Operation not permitted")
    assert run(lc, "bootstrap", GUI, str(agent(tmp_path)), caller=USER.pw_uid)[0] == 0


def test_session_types_decide_the_domain(lc, tmp_path, capsys):
    aqua_only = agent(tmp_path, "com.example.aqua")
    both = agent(tmp_path, "com.example.both", LimitLoadToSessionType=["Aqua", "Background"])
    # Logged out of the GUI: gui fails (125), user/<uid> takes only an agent that allows Background.
    assert run(lc, "bootstrap", GUI, str(both))[0] == 125
    assert run(lc, "bootstrap", USER_DOMAIN, str(aqua_only), capsys=capsys)[0] == 5
    assert run(lc, "bootstrap", USER_DOMAIN, str(both))[0] == 0
    code, out = run(lc, "print", f"{USER_DOMAIN}/com.example.both", capsys=capsys)
    assert code == 0 and "state = running" in out.out


def test_bad_ownership_or_permissions_refuse_the_plist(lc, tmp_path, capsys):
    login(lc)
    plist = agent(tmp_path)
    plist.chmod(0o666)
    assert run(lc, "bootstrap", GUI, str(plist), capsys=capsys)[0] == 5
    assert run(lc, "bootstrap", GUI, str(tmp_path / "missing.plist"), capsys=capsys)[0] == 2


def test_disable_refuses_bootstrap(lc, tmp_path, capsys):
    login(lc)
    run(lc, "disable", f"{GUI}/com.example.agent")
    code, out = run(lc, "bootstrap", GUI, str(agent(tmp_path)), capsys=capsys)
    assert code == 119 and "Service is disabled" in out.err
    run(lc, "enable", f"{GUI}/com.example.agent")
    assert run(lc, "bootstrap", GUI, str(agent(tmp_path)))[0] == 0


def test_keepalive_and_run_at_load(lc):
    assert lc.keep_alive({"KeepAlive": True}) == "always"
    assert lc.keep_alive({"KeepAlive": {"SuccessfulExit": False}}) == "on-failure"
    assert lc.keep_alive({}) == "no"
    record = lc.make_record(lc.Domain("gui", USER.pw_uid), Path("/x.plist"),
                            {"Label": "a", "Program": "/bin/true", "KeepAlive": True})
    assert record["run_at_load"] and record["arguments"] == ["/bin/true"]
    record = lc.make_record(lc.Domain("gui", USER.pw_uid), Path("/x.plist"),
                            {"Label": "a", "ProgramArguments": ["/bin/sleep", "1"]})
    assert not record["run_at_load"]


def test_console_login_loads_aqua_agents_and_login_items_logout_boots_them_out(lc, tmp_path, monkeypatch):
    agents = tmp_path / "home" / "Library" / "LaunchAgents"
    agents.mkdir(parents=True)
    agent(agents, "com.example.aqua")
    agent(agents, "com.example.background", LimitLoadToSessionType="Background")
    bundle = tmp_path / "Ollama.app"
    item = bundle / launchd.LOGIN_ITEM_PLIST
    item.parent.mkdir(parents=True)
    item.write_text(releases.LOGIN_ITEM_PLIST)
    home = tmp_path / "home"
    monkeypatch.setattr(lc, "agents_of", lambda entry: sorted(agents.glob("*.plist")))
    assert lc.main(["_lab-register-login-item", str(USER.pw_uid), str(bundle), str(item)]) == 0
    assert home.is_dir()
    lc.console_login(USER.pw_name, lambda m: None)
    gui, user = lc.Domain("gui", USER.pw_uid), lc.Domain("user", USER.pw_uid)
    assert lc.loaded_labels(gui) == ["com.example.aqua", "com.ollama.ollama"]
    assert lc.loaded_labels(user) == ["com.example.background"]
    ollama = lc.load_record(gui, "com.ollama.ollama")
    squirrel = f"{bundle}/Contents/Frameworks/Squirrel.framework/Versions/A/Squirrel"
    assert ollama["program"] == squirrel and ollama["arguments"] == [squirrel, "background"]
    lc.console_logout(lambda m: None)
    assert lc.loaded_labels(gui) == [] and not gui.exists()
    assert lc.loaded_labels(user) == ["com.example.background"]


def test_asuser_is_root_only(lc, capsys):
    code, _out = run(lc, "asuser", str(USER.pw_uid), "true", caller=USER.pw_uid, capsys=capsys)
    assert code == 1


def test_launchctl_runs_as_a_script(tmp_path):
    env = {**os.environ, "LAB_LAUNCHD_BACKEND": "record", "LAB_LAUNCHD_RUN": str(tmp_path / "r"),
           "LAB_LAUNCHD_DB": str(tmp_path / "d"), "LAB_LAUNCHD_UID": "0"}
    result = subprocess.run([sys.executable, str(LAUNCHCTL), "print", "gui/501/x"], env=env,
                            capture_output=True, text=True, check=False)
    assert result.returncode == 113 and "Could not find service" in result.stderr


# ----------------------------------------------------------------------------------------------- Ollama.app


def test_app_store_defaults_by_version_and_the_4096_migration(tmp_path):
    old = tmp_path / "old.sqlite"
    assert app.settings("0.16.3", old)["context_length"] == 4096
    # Upgrading the app to >= 0.17.0 turns the old default into 0 (VRAM-based) and keeps a chosen value.
    assert app.settings("0.32.15", old)["context_length"] == 0
    chosen = tmp_path / "chosen.sqlite"
    app.settings("0.16.3", chosen)
    with sqlite3.connect(chosen) as conn:
        conn.execute("UPDATE settings SET context_length = 64000 WHERE id = 1")
    assert app.settings("0.32.15", chosen)["context_length"] == 64000
    assert app.settings("0.32.15", tmp_path / "new.sqlite")["context_length"] == 0


def test_app_overrides_the_context_length_from_its_store(monkeypatch, tmp_path):
    monkeypatch.setenv("HOME", str(tmp_path))
    env = app.server_environment({"OLLAMA_CONTEXT_LENGTH": "64000", "PATH": "/usr/bin"},
                                 {"context_length": 4096, "expose": 0, "browser": 0, "models": ""})
    assert env["OLLAMA_CONTEXT_LENGTH"] == "4096" and env["OLLAMA_NO_CLOUD"] == "0"
    env = app.server_environment({"OLLAMA_CONTEXT_LENGTH": "64000"}, {"context_length": 0})
    assert env["OLLAMA_CONTEXT_LENGTH"] == "64000"  # 0: the app leaves its own environment's value
    assert "OLLAMA_MODELS" not in env
    (tmp_path / ".ollama" / "models").mkdir(parents=True)
    assert app.server_environment({}, {"context_length": 0, "expose": 1})["OLLAMA_MODELS"] == str(
        tmp_path / ".ollama" / "models")


def test_which_processes_the_app_reaps():
    assert app.ollama_argv("ollama", ["/usr/local/bin/ollama", "serve"]) == ["/usr/local/bin/ollama", "serve"]
    script = ["/usr/bin/python3", "/Applications/Ollama.app/Contents/Resources/ollama", "serve"]
    assert app.ollama_argv("python3", script) == script[1:]
    assert app.ollama_argv("python3", ["/usr/bin/python3", "/x/other", "serve"]) is None
    assert app.serve_args(["/usr/local/bin/ollama", "serve"]) and app.serve_args(["ollama", "-v", "start"])
    assert not app.serve_args(["/usr/local/bin/ollama", "run", "x"])


def test_darwin_zip_carries_the_app_and_its_login_item():
    with zipfile.ZipFile(io.BytesIO(releases.darwin_zip("0.16.3"))) as archive:
        program = archive.read("Ollama.app/Contents/MacOS/Ollama").decode()
        assert 'VERSION = "0.16.3"' in program and program == releases.baked_app("0.16.3")
        assert archive.read("Ollama.app/Contents/Frameworks/Squirrel.framework/Versions/A/Squirrel").decode() == program
        item = plistlib.loads(archive.read(f"Ollama.app/{launchd.LOGIN_ITEM_PLIST}"))
        assert item["Label"] == "com.ollama.ollama" and item["ProgramArguments"][1] == "background"
        assert item["LimitLoadToSessionType"] == "Aqua" and item["RunAtLoad"] is True


def test_app_version_and_serve_refusal(tmp_path):
    path = tmp_path / "Ollama"
    path.write_text(releases.baked_app("0.32.15"))
    path.chmod(0o755)
    assert subprocess.run([sys.executable, str(path), "--version"], capture_output=True, text=True,
                          check=True).stdout == "0.32.15\n"
    refused = subprocess.run([sys.executable, str(path), "serve"], capture_output=True, text=True, check=False)
    assert refused.returncode == 1 and refused.stderr == "serve command not supported, use ollama\n"


def test_customise_writes_the_daemon_and_the_session_hook(tmp_path):
    (tmp_path / "etc/pam.d").mkdir(parents=True)
    (tmp_path / "etc/pam.d/sshd").write_text("@include common-session\n")
    launchd.customise(tmp_path)
    launchd.customise(tmp_path)  # twice: same result
    assert "_lab-launchd-serve" in (tmp_path / "etc/systemd/system/lab-launchd.service").read_text()
    assert (tmp_path / "etc/systemd/system/multi-user.target.wants/lab-launchd.service").is_symlink()
    assert (tmp_path / "etc/pam.d/sshd").read_text().count("_lab-session") == 1


def test_print_disabled_lists_the_domains_overrides(lc, capsys):
    run(lc, "disable", f"{GUI}/com.ollama.ollama")
    run(lc, "enable", f"{GUI}/com.example.on")
    run(lc, "disable", f"{USER_DOMAIN}/com.example.elsewhere")
    code, out = run(lc, "print-disabled", GUI, capsys=capsys)
    assert code == 0
    assert '\t"com.ollama.ollama" => disabled\n' in out.out and '\t"com.example.on" => enabled\n' in out.out
    assert "elsewhere" not in out.out


def test_a_disabled_login_item_does_not_load_at_login(lc, tmp_path, monkeypatch):
    bundle = tmp_path / "Ollama.app"
    item = bundle / launchd.LOGIN_ITEM_PLIST
    item.parent.mkdir(parents=True)
    item.write_text(releases.LOGIN_ITEM_PLIST)
    monkeypatch.setattr(lc, "agents_of", lambda entry: [])
    lc.register_login_item(USER.pw_uid, str(bundle), str(item))
    run(lc, "disable", f"{GUI}/com.ollama.ollama")
    lc.console_login(USER.pw_name, lambda m: None)
    assert lc.loaded_labels(lc.Domain("gui", USER.pw_uid)) == []


def test_bootout_of_what_is_not_loaded(lc, tmp_path, capsys):
    login(lc)
    code, out = run(lc, "bootout", f"{GUI}/com.example.none", capsys=capsys)
    assert code == 3 and out.err.strip() == "Boot-out failed: 3: No such process"
    code, out = run(lc, "bootout", GUI, str(agent(tmp_path)), capsys=capsys)
    assert code == 5 and out.err.startswith("Boot-out failed: 5: Input/output error")
    code, out = run(lc, "bootout", "--wait", f"{GUI}/com.example.none", capsys=capsys)
    assert code == 64 and "Unrecognized target specifier." in out.err  # macOS 15 has no --wait
    lc.console_logout(lambda m: None)
    code, out = run(lc, "print", GUI, capsys=capsys)
    assert code == 113 and out.err.strip() == f"Could not find domain for user gui: {USER.pw_uid}"


def test_list_shows_the_callers_session_domain(lc, tmp_path, capsys):
    login(lc)
    run(lc, "bootstrap", GUI, str(agent(tmp_path)))
    code, out = run(lc, "list", caller=USER.pw_uid, capsys=capsys)
    assert code == 0 and out.out.splitlines() == ["PID\tStatus\tLabel", "4242\t0\tcom.example.agent"]
    code, out = run(lc, "list", "com.example.agent", caller=USER.pw_uid, capsys=capsys)
    assert code == 0 and '\t"PID" = 4242;' in out.out and '\t"Label" = "com.example.agent";' in out.out
    assert run(lc, "list", "com.example.none", caller=USER.pw_uid, capsys=capsys)[0] == 113


def test_launch_daemons_load_into_the_system_domain_at_boot(lc, tmp_path):
    daemons = tmp_path / "LaunchDaemons"
    daemons.mkdir()
    agent(daemons, "com.example.daemon", UserName=USER.pw_name)
    lc.load_daemons(lambda m: None, daemons)
    record = lc.load_record(lc.Domain("system", 0), "com.example.daemon")
    assert record["user"] == USER.pw_name and record["environment"]["HOME"] == USER.pw_dir
    lc.load_daemons(lambda m: None, daemons)  # already loaded: unchanged
    assert lc.loaded_labels(lc.Domain("system", 0)) == ["com.example.daemon"]
