"""
The server on macOS: a LaunchAgent of the laptop's account, loaded whether or not that user is at the GUI, and
what else may hold the port there (Ollama.app). Every launchd rule used here is in
../shared/reference/macos.md ("launchd", "Ollama on a Mac").
"""

from __future__ import annotations

import shlex
from typing import Any

from pyinfra.api import FactBase

from ..accounts import Account
from ..templating import render
from .config import LAUNCHD_LABEL, LAUNCHD_LOG

#: Where the official app lives (Ollama-darwin.zip unpacked by the user, or the cask); ~/Applications too.
APP_BUNDLE = "Ollama.app"
#: The app's process name (its Contents/MacOS executable): it runs a server of its own.
APP_PROCESS = "Ollama"
#: The app's login item: an SMAppService agent from Contents/Library/LaunchAgents (app/cmd/app/app_darwin.m@v0.32.15
#: :372-375, app/darwin/Ollama.app/Contents/Library/LaunchAgents/com.ollama.ollama.plist: Aqua sessions only).
APP_LABEL = "com.ollama.ollama"
#: Seconds to wait for a booted-out job to exit and for bootstrap to stop answering EIO.
DRAIN_TIMEOUT = 60


def plist_path(account: Account) -> str:
    return f"{account.home}/Library/LaunchAgents/{LAUNCHD_LABEL}.plist"


def log_path(account: Account) -> str:
    return f"{account.home}/{LAUNCHD_LOG}"


def domains(account: Account) -> tuple[str, str]:
    """The GUI session's domain (only while the user is logged in at the GUI) and the background one."""
    return f"gui/{account.uid}", f"user/{account.uid}"


class MacServer(FactBase[dict[str, Any]]):
    """
    On macOS, in one command: the domain our agent is loaded in (``loaded``: ``gui/<uid>``, else ``user/<uid>``,
    else None) and the ``pids`` of its jobs (a GUI login may load the agent into gui/<uid> beside a background
    session's copy); the Ollama.app bundles installed (``apps``), the app's running processes
    (``app_pids``) and whether its login item is disabled (``app_disabled``); the processes listening on the
    port (``listeners``: pid, parent pid and command name).
    """

    def default(self) -> dict[str, Any]:
        return {"loaded": None, "pids": [], "apps": [], "app_pids": [], "app_disabled": False, "listeners": []}

    def command(self, uid: int, home: str, port: int) -> str:
        label = shlex.quote(LAUNCHD_LABEL)
        apps = " ".join(shlex.quote(f"{root}/{APP_BUNDLE}") for root in ("/Applications", f"{home}/Applications"))
        return (
            f"for d in gui/{uid} user/{uid}; do out=$(launchctl print \"$d\"/{label} 2>/dev/null) || continue; "
            "echo \"loaded $d\"; printf '%s\\n' \"$out\" | sed -n 's/^[[:space:]]*pid = \\([0-9]*\\).*/pid \\1/p'; "
            "done; "
            f"for a in {apps}; do [ -d \"$a\" ] && echo \"app $a\"; done; "
            f"for p in $(pgrep -x {APP_PROCESS} 2>/dev/null); do echo \"app_pid $p\"; done; "
            f"launchctl print-disabled gui/{uid} 2>/dev/null | grep -Eq '\"{APP_LABEL}\" => (disabled|true)' "
            "&& echo app_disabled; "
            f"for p in $(lsof -nP -iTCP:{int(port)} -sTCP:LISTEN -t 2>/dev/null | sort -u); do "
            "echo \"listener $p $(ps -o ppid= -p \"$p\" 2>/dev/null | tr -d ' ') "
            "$(ps -o comm= -p \"$p\" 2>/dev/null | sed 's|.*/||' | tr ' ' _)\"; done; true"
        )

    def process(self, output: list[str]) -> dict[str, Any]:
        facts = self.default()
        for line in output:
            kind, _, value = line.partition(" ")
            if kind == "loaded":
                facts["loaded"] = facts["loaded"] or value
            elif kind == "pid" and value.isdigit():
                facts["pids"].append(int(value))
            elif kind == "app":
                facts["apps"].append(value)
            elif kind == "app_pid" and value.isdigit():
                facts["app_pids"].append(int(value))
            elif kind == "app_disabled":
                facts["app_disabled"] = True
            elif kind == "listener":
                pid, ppid, name = (value.split(" ", 2) + ["", ""])[:3]
                if pid.isdigit():
                    facts["listeners"].append({"pid": int(pid), "ppid": int(ppid) if ppid.isdigit() else None,
                                               "name": name})
        return facts


def restart_function(account: Account, host_name: str) -> str:
    """
    A shell function ``launchd_restart`` (re)loading our agent: boot it out of both domains, wait until the old
    job is gone (bootout returns before it exits, and bootstrap fails with EIO meanwhile), then bootstrap into the
    GUI domain when the user is logged in there, else the background one, retrying EIO and failing on any other
    status with launchctl's message.
    """
    gui, background = domains(account)
    return render(
        "ollama/launchd-restart.sh.j2", gui=gui, background=background, label=LAUNCHD_LABEL,
        plist=plist_path(account), log_dir=log_path(account).rsplit("/", 1)[0], owner=account.name,
        group=account.group, drain_timeout=DRAIN_TIMEOUT, host_name=host_name,
    )


def bootout_command(account: Account) -> str:
    """Unload our agent from whichever domain holds it and wait (up to DRAIN_TIMEOUT) until its job is gone, so
    the port is free afterwards; nothing when it is not loaded."""
    jobs = [f"{domain}/{LAUNCHD_LABEL}" for domain in domains(account)]
    loaded = " || ".join(f"launchctl print {job} >/dev/null 2>&1" for job in jobs)
    return ("; ".join(f"launchctl bootout {job} 2>/dev/null" for job in jobs) +
            f"; n=0; while {{ {loaded}; }} && [ $n -lt {DRAIN_TIMEOUT} ]; do n=$((n + 1)); sleep 1; done; true")
