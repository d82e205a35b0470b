"""`ollama-claude status INVENTORY`: per host, what runs, what is recorded, models, last verify, newer releases."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from .offers import offers
from .page import write_page
from .runner import gather

STATUS_NAME = "status.json"


def collect(inventory: str, data: dict[str, Any] | None = None, check_offers: bool = True) -> dict[str, Any]:
    hosts = gather(inventory, data=data)
    return {"inventory": inventory, "time": datetime.now(UTC).isoformat(timespec="seconds"),
            "hosts": hosts, "offers": offers(hosts) if check_offers else {}}


def _pins(pair: dict[str, Any] | None) -> str:
    if not pair:
        return "-"
    return f"{pair.get('ollama_version') or '?'} / {pair.get('claude_code_version') or '?'}"


def render_terminal(status: dict[str, Any]) -> str:
    out = ["--> Status (Ollama / Claude Code):"]
    for entry in status["hosts"]:
        name = entry["host"]
        if not entry.get("reachable"):
            out.append(f"✗ {name}  unreachable")
            continue
        recorded = entry.get("recorded") or {}
        verify = entry.get("last_verify") or {}
        mark = {"pass": "✓", "fail": "✗"}.get(verify.get("status"), "-")
        out.append(f"{mark} {name}  running {_pins(entry['running'])}  pinned {_pins(entry['pins'])}  "
                   f"recorded {_pins(recorded.get('current'))} (before: {_pins(recorded.get('previous'))})")
        models = entry.get("models")
        out.append(f"    models: {', '.join(models) if models else ('none' if models is not None else 'Ollama not answering')}")
        if verify:
            failing = [f"{item['number']} {item['key']}" for item in verify.get("items", [])
                       if item.get("status") == "fail"]
            out.append(f"    last verify: {verify.get('status')} at {verify.get('time')} on "
                       f"{_pins(verify)}" + (f"; failing: {', '.join(failing)}" if failing else ""))
        else:
            out.append("    last verify: none recorded")
        offer = status.get("offers", {}).get(name)
        if offer:
            for label, key in (("Ollama", "ollama"), ("Claude Code", "claude_code")):
                if offer[key] is None:
                    out.append(f"    newer {label}: unknown ({offer[key + '_problem']})")
                elif offer[key]:
                    out.append(f"    newer {label}: {', '.join(offer[key])} at {offer[key + '_source']}")
    return "\n".join(out)


def write_status(report_dir: Path, status: dict[str, Any], rollout: dict[str, Any] | None = None) -> list[Path]:
    report_dir.mkdir(parents=True, exist_ok=True)
    path = report_dir / STATUS_NAME
    path.write_text(json.dumps(status, indent=2) + "\n")
    return [path, write_page(report_dir, status, rollout)]


def run_status(args: Any) -> int:
    status = collect(args.inventory, data=args.data)
    paths = write_status(Path(args.report_dir), status)
    print(render_terminal(status))
    print(f"reports: {', '.join(str(path) for path in paths)}")
    return 0 if all(entry.get("reachable") for entry in status["hosts"]) else 1
