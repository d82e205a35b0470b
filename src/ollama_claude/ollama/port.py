"""
Who holds the Ollama port before we change anything: our ``ollama.service`` (installed by us, or by install.sh and
taken over) is fine; anything else (a user's ``ollama serve``, a container's proxy, a distro package's unit) fails
the host naming it, instead of our service crash-looping on a taken port.
"""

from __future__ import annotations

import shlex
from collections.abc import Iterator
from typing import Any

from pyinfra import host
from pyinfra.api import FactBase, operation

from ..hostfail import fail_host
from .operations import UNIT

_LISTENING, _PROC = "listening", "proc"


class PortListeners(FactBase[dict[str, Any]]):
    """
    ``{"listening": bool, "processes": [{"pid", "name", "exe", "unit"}]}`` for TCP listeners on ``port``, from
    ``ss -ltnp`` (or /proc/net/tcp without ss); ``unit`` is the systemd service a process runs in, from its cgroup.
    Processes are only visible as root (or with ``_sudo``): otherwise ``listening`` alone tells the port is taken.
    """

    def default(self) -> dict[str, Any]:
        return {"listening": False, "processes": []}

    def command(self, port: int) -> str:
        hexport = f"{port:04X}"
        return (
            "pids=; if command -v ss >/dev/null 2>&1; then "
            f"  out=$(ss -ltnpH 'sport = :{port}' 2>/dev/null); [ -n \"$out\" ] && echo {_LISTENING}; "
            "  pids=$(printf '%s\\n' \"$out\" | grep -o 'pid=[0-9]*' | cut -d= -f2 | sort -u); "
            "else "
            f"  inodes=$(awk '$4==\"0A\" && $2 ~ /:{hexport}$/ {{print $10}}' /proc/net/tcp /proc/net/tcp6 "
            "2>/dev/null); "
            f"  [ -n \"$inodes\" ] && echo {_LISTENING}; "
            "  for i in $inodes; do for fd in /proc/[0-9]*/fd/*; do "
            "    [ \"$(readlink \"$fd\" 2>/dev/null)\" = \"socket:[$i]\" ] && { p=${fd#/proc/}; pids=\"$pids ${p%%/*}\"; }; "
            "  done; done; "
            "fi; "
            "for p in $(echo $pids | tr ' ' '\\n' | sort -u); do "
            "  unit=$(grep -o '[^/]*\\.service' /proc/$p/cgroup 2>/dev/null | tail -n1); "
            f"  echo \"{_PROC} $p ${{unit:--}} $(cat /proc/$p/comm 2>/dev/null | tr ' ' _) "
            "$(readlink /proc/$p/exe 2>/dev/null)\"; "
            "done; true"
        )

    def process(self, output: list[str]) -> dict[str, Any]:
        facts = self.default()
        for line in output:
            kind, *rest = line.split(" ", 4)
            if kind == _LISTENING:
                facts["listening"] = True
            elif kind == _PROC and len(rest) >= 3:
                pid, unit, name = rest[:3]
                facts["processes"].append({"pid": int(pid), "unit": None if unit == "-" else unit, "name": name,
                                           "exe": rest[3] if len(rest) > 3 else ""})
        return facts


def describe(process: dict[str, Any]) -> str:
    where = f", unit {process['unit']}" if process["unit"] else ""
    exe = f", {process['exe']}" if process["exe"] else ""
    return f"{process['name']} (pid {process['pid']}{exe}{where})"


def foreign(listeners: dict[str, Any]) -> list[dict[str, Any]] | None:
    """The processes holding the port that are not our service; None when the port is free or ours."""
    if not listeners["listening"]:
        return None
    others = [p for p in listeners["processes"] if p["unit"] != UNIT]
    if listeners["processes"] and not others:
        return None
    return others


@operation()
def port_is_ours(port: int, base_url: str) -> Iterator[str]:
    """
    Fail this host, before anything changes, when something other than our ``ollama.service`` listens on the
    Ollama port; say what holds it and the two ways out.

    + port: ``ollama_port``
    + base_url: what Claude Code would use, shown in the advice for ``ollama_base_url``
    """
    listeners = host.get_fact(PortListeners, port=port)
    others = foreign(listeners)
    if others is None:
        host.noop(f"port {port} is free or held by {UNIT}" if listeners["listening"] else f"port {port} is free")
        return
    holder = ", ".join(describe(p) for p in others) or "a process this connection cannot see (connect as root or "\
        "with _sudo to name it)"
    yield fail_host(
        f"port {port} is already held by {holder}, not by the {UNIT} this toolkit manages; nothing was changed. "
        f"Either stop it (and disable whatever starts it), or keep it: set ollama_enabled = False and "
        f"ollama_base_url = {shlex.quote(base_url)} (its URL) for this host"
    )
