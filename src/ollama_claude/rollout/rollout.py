"""
`ollama-claude rollout INVENTORY`: the deploy in waves (a canary, then growing batches), each wave a plain
`pyinfra INVENTORY DEPLOY --limit <its hosts>` run that ends in the checklist and the real edit test.

After a wave its verify report (verify.json, written by that run into its own directory) is read: more failing
hosts than the budget stops the rollout. The wave's hosts are then put back on the pins they ran before (the same
deploy with ``--data ollama_version=<before> --data claude_code_version=<before>``: both are kept side by side,
so this is a switch, not a download), verified green again, and later waves are never touched.

The pins each host ran before are taken when the rollout starts (the host's own state.json, written by the deploy,
or what it runs) and kept with the wave plan in a progress file: a re-run of the same command after the control
machine died resumes there, skipping finished waves.
"""

from __future__ import annotations

import hashlib
import json
import math
import sys
import xml.etree.ElementTree as ET
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from .runner import REPORT_DIR_ENV, run_pyinfra
from .status import collect, write_status

PROGRESS_NAME = "rollout-progress.json"
JSON_NAME = "rollout.json"
JUNIT_NAME = "rollout-junit.xml"
PIN_KEYS = ("ollama_version", "claude_code_version")


class RolloutError(ValueError):
    pass


def plan_waves(hosts: list[str], spec: str) -> list[list[str]]:
    """
    Waves from a spec of cumulative sizes: ``1,25%,100%`` = one canary, then up to a quarter of the fleet, then
    the rest. A size that adds no host is skipped; hosts never planned by the spec go into a last wave.
    """
    total, reached, waves = len(hosts), 0, []
    for part in (piece.strip() for piece in spec.split(",") if piece.strip()):
        try:
            size = math.ceil(total * float(part[:-1]) / 100) if part.endswith("%") else int(part)
        except ValueError:
            raise RolloutError(f"--waves: {part!r} is neither a host count nor a percentage") from None
        if size <= 0:
            raise RolloutError(f"--waves: {part!r} must be positive")
        size = min(size, total)
        if size > reached:
            waves.append(hosts[reached:size])
            reached = size
    if reached < total:
        waves.append(hosts[reached:])
    return waves


def pins_before(entry: dict[str, Any]) -> dict[str, str | None]:
    """What a host runs now: the server's and the CLI's own answers, else the links, else its state.json."""
    recorded = (entry.get("recorded") or {}).get("current") or {}
    running, installed = entry.get("running") or {}, entry.get("installed") or {}
    return {key: running.get(key) or installed.get(key) or recorded.get(key) for key in PIN_KEYS}


def wave_results(report: Path, hosts: list[str]) -> dict[str, dict[str, Any]]:
    """Per host of the wave: pass/fail and the failing items, from the run's verify.json."""
    try:
        data = json.loads(report.read_text())
    except (OSError, ValueError):
        data = {"hosts": [], "records": []}
    out = {}
    for name in hosts:
        lines = [line for line in data.get("hosts", []) if line["host"] == name]
        failing = [f"{record['user'] or '-'} item {record['item']} {record['key']}: {record['message']}"
                   for record in data.get("records", []) if record["host"] == name and record["status"] == "fail"]
        failing += [line["problem"] for line in lines if line.get("problem")]
        if not lines:
            failing.append("no verify result (the run did not reach this host's checklist)")
        status = "pass" if lines and all(line["status"] == "pass" for line in lines) else "fail"
        seconds = max((line.get("seconds") or 0 for line in lines), default=None)
        out[name] = {"status": status, "failing": failing, "seconds": seconds}
    return out


def _change_text(before: dict[str, Any], after: dict[str, Any]) -> str:
    parts = [f"{label} {before.get(key) or '?'} -> {after.get(key) or '?'}"
             for label, key in (("Ollama", "ollama_version"), ("Claude Code", "claude_code_version"))
             if before.get(key) != after.get(key)]
    return ", ".join(parts) or "pins unchanged (deploy re-run)"


def _pins_text(pins: dict[str, Any]) -> str:
    return f"Ollama {pins.get('ollama_version') or '?'}, Claude Code {pins.get('claude_code_version') or '?'}"


class Rollout:
    def __init__(self, inventory: str, deploy: str, waves: str, budget: int, data: dict[str, Any],
                 report_dir: Path, out=sys.stdout):
        self.inventory, self.deploy, self.spec, self.budget = inventory, deploy, waves, budget
        self.data, self.report_dir, self.out = data, report_dir, out
        self.progress_path = report_dir / PROGRESS_NAME
        self.key = hashlib.sha256(json.dumps([inventory, deploy, waves, budget, data], sort_keys=True)
                                  .encode()).hexdigest()[:16]

    def say(self, text: str) -> None:
        print(text, file=self.out, flush=True)

    # --- progress -----------------------------------------------------------------------------------------
    def load(self) -> dict[str, Any] | None:
        try:
            progress = json.loads(self.progress_path.read_text())
        except (OSError, ValueError):
            return None
        if progress.get("key") != self.key or progress.get("outcome") in ("completed", "stopped"):
            return None
        return progress

    def save(self, progress: dict[str, Any]) -> None:
        self.report_dir.mkdir(parents=True, exist_ok=True)
        temporary = self.progress_path.with_suffix(".tmp")
        temporary.write_text(json.dumps(progress, indent=2) + "\n")
        temporary.replace(self.progress_path)

    def start(self) -> dict[str, Any]:
        status = collect(self.inventory, data=self.data, check_offers=False)
        hosts = [entry["host"] for entry in status["hosts"]]
        if not hosts:
            raise RolloutError(f"{self.inventory}: no hosts")
        waves = plan_waves(hosts, self.spec)
        return {
            "key": self.key, "inventory": self.inventory, "deploy": self.deploy, "spec": self.spec,
            "budget": self.budget, "data": self.data,
            "started": datetime.now(UTC).isoformat(timespec="seconds"), "outcome": "running",
            "before": {entry["host"]: pins_before(entry) for entry in status["hosts"]},
            "target": {entry["host"]: {key: (entry.get("pins") or {}).get(key) for key in PIN_KEYS}
                       for entry in status["hosts"]},
            "waves": [{"number": index + 1, "hosts": wave, "decision": None} for index, wave in enumerate(waves)],
        }

    def plan_text(self, progress: dict[str, Any]) -> str:
        lines = [f"--> Rollout plan ({len(progress['waves'])} waves, failure budget {self.budget} per wave):"]
        for wave in progress["waves"]:
            done = f"  [{wave['decision']}]" if wave.get("decision") else ""
            lines.append(f"  wave {wave['number']}: {', '.join(wave['hosts'])}{done}")
            for name in wave["hosts"]:
                lines.append(f"      {name}: {_pins_text(progress['before'][name])} -> "
                             f"{_pins_text(progress['target'][name])}")
        return "\n".join(lines)

    # --- running ------------------------------------------------------------------------------------------
    def run_wave(self, progress: dict[str, Any], wave: dict[str, Any]) -> None:
        number, hosts = wave["number"], wave["hosts"]
        wave_dir = self.report_dir / "rollout" / f"wave-{number}"
        wave.update(decision="running", started=datetime.now(UTC).isoformat(timespec="seconds"))
        self.save(progress)
        self.say(f"--> wave {number}: {', '.join(hosts)}")
        run = run_pyinfra(self.inventory, self.deploy, limit=hosts, data=self.data,
                          env={REPORT_DIR_ENV: str(wave_dir)}, log=wave_dir / "pyinfra.log")
        results = wave_results(wave_dir / "verify.json", hosts)
        failed = [name for name in hosts if results[name]["status"] != "pass"]
        wave.update(seconds=round(run.seconds, 1), rc=run.rc, results=results,
                    changes={name: _change_text(progress["before"][name], progress["target"][name])
                             for name in hosts})
        for name in hosts:
            result = results[name]
            mark = "✓" if result["status"] == "pass" else "✗"
            self.say(f"    {mark} {name}" + (f"  edit test {result['seconds']:.1f} s" if result["seconds"] else "")
                     + "".join(f"\n        {problem}" for problem in result["failing"]))
        if len(failed) <= self.budget:
            wave.update(decision="continue",
                        why=f"{len(hosts) - len(failed)} of {len(hosts)} hosts verified green"
                            + (f", {len(failed)} failed within the budget of {self.budget}" if failed else ""))
            self.say(f"    continue: {wave['why']} ({run.seconds:.0f} s)")
            self.save(progress)
            return
        wave.update(decision="stop", why=f"{len(failed)} of {len(hosts)} hosts failed verify "
                                           f"({', '.join(failed)}), over the budget of {self.budget}")
        self.say(f"    stop: {wave['why']}; putting the wave's hosts back on the pins they ran before")
        self.save(progress)
        wave["rollback"] = self.roll_back(progress, wave)
        back = wave["rollback"]
        for name in hosts:
            wave["changes"][name] += ("; rolled back to the pins before"
                                      if back["results"].get(name, {}).get("status") == "pass"
                                      else ", rollback did not verify green")
        self.save(progress)

    def roll_back(self, progress: dict[str, Any], wave: dict[str, Any]) -> dict[str, Any]:
        groups: dict[tuple, list[str]] = {}
        unknown = []
        for name in wave["hosts"]:
            before = progress["before"][name]
            if not all(before.get(key) for key in PIN_KEYS):
                unknown.append(name)
                continue
            groups.setdefault(tuple(before[key] for key in PIN_KEYS), []).append(name)
        results: dict[str, Any] = {name: {"status": "fail", "seconds": None,
                                          "failing": ["no pins recorded from before the rollout"]}
                                   for name in unknown}
        seconds = 0.0
        for index, (pins, hosts) in enumerate(sorted(groups.items())):
            back_dir = self.report_dir / "rollout" / f"wave-{wave['number']}-rollback-{index + 1}"
            data = {**self.data, **dict(zip(PIN_KEYS, pins))}
            run = run_pyinfra(self.inventory, self.deploy, limit=hosts, data=data,
                              env={REPORT_DIR_ENV: str(back_dir)}, log=back_dir / "pyinfra.log")
            seconds += run.seconds
            results.update(wave_results(back_dir / "verify.json", hosts))
        green = all(result["status"] == "pass" for result in results.values())
        for name, result in results.items():
            self.say(f"    {'✓' if result['status'] == 'pass' else '✗'} {name} back on "
                     f"{_pins_text(progress['before'][name])}"
                     + "".join(f"\n        {problem}" for problem in result["failing"]))
        return {"results": results, "seconds": round(seconds, 1), "green": green}

    def run(self, dry: bool = False) -> int:
        progress = None if dry else self.load()
        if progress is not None:
            finished = [wave["number"] for wave in progress["waves"] if wave.get("decision") == "continue"]
            self.say(f"--> resuming the rollout started {progress['started']} ({self.progress_path}); "
                     f"finished waves skipped: {', '.join(map(str, finished)) or 'none'}")
        else:
            progress = self.start()
        self.say(self.plan_text(progress))
        if dry:
            self.say("--dry: nothing changed")
            return 0
        self.save(progress)
        for wave in progress["waves"]:
            if wave.get("decision") == "continue":
                continue
            if wave.get("decision") == "stop":  # the controller died during the switch back: finish it
                self.say(f"--> wave {wave['number']} had stopped: putting its hosts back on their pins")
                wave["rollback"] = self.roll_back(progress, wave)
                self.save(progress)
                break
            self.run_wave(progress, wave)
            if wave["decision"] == "stop":
                break
        stopped = any(wave.get("decision") == "stop" for wave in progress["waves"])
        progress["outcome"] = "stopped" if stopped else "completed"
        progress["finished"] = datetime.now(UTC).isoformat(timespec="seconds")
        self.save(progress)
        return self.report(progress)

    # --- reporting ----------------------------------------------------------------------------------------
    def report(self, progress: dict[str, Any]) -> int:
        stop = next((wave for wave in progress["waves"] if wave.get("decision") == "stop"), None)
        rolled_back_green = bool(stop and stop["rollback"]["green"])
        report = {**progress, "outcome": progress["outcome"],
                  "summary": ("completed: every wave verified green" if stop is None else
                              f"stopped at wave {stop['number']}: {stop['why']}; rollback "
                              + ("verified green" if rolled_back_green else "NOT green")
                              + "; later waves untouched")}
        self.report_dir.mkdir(parents=True, exist_ok=True)
        (self.report_dir / JSON_NAME).write_text(json.dumps(report, indent=2) + "\n")
        ET.ElementTree(to_junit(report)).write(self.report_dir / JUNIT_NAME, encoding="utf-8",
                                               xml_declaration=True)
        paths = [self.report_dir / JSON_NAME, self.report_dir / JUNIT_NAME]
        try:
            paths += write_status(self.report_dir, collect(self.inventory, data=self.data), report)
        except (OSError, ValueError, RuntimeError) as error:  # the page is a view; the result stands
            self.say(f"    (fleet page not written: {error})")
        self.say(f"--> rollout {report['summary']}")
        self.say(f"reports: {', '.join(str(path) for path in paths)}")
        if stop is None:
            return 0
        return 1 if rolled_back_green else 2


def to_junit(report: dict[str, Any]) -> ET.Element:
    root = ET.Element("testsuites", name="ollama-claude rollout")
    for wave in report["waves"]:
        suite = ET.SubElement(root, "testsuite", name=f"wave {wave['number']}", time=str(wave.get("seconds") or 0))
        for name in wave["hosts"]:
            case = ET.SubElement(suite, "testcase", classname=f"wave{wave['number']}", name=f"{name} upgrade")
            result = (wave.get("results") or {}).get(name)
            if result is None:
                ET.SubElement(case, "skipped", message="not run: the rollout stopped before this wave")
            elif result["status"] != "pass":
                ET.SubElement(case, "failure", message="; ".join(result["failing"])[:500])
            if wave.get("rollback"):
                back = ET.SubElement(suite, "testcase", classname=f"wave{wave['number']}", name=f"{name} rollback")
                result = wave["rollback"]["results"].get(name, {"status": "fail", "failing": ["missing"]})
                if result["status"] != "pass":
                    ET.SubElement(back, "failure", message="; ".join(result["failing"])[:500])
        ET.SubElement(suite, "properties")
        cases = suite.findall("testcase")
        suite.set("tests", str(len(cases)))
        suite.set("failures", str(sum(1 for case in cases if case.find("failure") is not None)))
        suite.set("skipped", str(sum(1 for case in cases if case.find("skipped") is not None)))
        props = suite.find("properties")
        ET.SubElement(props, "property", name="decision", value=str(wave.get("decision")))
        ET.SubElement(props, "property", name="why", value=str(wave.get("why") or ""))
    return root


def run_rollout(args: Any) -> int:
    try:
        return Rollout(args.inventory, args.deploy, args.waves, args.budget, args.data,
                       Path(args.report_dir)).run(dry=args.dry)
    except RolloutError as error:
        print(f"rollout: {error}", file=sys.stderr)
        return 2
