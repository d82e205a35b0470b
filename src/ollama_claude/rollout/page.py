"""
reports/fleet.html: one self-contained page (inline CSS, no script) of the fleet as `status` and `rollout` saw it:
hosts by wave, versions running / pinned / before, models, the last verify with its items, the edit-test time,
and what changed. Compact rows, so 100 hosts stay readable at a glance.
"""

from __future__ import annotations

from html import escape
from pathlib import Path
from typing import Any

PAGE_NAME = "fleet.html"
MARKS = {"pass": "✓", "fail": "✗", "warn": "!", "skip": "–"}

CSS = """
body{font:14px/1.35 system-ui,sans-serif;margin:16px;color:#1b1f24;background:#fff}
h1{font-size:20px;margin:0 0 4px} h2{font-size:16px;margin:18px 0 6px}
.meta{color:#57606a;margin-bottom:10px}
.summary span{display:inline-block;margin-right:14px;padding:2px 8px;border-radius:10px;background:#eef}
.pass{color:#116329} .fail{color:#b3261e;font-weight:600} .warn{color:#9a6700} .skip{color:#57606a}
.unreachable{color:#b3261e}
table{border-collapse:collapse;width:100%} th,td{border-bottom:1px solid #d0d7de;padding:3px 6px;text-align:left;
vertical-align:top;white-space:nowrap} th{background:#f6f8fa;position:sticky;top:0}
td:last-child{white-space:normal}
td.items span{display:inline-block;min-width:22px} .old{color:#57606a} .changed{background:#fffbe6}
.decision{padding:6px 10px;border-left:4px solid #116329;background:#f6fff8;margin:4px 0}
.decision.stop{border-color:#b3261e;background:#fff5f5}
.decision.notrun{border-color:#8c959f;background:#f6f8fa;color:#57606a}
td:last-child{min-width:240px}
"""


def _version_cell(running: str | None, pinned: str | None, previous: str | None) -> str:
    text = escape(running or "—")
    if pinned and running and running != pinned:
        text += f' <span class="fail" title="pinned">(pin {escape(pinned)})</span>'
    if previous:
        text += f' <span class="old" title="ran before">was {escape(previous)}</span>'
    return text


def _items_cell(verify: dict[str, Any] | None) -> str:
    if not verify:
        return '<span class="skip">never verified</span>'
    parts = []
    for item in verify.get("items", []):
        status = item.get("status", "skip")
        title = f"{item.get('user') or 'host'} item {item.get('number')} {item.get('key')}: {status}"
        if item.get("message"):
            title += f" — {item['message']}"
        parts.append(f'<span class="{escape(status)}" title="{escape(title)}">'
                     f"{item.get('number')}{MARKS.get(status, '?')}</span>")
    return " ".join(parts)


def recorded_change(entry: dict[str, Any]) -> str:
    """What the host's own record says changed last: ``before -> now (since)``."""
    recorded = entry.get("recorded") or {}
    current, previous = recorded.get("current") or {}, recorded.get("previous") or {}
    if not previous:
        return ""
    parts = [f"{label} {previous.get(key) or '?'} -> {current.get(key) or '?'}"
             for label, key in (("Ollama", "ollama_version"), ("Claude Code", "claude_code_version"))
             if previous.get(key) != current.get(key)]
    since = (current.get("since") or "").replace("T", " ").replace("+00:00", " UTC")
    return ", ".join(parts) + (f" ({since})" if since and parts else "")


def host_row(entry: dict[str, Any], wave: str, changed: str, show_pins: bool = True) -> str:
    if not entry.get("reachable"):
        return (f'<tr data-host="{escape(entry["host"])}"><td>{escape(entry["host"])}</td><td>{escape(wave)}</td>'
                f'<td colspan="7" class="unreachable">unreachable</td><td>{escape(changed)}</td></tr>')
    recorded = entry.get("recorded") or {}
    previous = recorded.get("previous") or {}
    verify = entry.get("last_verify") or {}
    running, pins = entry.get("running") or {}, (entry.get("pins") or {}) if show_pins else {}
    status = verify.get("status") or "none"
    seconds = verify.get("seconds")
    models = entry.get("models")
    cells = [
        escape(entry["host"]), escape(wave),
        _version_cell(running.get("ollama_version"), pins.get("ollama_version"), previous.get("ollama_version")),
        _version_cell(running.get("claude_code_version"), pins.get("claude_code_version"),
                      previous.get("claude_code_version")),
        escape(", ".join(models)) if models is not None else '<span class="fail">Ollama not answering</span>',
        f'<span class="{escape(status)}">{escape(status)}</span>',
        _items_cell(verify or None),
        escape((verify.get("time") or "—").replace("T", " ").replace("+00:00", " UTC")),
        f"{seconds:.1f} s" if isinstance(seconds, (int, float)) else "—",
        escape(changed),
    ]
    css = ' class="changed"' if changed and changed != "untouched" else ""
    return f'<tr data-host="{escape(entry["host"])}"{css}>' + "".join(f"<td>{cell}</td>" for cell in cells) + "</tr>"


HEAD = ("<tr><th>host</th><th>wave</th><th>Ollama</th><th>Claude Code</th><th>models</th><th>verify</th>"
        "<th>items</th><th>verified at</th><th>edit test</th><th>what changed</th></tr>")


def render(status: dict[str, Any], rollout: dict[str, Any] | None = None) -> str:
    hosts = status.get("hosts", [])
    by_name = {entry["host"]: entry for entry in hosts}
    counts = {"pass": 0, "fail": 0, "none": 0, "unreachable": 0}
    for entry in hosts:
        key = "unreachable" if not entry.get("reachable") else ((entry.get("last_verify") or {}).get("status")
                                                                 or "none")
        counts[key if key in counts else "fail"] += 1
    title = "ollama-claude fleet"
    out = ["<!doctype html><html lang=en><head><meta charset=utf-8>", f"<title>{title}</title>",
           f"<style>{CSS}</style></head><body>", f"<h1>{title}</h1>",
           (f'<div class="meta">{escape(status.get("inventory", ""))} — {len(hosts)} hosts — written '
            f'{escape(status.get("time", ""))}</div>'),
           '<div class="summary">' + "".join(
               f'<span class="{key}">{count} {label}</span>' for key, label, count in (
                   ("pass", "verify passed", counts["pass"]), ("fail", "verify failed", counts["fail"]),
                   ("skip", "never verified", counts["none"]), ("unreachable", "unreachable", counts["unreachable"])))
           + "</div>"]
    offers = status.get("offers") or {}
    newer_ollama = sorted({v for o in offers.values() for v in (o.get("ollama") or [])})
    newer_claude = sorted({v for o in offers.values() for v in (o.get("claude_code") or [])})
    if newer_ollama or newer_claude:
        out.append('<div class="meta" id="offers">Newer releases offered: '
                   f'Ollama {escape(", ".join(newer_ollama) or "none")}; '
                   f'Claude Code {escape(", ".join(newer_claude) or "none")}</div>')
    if rollout:
        out.append(f'<h2>Rollout: {escape(rollout.get("outcome", ""))}</h2>')
        seen: set[str] = set()
        for wave in rollout.get("waves", []):
            label = f"wave {wave['number']}"
            css = {"stop": " stop", None: " notrun", "running": " notrun"}.get(wave.get("decision"), "")
            out.append(f'<div class="decision{css}"><b>{escape(label)}</b>: '
                       f'{escape(", ".join(wave["hosts"]))} — {escape(wave.get("decision") or "not run")}: '
                       f'{escape(wave.get("why") or "")}'
                       + (f' ({wave["seconds"]:.0f} s)' if wave.get("seconds") else "") + "</div>")
            out.append(f"<table>{HEAD}")
            for name in wave["hosts"]:
                seen.add(name)
                entry = by_name.get(name, {"host": name, "reachable": False})
                out.append(host_row(entry, str(wave["number"]), wave.get("changes", {}).get(name, "untouched"),
                                    show_pins=False))
            out.append("</table>")
        rest = [entry for entry in hosts if entry["host"] not in seen]
        if rest:
            out.append(f"<h2>Not in the rollout</h2><table>{HEAD}")
            out.extend(host_row(entry, "—", "untouched", show_pins=False) for entry in rest)
            out.append("</table>")
    else:
        out.append(f"<h2>Hosts</h2><table>{HEAD}")
        out.extend(host_row(entry, "—", recorded_change(entry)) for entry in hosts)
        out.append("</table>")
    out.append("</body></html>")
    return "\n".join(out)


def write_page(report_dir: Path, status: dict[str, Any], rollout: dict[str, Any] | None = None) -> Path:
    report_dir.mkdir(parents=True, exist_ok=True)
    path = report_dir / PAGE_NAME
    path.write_text(render(status, rollout))
    return path
