"""
The fleet report: one line per host and user on the terminal, JSON and JUnit XML files for CI.

pyinfra runs the deploy once per host in one process, so results are collected on the pyinfra state and written
once when the process exits; hosts that never reached the verify step (unreachable, or failed earlier in the
deploy) are added from the state then, so the report always covers every host the run targets (hosts left out
by ``--limit`` or ``--exclude`` are not part of the run and not reported).
"""

from __future__ import annotations

import atexit
import json
import os
import xml.etree.ElementTree as ET
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .checks import ItemResult

#: Overrides verify_report_dir (e.g. per CI job), so reports can go elsewhere without touching group_data.
REPORT_DIR_ENV = "OLLAMA_CLAUDE_REPORT_DIR"
JSON_NAME = "verify.json"
JUNIT_NAME = "verify-junit.xml"
MARKS = {"pass": "✓", "fail": "✗", "warn": "!", "skip": "-"}


@dataclass
class Line:
    """One host (and user): its checklist items, the model the chain chose, and how long verifying took."""

    host: str
    user: str | None
    items: list[ItemResult] = field(default_factory=list)
    link: str | None = None
    model: str | None = None
    seconds: float = 0.0
    problem: str | None = None  # unreachable / not verified: no items

    @property
    def status(self) -> str:
        if self.problem:
            return self.problem.split(":")[0]
        return "fail" if any(item.status == "fail" for item in self.items) else "pass"


class FleetReport:
    """Results per host, the last evaluation winning (pyinfra may run an operation at prepare and execute)."""

    def __init__(self) -> None:
        self.hosts: dict[str, tuple[bool, list[Line]]] = {}

    def record(self, host: str, lines: list[Line], executing: bool) -> None:
        self.hosts[host] = (executing, lines)

    def line(self, host: str, user: str) -> Line | None:
        """The latest recorded line of one host's user (None before that host's checklist ran)."""
        return next((line for line in self.hosts.get(host, (False, []))[1] if line.user == user), None)

    def lines(self, state: Any = None) -> list[Line]:
        """Every inventory host this run targets (``--limit``/``--exclude``): its recorded lines, or why none."""
        if state is None:
            names = list(self.hosts)
        else:
            names = [host.name for host in state.inventory if in_run(state, host)]
        executed = state is not None and getattr(state, "is_executing", False)
        failed = {host.name for host in getattr(state, "failed_hosts", ())}
        activated = {host.name for host in getattr(state, "activated_hosts", ())}
        out: list[Line] = []
        for name in names:
            if name not in self.hosts:
                problem = ("unreachable: could not connect" if state is not None and name not in activated
                           else "not verified: the deploy failed on this host before the verify step")
                out.append(Line(name, None, problem=problem))
                continue
            recorded_at_execution, lines = self.hosts[name]
            if executed and not recorded_at_execution and name in failed:
                out.append(Line(name, None, problem="not verified: the deploy failed on this host before "
                                                     "the verify step"))
                continue
            out.extend(lines)
        return out


def in_run(state: Any, host: Any) -> bool:
    """Whether the run targets ``host``: one left out by ``--limit`` or ``--exclude`` is not unreachable."""
    limit = getattr(state, "limit_hosts", None)
    return not isinstance(limit, list) or host in limit


def fleet_report(state: Any) -> FleetReport:
    """The run's collector, kept on the pyinfra state (one per run, shared by every host)."""
    report = getattr(state, "_ollama_claude_verify", None)
    if report is None:
        report = FleetReport()
        state._ollama_claude_verify = report
    return report


def write_at_exit(state: Any, report_dir: str) -> None:
    """Print the table and write the files once, when pyinfra's process ends (after every host ran)."""
    if getattr(state, "_ollama_claude_verify_writer", False):
        return
    state._ollama_claude_verify_writer = True
    atexit.register(finish, state, report_dir)


def finish(state: Any, report_dir: str) -> list[Path]:
    lines = fleet_report(state).lines(state)
    paths = write_files(lines, Path(os.environ.get(REPORT_DIR_ENV) or report_dir))
    print(render_terminal(lines, paths), flush=True)
    return paths


# --- Rendering ------------------------------------------------------------------------------------------------
def render_terminal(lines: list[Line], paths: list[Path] | None = None) -> str:
    width = max((len(line.host) for line in lines), default=4)
    user_width = max((len(line.user or "-") for line in lines), default=1)
    out = ["--> Verify (checklist per host and user):"]
    for line in lines:
        head = f"{MARKS.get(line.status, '✗')} {line.host:<{width}} {line.user or '-':<{user_width}}"
        if line.problem:
            out.append(f"{head}  {line.problem}")
            continue
        marks = " ".join(f"{item.number}{MARKS[item.status]}" for item in line.items)
        chosen = f"{line.link} {line.model}" if line.model else "no working model"
        out.append(f"{head}  {marks}  {chosen}  {line.seconds:.1f} s")
        for item in line.items:
            if item.status in ("fail", "warn", "skip"):
                out.append(f"    {item.number} {item.key}: {item.message} -> fix: {item.fix}")
    out.append(summary(lines) + (f"; reports: {', '.join(str(path) for path in paths)}" if paths else ""))
    return "\n".join(out)


def summary(lines: list[Line]) -> str:
    by_host: dict[str, str] = {}
    for line in lines:
        previous = by_host.get(line.host, "pass")
        by_host[line.host] = line.status if previous == "pass" else previous
    counts = {status: sum(1 for value in by_host.values() if value == status)
              for status in ("pass", "fail", "unreachable", "not verified")}
    return (f"verify: {counts['pass']} passed, {counts['fail']} failed, {counts['unreachable']} unreachable, "
            f"{counts['not verified']} not verified, of {len(by_host)} hosts")


def to_json(lines: list[Line]) -> dict[str, Any]:
    records = [
        {"host": line.host, "user": line.user, "item": item.number, "key": item.key, "title": item.title,
         "status": item.status, "message": item.message, "fix": item.fix}
        for line in lines for item in line.items
    ]
    hosts = [
        {"host": line.host, "user": line.user, "status": line.status, "link": line.link, "model": line.model,
         "seconds": round(line.seconds, 3), "problem": line.problem}
        for line in lines
    ]
    return {"summary": summary(lines), "failed": any(line.status != "pass" for line in lines),
            "hosts": hosts, "records": records}


def to_junit(lines: list[Line]) -> ET.Element:
    root = ET.Element("testsuites", name="ollama-claude verify")
    for line in lines:
        suite = ET.SubElement(root, "testsuite", name=f"{line.host}/{line.user or '-'}")
        classname = f"{line.host}.{line.user or 'host'}"
        if line.problem:
            case = ET.SubElement(suite, "testcase", classname=classname, name="reachable")
            ET.SubElement(case, "error", message=line.problem)
        for item in line.items:
            case = ET.SubElement(suite, "testcase", classname=classname, name=f"{item.number} {item.key}")
            if item.status == "fail":
                ET.SubElement(case, "failure", message=item.message).text = f"fix: {item.fix}"
            elif item.status == "skip":
                ET.SubElement(case, "skipped", message=item.message)
            ET.SubElement(case, "system-out").text = f"{item.status}: {item.message}"
        cases = suite.findall("testcase")
        suite.set("tests", str(len(cases)))
        suite.set("failures", str(sum(1 for case in cases if case.find("failure") is not None)))
        suite.set("errors", str(sum(1 for case in cases if case.find("error") is not None)))
        suite.set("skipped", str(sum(1 for case in cases if case.find("skipped") is not None)))
        suite.set("time", f"{line.seconds:.3f}")
    return root


def write_files(lines: list[Line], report_dir: Path) -> list[Path]:
    report_dir.mkdir(parents=True, exist_ok=True)
    json_path, junit_path = report_dir / JSON_NAME, report_dir / JUNIT_NAME
    json_path.write_text(json.dumps(to_json(lines), indent=2) + "\n")
    ET.ElementTree(to_junit(lines)).write(junit_path, encoding="utf-8", xml_declaration=True)
    return [json_path, junit_path]
