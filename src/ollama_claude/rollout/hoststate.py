"""
What a host ran before and runs now, recorded on the host by the deploy itself, so a rollout started from another
control machine (or after this one crashed) still knows which pins to go back to.

/var/lib/ollama-claude/state.json     pins: current and previous Ollama + Claude Code versions, and since when
/var/lib/ollama-claude/last-verify.json  the last verify result: pins verified, status, items, time

On macOS (the deploy connects as the laptop's user, no sudo for these) they are in
~/Library/Application Support/ollama-claude/ of the connecting user (its account's home: a pull-mode timer sets
no HOME): the commands resolve the directory on the host, so facts and operations need not know the kernel.

Both are rewritten only when something they record changed: a no-op re-run of the deploy changes nothing. The
verify record's time is when that result (pins, status, each item's status) was first seen on this host.
"""

from __future__ import annotations

import base64
import json
import re
from datetime import UTC, datetime
from typing import Any

from pyinfra import host
from pyinfra.api import FactBase, operation

from ..accounts import OWN_HOME

STATE_DIR = "/var/lib/ollama-claude"
DARWIN_STATE_DIR = f"$({OWN_HOME})/Library/Application Support/ollama-claude"
STATE_FILE, VERIFY_FILE = "state.json", "last-verify.json"
STATE_PATH = f"{STATE_DIR}/{STATE_FILE}"
VERIFY_PATH = f"{STATE_DIR}/{VERIFY_FILE}"
#: Sets $d to the record's directory on the host (Linux or macOS).
_DIR = f'd={STATE_DIR}; if [ "$(uname -s)" = Darwin ]; then d="{DARWIN_STATE_DIR}"; fi'
OLLAMA_LINK = "/usr/local/bin/ollama"
CLAUDE_LINK = "/usr/local/bin/claude"
_VERSION = re.compile(r"/v?(\d+\.\d+\.\d+)(?:/|$)")
_MARK = "--ollama-claude-state--"


def now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


def version_in_path(path: str | None) -> str | None:
    """The version directory a stable link resolves into (``.../ollama/0.32.15/bin/ollama`` -> ``0.32.15``)."""
    match = _VERSION.search(path or "")
    return match[1] if match else None


class HostState(FactBase[dict[str, Any]]):
    """
    The records (``state``, ``verify``: parsed JSON or None) and the versions the stable links resolve to now
    (``ollama_link``, ``claude_link``: what the host would run, None when not installed by us).
    """

    @staticmethod
    def default() -> dict[str, Any]:
        return {"state": None, "verify": None, "ollama_link": None, "claude_link": None}

    def command(self) -> str:
        parts = [_DIR]
        for name, file_name in (("state", STATE_FILE), ("verify", VERIFY_FILE)):
            parts.append(f'echo {_MARK}{name}; cat "$d/{file_name}" 2>/dev/null || true')
        for name, path in (("ollama_link", OLLAMA_LINK), ("claude_link", CLAUDE_LINK)):
            parts.append(f"echo {_MARK}{name}; readlink -f {path} 2>/dev/null || true")
        return "; ".join(parts)

    def process(self, output: list[str]) -> dict[str, Any]:
        return parse_host_state(output)


def parse_host_state(output: list[str]) -> dict[str, Any]:
    sections: dict[str, list[str]] = {}
    current = None
    for line in output:
        if line.startswith(_MARK):
            current = line[len(_MARK):].strip()
            sections[current] = []
        elif current is not None:
            sections[current].append(line)
    out = HostState.default()
    for name in ("state", "verify"):
        text = "\n".join(sections.get(name, [])).strip()
        try:
            out[name] = json.loads(text) if text else None
        except ValueError:
            out[name] = None  # a damaged record is rewritten by the next deploy
    for name in ("ollama_link", "claude_link"):
        out[name] = version_in_path("".join(sections.get(name, [])).strip())
    return out


def pins_record(recorded: dict[str, Any] | None, running: dict[str, str | None], pins: dict[str, str],
                at: str) -> dict[str, Any] | None:
    """
    The new state.json for a deploy of ``pins`` (``ollama_version``, ``claude_code_version``), or None when the
    record already says so. ``running``: what the host ran before this deploy (read before anything changed),
    used when there is no record yet (a fleet deployed before this record existed).
    """
    recorded = recorded if isinstance(recorded, dict) else {}
    current = recorded.get("current") or None
    if current is None and any(running.values()):
        current = {**running, "since": None}
    if current is not None and all(current.get(key) == value for key, value in pins.items()):
        if recorded.get("current") == current:
            return None
        return {"current": current, "previous": recorded.get("previous")}
    return {"current": {**pins, "since": at}, "previous": current or recorded.get("previous")}


def verify_key(record: dict[str, Any] | None) -> Any:
    """What makes a verify result different from the recorded one (not its time or durations)."""
    if not isinstance(record, dict):
        return None
    return (record.get("ollama_version"), record.get("claude_code_version"), record.get("status"),
            [(item.get("user"), item.get("number"), item.get("status")) for item in record.get("items", [])])


def verify_record(lines: list[Any], pins: dict[str, str], at: str) -> dict[str, Any]:
    """The last-verify record from the checklist's report lines (verify.report.Line) of one host."""
    items = [
        {"user": line.user, "number": item.number, "key": item.key, "status": item.status,
         **({"message": item.message} if item.status != "pass" else {})}
        for line in lines for item in line.items
    ]
    failed = any(line.status != "pass" for line in lines)
    edit = [round(line.seconds, 1) for line in lines if line.user]
    return {**pins, "status": "fail" if failed else "pass", "time": at, "items": items,
            "links": {line.user: f"{line.link} {line.model}" if line.model else None for line in lines if line.user},
            "seconds": max(edit) if edit else None}


def write_json_command(file_name: str, record: dict[str, Any]) -> str:
    """Atomically replace the record ``file_name`` with the JSON record (mode 0644, its directory created)."""
    data = base64.b64encode((json.dumps(record, indent=2, sort_keys=True) + "\n").encode()).decode()
    path = f'"$d/{file_name}"'
    temporary = f'"$d/{file_name}.tmp"'
    return (f'{_DIR}; install -d -m 755 "$d" && printf %s {data} | base64 -d > {temporary}'
            f" && chmod 644 {temporary} && mv -f {temporary} {path}")


@operation()
def record_pins(pins: dict[str, str], running: dict[str, str | None]):
    """
    Record the pins this deploy runs now, and the ones the host ran before, in state.json.

    + pins: ``ollama_version``, ``claude_code_version`` of this deploy
    + running: the versions the host ran before the deploy changed anything (read at the start of the deploy)
    """
    recorded = host.get_fact(HostState)["state"]
    record = pins_record(recorded, running, pins, now())
    if record is None:
        host.noop(f"{STATE_PATH}: pins recorded ({pins['ollama_version']}, {pins['claude_code_version']})")
        return
    yield write_json_command(STATE_FILE, record)


@operation()
def record_removed():
    """Remove the host's record (uninstall): /var/lib/ollama-claude, or on macOS the connecting user's own."""
    recorded = host.get_fact(HostState)
    if recorded["state"] is None and recorded["verify"] is None:
        host.noop("no record of pins or verify results on this host")
        return
    yield f'{_DIR}; rm -rf "$d"'
