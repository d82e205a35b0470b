"""
Who serves the Ollama port on a Mac before our LaunchAgent takes it: an installed Ollama.app runs its own server
(its context from its own settings, app/server/server.go@v0.32.15:263-265) and SIGTERMs every other ``ollama``
when it cannot bind (app/server/server_unix.go@v0.32.15:59-93), so the two never run side by side.
"""

from __future__ import annotations

from collections.abc import Iterator

from pyinfra import host
from pyinfra.api import operation

from ..accounts import Account
from ..hostfail import fail_host
from .launchd import APP_LABEL, APP_PROCESS, MacServer

_CHOICE = ("set ollama_macos_app = \"stop\" (quit the app, disable its login item, serve from our pinned "
           "LaunchAgent), or remove the app")


def _app_servers(mac: dict) -> list[int]:
    """The app's server: a listener whose parent is the app (app/server/server.go@v0.32.15:230-240)."""
    return [p["pid"] for p in mac["listeners"] if p["ppid"] in mac["app_pids"]]


def _foreign_listeners(mac: dict) -> list[str]:
    """Listeners on the port that are neither our agent's job nor the app's server."""
    servers = [*mac["pids"], *_app_servers(mac)]
    return [f"{p['name']} (pid {p['pid']})" for p in mac["listeners"] if p["pid"] not in servers]


@operation()
def mac_port_is_ours(account: Account, port: int, app: str = "fail") -> Iterator[str]:
    """
    Fail this host before anything changes when the port is held by something other than our agent or an
    Ollama.app server; with Ollama.app installed or running, do what ``app`` says: ``fail`` (naming the choice)
    or ``stop`` (quit it and disable its login item, once).

    + account: the laptop account our LaunchAgent runs as
    + port: ``ollama_port``
    + app: ``ollama_macos_app``
    """
    mac = host.get_fact(MacServer, uid=account.uid, home=account.home, port=port)
    if others := _foreign_listeners(mac):
        yield fail_host(f"port {port} is already held by {', '.join(others)}, not by our LaunchAgent or Ollama.app; "
                   "nothing was changed. Stop it, or keep it: set ollama_enabled = False and ollama_base_url "
                   "to its URL for this host")
        return
    if not (mac["apps"] or mac["app_pids"]):
        host.noop(f"no Ollama.app; port {port} is free or held by our LaunchAgent")
        return
    where = ", ".join(mac["apps"]) or f"running (pid {', '.join(map(str, mac['app_pids']))})"
    if app == "fail":
        yield fail_host(f"Ollama.app is installed ({where}): it runs its own server with its own context length and "
                   f"stops any other ollama on port {port}; nothing was changed. Choose: {_CHOICE}")
        return
    if not mac["app_pids"] and mac["app_disabled"]:
        host.noop(f"Ollama.app ({where}) is stopped and its login item disabled")
        return
    domain = f"gui/{account.uid}"
    # The login item is the app's SMAppService agent (Contents/Library/LaunchAgents/com.ollama.ollama.plist,
    # app/cmd/app/app_darwin.m@v0.32.15:372-375): disabled, launchd no longer starts it at login.
    yield f"launchctl bootout {domain}/{APP_LABEL} 2>/dev/null; launchctl disable {domain}/{APP_LABEL}"
    if pids := " ".join(map(str, mac["app_pids"] + _app_servers(mac))):
        # The app and its server, its child `ollama serve` (app/server/server.go@v0.32.15:230-240), both go.
        yield (f"kill {pids} 2>/dev/null; n=0; while kill -0 {pids} 2>/dev/null; do n=$((n + 1)); "
               f"[ $n -le 30 ] || {{ {fail_host(f'{APP_PROCESS} (pid {pids}) did not quit within 30 s')}; }}; sleep 1; "
               "done; true")


@operation()
def app_login_item_restored(account: Account, port: int) -> Iterator[str]:
    """
    Uninstall: give Ollama.app its login item back (``ollama_macos_app = "stop"`` disabled it), so the app starts
    at the next login as it did before the toolkit; nothing when the app is gone or its login item is enabled.

    + account: the laptop account
    + port: ``ollama_port`` (the fact reads the port's listeners too)
    """
    mac = host.get_fact(MacServer, uid=account.uid, home=account.home, port=port)
    if not (mac["apps"] and mac["app_disabled"]):
        host.noop("Ollama.app's login item is not disabled")
        return
    yield f"launchctl enable gui/{account.uid}/{APP_LABEL}"
