"""The rollout controller against a fake pyinfra: waves, the budget, the switch back, resume, reports."""

from __future__ import annotations

import io
import json
from pathlib import Path

import pytest

from ollama_claude.rollout import rollout as module
from ollama_claude.rollout.runner import REPORT_DIR_ENV, Run

OLD = {"ollama_version": "0.18.0", "claude_code_version": "2.1.197"}
NEW = {"ollama_version": "0.32.15", "claude_code_version": "2.1.332"}
HOSTS = ["gpu1", "gpu2", "gpu3", "gpu4"]


class FakeFleet:
    """Hosts with pins; a deploy run sets the pins (--data or NEW) and verify fails where the release is bad."""

    def __init__(self, bad: set[str] = frozenset(), crash_on: int | None = None):
        self.pins = dict.fromkeys(HOSTS, OLD)
        self.bad, self.runs, self.crash_on = bad, [], crash_on

    def run_pyinfra(self, inventory, deploy, limit=None, data=None, env=None, log=None, dry=False):
        self.runs.append((list(limit), dict(data or {})))
        if self.crash_on is not None and len(self.runs) == self.crash_on:
            raise KeyboardInterrupt  # the controller dies in the middle of this run
        pins = {**NEW, **{key: value for key, value in (data or {}).items() if key in NEW}}
        lines, records = [], []
        for name in limit:
            self.pins[name] = pins
            failed = pins["ollama_version"] in self.bad
            lines.append({"host": name, "user": "dev", "status": "fail" if failed else "pass", "seconds": 3.0,
                          "problem": None})
            if failed:
                records.append({"host": name, "user": "dev", "item": 7, "key": "edit_test", "status": "fail",
                                "message": "API Error"})
        report = Path(env[REPORT_DIR_ENV])
        report.mkdir(parents=True, exist_ok=True)
        (report / "verify.json").write_text(json.dumps({"hosts": lines, "records": records}))
        return Run([], 1 if records else 0, "", 1.0)

    def collect(self, inventory, data=None, check_offers=True):
        target = {**NEW, **{key: value for key, value in (data or {}).items() if key in NEW}}
        return {"inventory": inventory, "time": "t", "offers": {}, "hosts": [
            {"host": name, "reachable": True, "running": dict(self.pins[name]), "installed": {}, "recorded": None,
             "pins": target, "models": [], "last_verify": None} for name in HOSTS]}


@pytest.fixture
def fleet(monkeypatch):
    def make(**kwargs):
        fake = FakeFleet(**kwargs)
        monkeypatch.setattr(module, "run_pyinfra", fake.run_pyinfra)
        monkeypatch.setattr(module, "collect", fake.collect)
        return fake
    return make


def rollout(tmp_path, data=None, waves="1,50%,100%", budget=0):
    return module.Rollout("inv.py", "deploy.py", waves, budget, data or {}, tmp_path, out=io.StringIO())


def test_green_waves_in_order(fleet, tmp_path):
    fake = fleet()
    assert rollout(tmp_path).run() == 0
    assert [limit for limit, _ in fake.runs] == [["gpu1"], ["gpu2"], ["gpu3", "gpu4"]]
    report = json.loads((tmp_path / "rollout.json").read_text())
    assert [wave["decision"] for wave in report["waves"]] == ["continue"] * 3
    assert fake.pins == dict.fromkeys(HOSTS, NEW)
    assert (tmp_path / "fleet.html").is_file() and (tmp_path / "rollout-junit.xml").is_file()


def test_bad_canary_stops_switches_back_and_leaves_the_rest(fleet, tmp_path):
    fake = fleet(bad={"0.33.0"})
    assert rollout(tmp_path, data={"ollama_version": "0.33.0"}).run() == 1
    assert fake.runs == [(["gpu1"], {"ollama_version": "0.33.0"}), (["gpu1"], OLD)]
    assert fake.pins == dict.fromkeys(HOSTS, OLD)
    report = json.loads((tmp_path / "rollout.json").read_text())
    assert report["waves"][0]["decision"] == "stop" and report["waves"][0]["rollback"]["green"]
    assert "gpu1" in report["waves"][0]["why"] and report["outcome"] == "stopped"
    junit = (tmp_path / "rollout-junit.xml").read_text()
    assert 'name="gpu1 rollback"' in junit and junit.count("not run") == 3


def test_the_budget_lets_a_wave_with_few_failures_continue(fleet, tmp_path):
    fake = fleet(bad={"0.32.15"})
    assert rollout(tmp_path, waves="2,100%", budget=2).run() == 0
    assert len(fake.runs) == 2
    fresh = fleet(bad={"0.32.15"})
    assert rollout(tmp_path / "strict", waves="2,100%", budget=1).run() == 1
    assert fresh.runs[1] == (["gpu1", "gpu2"], OLD) and fresh.pins["gpu3"] == OLD


def test_a_rollback_that_does_not_verify_exits_2(fleet, tmp_path):
    fleet(bad={"0.33.0", "0.18.0"})
    assert rollout(tmp_path, data={"ollama_version": "0.33.0"}).run() == 2


def test_a_killed_controller_resumes_where_it_was(fleet, tmp_path):
    fake = fleet(crash_on=2)
    with pytest.raises(KeyboardInterrupt):
        rollout(tmp_path).run()
    progress = json.loads((tmp_path / "rollout-progress.json").read_text())
    assert [wave["decision"] for wave in progress["waves"]] == ["continue", "running", None]
    assert progress["before"]["gpu2"] == OLD
    fake.crash_on = None
    again = rollout(tmp_path)
    assert again.run() == 0
    assert [limit for limit, _ in fake.runs] == [["gpu1"], ["gpu2"], ["gpu2"], ["gpu3", "gpu4"]]
    assert "finished waves skipped: 1" in again.out.getvalue()


def test_killed_during_the_switch_back_finishes_it_on_resume(fleet, tmp_path):
    fake = fleet(bad={"0.33.0"}, crash_on=2)
    with pytest.raises(KeyboardInterrupt):
        rollout(tmp_path, data={"ollama_version": "0.33.0"}).run()
    fake.crash_on = None
    assert rollout(tmp_path, data={"ollama_version": "0.33.0"}).run() == 1
    assert fake.runs[2] == (["gpu1"], {"ollama_version": "0.18.0", "claude_code_version": "2.1.197"})
    assert len(fake.runs) == 3 and fake.pins["gpu1"] == OLD


def test_dry_runs_nothing_and_writes_no_progress(fleet, tmp_path):
    fake = fleet()
    plan = rollout(tmp_path)
    assert plan.run(dry=True) == 0
    assert fake.runs == [] and not (tmp_path / "rollout-progress.json").exists()
    assert "wave 1: gpu1" in plan.out.getvalue() and "0.18.0" in plan.out.getvalue()
