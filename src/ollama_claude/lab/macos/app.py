#!/usr/bin/env python3
"""Ollama.app's own program (Contents/MacOS/Ollama) for the lab's Mac-shaped host: a lab part, not Ollama's app.

The lab's Ollama-darwin.zip carries this file as Contents/MacOS/Ollama and as the bundle's mock Squirrel (both
copies of one binary, build_darwin.sh@v0.32.15:216-228, @v0.16.3:136-147), with VERSION baked in, and the Ollama
stand-in as Contents/Resources/ollama. It does what the real app does to the server and the login session, each
behaviour citing the real source as <path>@<tag>:<lines> (ollama/ollama repository; app/ is the macOS app):

- `Ollama background` (how the login item starts it): prints "starting in background", runs
  `<bundle>/Contents/MacOS/Ollama hidden` and waits (app/cmd/app/app.go@v0.32.15:78-86,
  app/cmd/app/app_darwin.go@v0.32.15:240-252). `Ollama serve` fails: "serve command not supported, use ollama"
  (app.go@v0.32.15:74-76). `--version` prints the version.
- The app (`hidden` or no argument): terminates other running instances of the app (killOtherInstances,
  app_darwin.m@v0.32.15:636-664), registers its login item with SMAppService from the bundle's
  Contents/Library/LaunchAgents/com.ollama.ollama.plist (app_darwin.go@v0.32.15:197-202,
  app_darwin.m@v0.32.15:372-405; the lab's launchctl records it and loads it at each console login), then runs
  its server.
- Its settings store is ~/Library/Application Support/Ollama/db.sqlite (app/store/store.go@v0.32.15:197,
  @v0.16.3:185), table `settings` with one row id=1 (app/store/database.go@v0.32.15:65-93, @v0.16.3:65-90).
  context_length defaults to 4096 up to 0.16.x (database.go@v0.16.3:76, schema 13) and to 0 from 0.17.0, where
  migration 13->14 also turns a stored 4096 into 0 (database.go@v0.32.15:76, 504-509; first in v0.17.0).
  Only the settings table is modelled.
- The server (app/server/server.go@v0.32.15:178-284, @v0.16.3:150-255): every restartDelay (1 s) it starts
  `<bundle>/Contents/Resources/ollama serve` with the app's own environment plus, from the store,
  OLLAMA_HOST=0.0.0.0 if expose, OLLAMA_ORIGINS=* if browser, OLLAMA_MODELS=<models or ~/.ollama/models> if
  that directory exists, **OLLAMA_CONTEXT_LENGTH=<context_length> when > 0** (server.go@v0.32.15:263-265,
  @v0.16.3:235-236) and OLLAMA_NO_CLOUD (server.go@v0.32.15:245-274); output to ~/.ollama/logs/server.log,
  rotated at start (server_unix.go@v0.32.15:20, logrotate.go@v0.32.15 MaxLogFiles 5); its pid in
  ~/Library/Application Support/Ollama/ollama.pid, a previous one from that file stopped first (server.go:109-176).
  When the server exits with status 1 (a busy port: the stand-in exits 1 when it cannot bind) the first time,
  the app SIGTERMs every process named `ollama` but itself (reapServers, server_unix.go@v0.16.3:49-93); from
  0.30.0 only those whose arguments are `ollama serve|start` (server_unix.go@v0.32.15:49-117; checked: absent
  at v0.18.0, present at v0.30.0), then starts its server again.
Lab compromises: the stand-in is a Python script, so its kernel name is `python3` and its arguments start with
the interpreter; "named ollama" here is either a process whose name is `ollama` or a Python process running a
file named `ollama` (arguments after the interpreter). This program names itself `Ollama` (prctl), so
`pgrep -x Ollama` finds it as on a Mac. No UI, no updater, no tray.
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

VERSION = "0.0.0"
RESTART_DELAY = 1.0
LOGIN_ITEM_PLIST = "Contents/Library/LaunchAgents/com.ollama.ollama.plist"
MAX_LOG_FILES = 5

# The settings table as created by each schema (database.go@v0.16.3:65-90 and @v0.32.15:65-93).
SETTINGS_V13 = """CREATE TABLE IF NOT EXISTS settings (
    id INTEGER PRIMARY KEY CHECK (id = 1), device_id TEXT NOT NULL DEFAULT '',
    has_completed_first_run BOOLEAN NOT NULL DEFAULT 0, expose BOOLEAN NOT NULL DEFAULT 0,
    survey BOOLEAN NOT NULL DEFAULT TRUE, browser BOOLEAN NOT NULL DEFAULT 0, models TEXT NOT NULL DEFAULT '',
    agent BOOLEAN NOT NULL DEFAULT 0, tools BOOLEAN NOT NULL DEFAULT 0, working_dir TEXT NOT NULL DEFAULT '',
    context_length INTEGER NOT NULL DEFAULT 4096, window_width INTEGER NOT NULL DEFAULT 0,
    window_height INTEGER NOT NULL DEFAULT 0, config_migrated BOOLEAN NOT NULL DEFAULT 0,
    airplane_mode BOOLEAN NOT NULL DEFAULT 0, turbo_enabled BOOLEAN NOT NULL DEFAULT 0,
    websearch_enabled BOOLEAN NOT NULL DEFAULT 0, selected_model TEXT NOT NULL DEFAULT '',
    sidebar_open BOOLEAN NOT NULL DEFAULT 0, think_enabled BOOLEAN NOT NULL DEFAULT 0,
    think_level TEXT NOT NULL DEFAULT '', cloud_setting_migrated BOOLEAN NOT NULL DEFAULT 0,
    remote TEXT NOT NULL DEFAULT '', schema_version INTEGER NOT NULL DEFAULT 13);
INSERT OR IGNORE INTO settings (id) VALUES (1);"""
SETTINGS_V17 = """CREATE TABLE IF NOT EXISTS settings (
    id INTEGER PRIMARY KEY CHECK (id = 1), device_id TEXT NOT NULL DEFAULT '',
    has_completed_first_run BOOLEAN NOT NULL DEFAULT 0, expose BOOLEAN NOT NULL DEFAULT 0,
    survey BOOLEAN NOT NULL DEFAULT TRUE, browser BOOLEAN NOT NULL DEFAULT 0, models TEXT NOT NULL DEFAULT '',
    agent BOOLEAN NOT NULL DEFAULT 0, tools BOOLEAN NOT NULL DEFAULT 0, working_dir TEXT NOT NULL DEFAULT '',
    context_length INTEGER NOT NULL DEFAULT 0, window_width INTEGER NOT NULL DEFAULT 0,
    window_height INTEGER NOT NULL DEFAULT 0, config_migrated BOOLEAN NOT NULL DEFAULT 0,
    airplane_mode BOOLEAN NOT NULL DEFAULT 0, turbo_enabled BOOLEAN NOT NULL DEFAULT 0,
    websearch_enabled BOOLEAN NOT NULL DEFAULT 0, selected_model TEXT NOT NULL DEFAULT '',
    sidebar_open BOOLEAN NOT NULL DEFAULT 0, last_home_view TEXT NOT NULL DEFAULT 'chat',
    onboarding_version INTEGER NOT NULL DEFAULT 0, think_enabled BOOLEAN NOT NULL DEFAULT 0,
    think_level TEXT NOT NULL DEFAULT '', cloud_setting_migrated BOOLEAN NOT NULL DEFAULT 0,
    remote TEXT NOT NULL DEFAULT '', auto_update_enabled BOOLEAN NOT NULL DEFAULT 1,
    schema_version INTEGER NOT NULL DEFAULT 17);
INSERT OR IGNORE INTO settings (id) VALUES (1);"""
# Columns a v13 table gains on the way to v17 (database.go@v0.32.15 migrations).
V17_ADDED = (
    ("last_home_view", "TEXT NOT NULL DEFAULT 'chat'"),
    ("onboarding_version", "INTEGER NOT NULL DEFAULT 0"),
    ("auto_update_enabled", "BOOLEAN NOT NULL DEFAULT 1"),
)


def version_key(version: str) -> tuple[int, ...]:
    return tuple(int(p) for p in version.split("-")[0].split(".")[:3] if p.isdigit())


def home() -> Path:
    return Path(os.environ.get("HOME") or os.path.expanduser("~"))


def support_dir() -> Path:
    return home() / "Library" / "Application Support" / "Ollama"


def db_path() -> Path:
    return support_dir() / "db.sqlite"


def pid_file() -> Path:
    return support_dir() / "ollama.pid"


def server_log_path() -> Path:
    return home() / ".ollama" / "logs" / "server.log"


def app_log(message: str) -> None:
    path = home() / ".ollama" / "logs" / "app.log"
    with contextlib.suppress(OSError):
        path.parent.mkdir(parents=True, exist_ok=True)
        with open(path, "a") as log:
            log.write(f"time={time.strftime('%Y-%m-%dT%H:%M:%S')} level=INFO msg={message!r}\n")


# ----------------------------------------------------------------------------------------------- the store


def open_store(version: str = VERSION, path: Path | None = None) -> sqlite3.Connection:
    """Create or migrate the settings table as an app of this version does."""
    path = path or db_path()
    path.parent.mkdir(parents=True, exist_ok=True)
    conn = sqlite3.connect(path, timeout=5)
    new_schema = version_key(version) >= (0, 17, 0)
    conn.executescript(SETTINGS_V17 if new_schema else SETTINGS_V13)
    if new_schema:
        columns = {row[1] for row in conn.execute("PRAGMA table_info(settings)")}
        for name, kind in V17_ADDED:
            if name not in columns:
                conn.execute(f"ALTER TABLE settings ADD COLUMN {name} {kind}")
        (schema,) = conn.execute("SELECT schema_version FROM settings WHERE id = 1").fetchone()
        if schema < 14:
            # migrateV13ToV14 (database.go@v0.32.15:504-509): 4096 was the old default, 0 means VRAM-based.
            conn.execute("UPDATE settings SET context_length = 0 WHERE context_length = 4096")
        if schema < 17:
            conn.execute("UPDATE settings SET schema_version = 17")
    conn.commit()
    return conn


def settings(version: str = VERSION, path: Path | None = None) -> dict:
    conn = open_store(version, path)
    try:
        conn.row_factory = sqlite3.Row
        row = conn.execute("SELECT * FROM settings WHERE id = 1").fetchone()
        return dict(row)
    finally:
        conn.close()


def server_environment(base: dict[str, str], values: dict) -> dict[str, str]:
    """server.go@v0.32.15:244-274 (@v0.16.3:216-246): the app's environment merged with its settings."""
    env = dict(base)
    if values.get("expose"):
        env["OLLAMA_HOST"] = "0.0.0.0"
    if values.get("browser"):
        env["OLLAMA_ORIGINS"] = "*"
    # Store.Settings(): an empty models path means $OLLAMA_MODELS, else ~/.ollama/models (store.go@v0.32.15:399-410).
    models = values.get("models") or env.get("OLLAMA_MODELS") or str(home() / ".ollama" / "models")
    if os.path.exists(models):
        env["OLLAMA_MODELS"] = models
    if int(values.get("context_length") or 0) > 0:
        env["OLLAMA_CONTEXT_LENGTH"] = str(int(values["context_length"]))
    env["OLLAMA_NO_CLOUD"] = "0"  # CloudDisabled() is false unless the user turned cloud off
    return env


# ----------------------------------------------------------------------------------------------- processes


def set_process_name(name: str) -> None:
    """The name `pgrep -x`/`ps -o comm` show (on a Mac: the executable's name)."""
    with contextlib.suppress(Exception):
        ctypes.CDLL(None).prctl(15, name.encode()[:15], 0, 0, 0)  # PR_SET_NAME


def processes() -> list[tuple[int, int, str, list[str]]]:
    """(pid, uid, name, argv) of every process."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            name = (entry / "comm").read_text().strip()
            argv = [a.decode(errors="replace") for a in (entry / "cmdline").read_bytes().split(b"\0") if a]
            uid = entry.stat().st_uid
        except OSError:
            continue
        found.append((int(entry.name), uid, name, argv))
    return found


def ollama_argv(name: str, argv: list[str]) -> list[str] | None:
    """The arguments of a process named `ollama` (a script's without its interpreter), else None."""
    if name == "ollama":
        return argv
    if argv and os.path.basename(argv[0]).startswith("python") and len(argv) > 1 \
            and os.path.basename(argv[1]) == "ollama":
        return argv[1:]
    return None


def serve_args(argv: list[str]) -> bool:
    """ollamaServeArgs (server.go@v0.32.15:86-107): the first non-flag argument is serve or start."""
    if len(argv) < 2 or os.path.basename(argv[0].strip('"')) not in ("ollama", "ollama.exe"):
        return False
    for raw in argv[1:]:
        arg = raw.strip('"')
        if not arg.startswith("-"):
            return arg in ("serve", "start")
    return False


def reap_servers(version: str = VERSION, own: set[int] | None = None) -> list[int]:
    """reapServers: SIGTERM (else SIGKILL) every `ollama` process but ours; returns the pids signalled."""
    own = own or {os.getpid()}
    signalled = []
    for pid, _uid, name, argv in processes():
        args = ollama_argv(name, argv)
        if args is None or pid in own:
            continue
        if version_key(version) >= (0, 30, 0) and not serve_args(args):
            continue
        for sig in (signal.SIGTERM, signal.SIGKILL):
            try:
                os.kill(pid, sig)
            except OSError:
                continue
            app_log(f"stopped external ollama process pid={pid}")
            signalled.append(pid)
            break
    return signalled


def kill_other_instances() -> None:
    """killOtherInstances (app_darwin.m@v0.32.15:636-664): the user's other running copies of the app."""
    me, parent = os.getpid(), os.getppid()
    for pid, uid, name, argv in processes():
        if pid in (me, parent) or uid != os.getuid() or name != "Ollama":
            continue
        if any(a.endswith("/Contents/MacOS/Ollama") for a in argv[:2]):
            app_log(f"terminating other ollama instance {pid}")
            with contextlib.suppress(OSError):
                os.kill(pid, signal.SIGTERM)


def stop(process: subprocess.Popen) -> None:
    """stop (server.go@v0.32.15:146-176): SIGINT (terminate, server_unix.go:27-29), kill after 5 s."""
    if process.poll() is not None:
        return
    with contextlib.suppress(OSError):
        process.send_signal(signal.SIGINT)
    try:
        process.wait(5)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


def cleanup() -> None:
    """A previous server from the pid file is stopped first (server.go@v0.32.15:109-141)."""
    path = pid_file()
    try:
        pid = int(path.read_text().strip())
    except (OSError, ValueError):
        return
    path.unlink(missing_ok=True)
    with contextlib.suppress(OSError):
        os.kill(pid, signal.SIGINT)
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline:
            os.kill(pid, 0)
            time.sleep(0.01)
        os.kill(pid, signal.SIGKILL)


def rotate(path: Path) -> None:
    """logrotate.Rotate (app/logrotate/logrotate.go@v0.32.15): server.log -> server-1.log ... -5."""
    if not path.exists():
        return
    stem, suffix = str(path)[: -len(path.suffix)], path.suffix
    for i in range(MAX_LOG_FILES, 0, -1):
        older, newer = f"{stem}-{i}{suffix}", (f"{stem}-{i - 1}{suffix}" if i > 1 else str(path))
        if os.path.exists(newer):
            with contextlib.suppress(OSError):
                os.replace(newer, older)


# ----------------------------------------------------------------------------------------------- the app


def bundle_path() -> Path:
    here = Path(os.path.abspath(sys.argv[0]))
    for parent in here.parents:
        if parent.suffix == ".app":
            return parent
    return here.parents[2]


def run_server(bundle: Path) -> None:
    """Server.Run (server.go@v0.32.15:178-228)."""
    log_path = server_log_path()
    log_path.parent.mkdir(parents=True, exist_ok=True)
    rotate(log_path)
    log = open(log_path, "ab")  # noqa: SIM115 - open for the app's lifetime
    cleanup()
    binary = bundle / "Contents" / "Resources" / "ollama"
    child: list[subprocess.Popen] = []
    stopping: list[bool] = []

    def terminate(_signum, _frame):
        # The server's context is cancelled: SIGINT to it, killed after 5 s (stop, server.go@v0.32.15:146-176).
        # Popen.wait is not re-entrant, so the handler only signals; the loop below sees it exit.
        stopping.append(True)
        if child and child[0].poll() is None:
            with contextlib.suppress(OSError):
                child[0].send_signal(signal.SIGINT)
            signal.signal(signal.SIGALRM, lambda *_: child[0].kill())
            signal.alarm(5)
        else:
            raise SystemExit(0)

    signal.signal(signal.SIGTERM, terminate)
    signal.signal(signal.SIGINT, terminate)
    reaped = False
    while True:
        time.sleep(RESTART_DELAY)
        env = server_environment(dict(os.environ), settings())
        process = subprocess.Popen([str(binary), "serve"], stdout=log, stderr=log, env=env,
                                   stdin=subprocess.DEVNULL)
        child[:] = [process]
        with contextlib.suppress(OSError):
            pid_file().write_text(str(process.pid))
        code = process.wait()
        if stopping:
            pid_file().unlink(missing_ok=True)
            return
        if code == 1 and not reaped:
            reaped = True
            # "This could be a port conflict, try to kill any existing ollama processes" (server.go:215-222)
            reap_servers(own={os.getpid(), process.pid})
            continue
        app_log(f"ollama exited: exit status {code}")


def register_login_item(bundle: Path) -> None:
    plist = bundle / LOGIN_ITEM_PLIST
    if plist.is_file():
        subprocess.run(["launchctl", "_lab-register-login-item", str(os.getuid()), str(bundle), str(plist)],
                       check=False, capture_output=True)


def main(argv: list[str]) -> int:
    set_process_name(os.path.basename(argv[0]) if argv else "Ollama")
    for arg in argv[1:]:
        if arg == "serve":
            print("serve command not supported, use ollama", file=sys.stderr)
            return 1
        if arg in ("version", "-v", "--version"):
            print(VERSION)
            return 0
        if arg == "background":
            print("starting in background", flush=True)
            result = subprocess.run([str(bundle_path() / "Contents" / "MacOS" / "Ollama"), "hidden"], check=False)
            return 1 if result.returncode else 0
    bundle = bundle_path()
    app_log(f"starting Ollama app={bundle} version={VERSION}")
    kill_other_instances()
    register_login_item(bundle)
    run_server(bundle)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
