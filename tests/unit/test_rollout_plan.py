"""Wave plans, reading a wave's verify report, the rollout's resume key, and the fleet page's content."""

import json

import pytest

from ollama_claude.rollout.page import render
from ollama_claude.rollout.rollout import Rollout, RolloutError, pins_before, plan_waves, wave_results

HOSTS = [f"gpu{n}" for n in range(1, 11)]


def test_default_waves_canary_quarter_rest():
    assert plan_waves(HOSTS, "1,25%,100%") == [["gpu1"], HOSTS[1:3], HOSTS[3:]]


def test_sizes_that_add_nothing_are_skipped_and_leftovers_get_a_last_wave():
    assert plan_waves(HOSTS[:3], "1,25%,100%") == [["gpu1"], ["gpu2", "gpu3"]]
    assert plan_waves(HOSTS[:3], "1,2") == [["gpu1"], ["gpu2"], ["gpu3"]]


@pytest.mark.parametrize("spec", ["x", "0", "-1,2", "10%x"])
def test_bad_wave_specs_are_refused(spec):
    with pytest.raises(RolloutError):
        plan_waves(HOSTS, spec)


def test_wave_results_from_verify_json(tmp_path):
    report = {"hosts": [{"host": "gpu1", "user": "dev", "status": "pass", "seconds": 12.5, "problem": None},
                        {"host": "gpu2", "user": "dev", "status": "fail", "seconds": 30.0, "problem": None}],
              "records": [{"host": "gpu2", "user": "dev", "item": 7, "key": "edit_test", "status": "fail",
                           "message": "API Error in the transcript"}]}
    (tmp_path / "verify.json").write_text(json.dumps(report))
    results = wave_results(tmp_path / "verify.json", ["gpu1", "gpu2", "gpu3"])
    assert results["gpu1"] == {"status": "pass", "failing": [], "seconds": 12.5}
    assert results["gpu2"]["status"] == "fail" and "dev item 7 edit_test: API Error" in results["gpu2"]["failing"][0]
    assert results["gpu3"]["status"] == "fail" and "no verify result" in results["gpu3"]["failing"][0]


def test_pins_before_prefers_what_runs():
    entry = {"running": {"ollama_version": "0.18.0", "claude_code_version": None},
             "installed": {"ollama_version": "0.18.0", "claude_code_version": "2.1.332"},
             "recorded": {"current": {"ollama_version": "0.16.3", "claude_code_version": "2.1.1"}}}
    assert pins_before(entry) == {"ollama_version": "0.18.0", "claude_code_version": "2.1.332"}


def test_progress_is_resumed_only_for_the_same_command(tmp_path):
    first = Rollout("inv.py", "deploy.py", "1,100%", 0, {}, tmp_path)
    first.save({"key": first.key, "outcome": "running", "waves": []})
    assert first.load() is not None
    assert Rollout("inv.py", "deploy.py", "1,100%", 0, {"ollama_version": "0.33.0"}, tmp_path).load() is None
    first.save({"key": first.key, "outcome": "completed", "waves": []})
    assert first.load() is None


def test_page_shows_waves_versions_items_and_changes():
    status = {"inventory": "inv.py", "time": "t", "hosts": [
        {"host": "gpu1", "reachable": True, "running": {"ollama_version": "0.18.0", "claude_code_version": "2.1.332"},
         "pins": {"ollama_version": "0.18.0", "claude_code_version": "2.1.332"},
         "recorded": {"previous": {"ollama_version": "0.33.0"}}, "models": ["glm-4.7-flash:latest"],
         "last_verify": {"status": "pass", "time": "2026-12-01T15:00:00+00:00", "seconds": 21.3,
                         "items": [{"number": 7, "key": "edit_test", "status": "pass", "user": "dev"}]}},
        {"host": "gpu2", "reachable": False}]}
    rollout = {"outcome": "stopped", "waves": [
        {"number": 1, "hosts": ["gpu1"], "decision": "stop", "why": "1 of 1 hosts failed verify", "seconds": 80,
         "changes": {"gpu1": "0.18.0 -> 0.33.0, rolled back to 0.18.0"}},
        {"number": 2, "hosts": ["gpu2"], "decision": None}]}
    page = render(status, rollout)
    assert "<script" not in page
    assert "was 0.33.0" in page and "7✓" in page and "21.3 s" in page and "rolled back to 0.18.0" in page
    assert "unreachable" in page and "not run" in page and "2026-12-01 15:00:00 UTC" in page


def test_status_page_says_what_the_hosts_record_changed():
    status = {"hosts": [{"host": "gpu1", "reachable": True, "running": {}, "pins": {}, "models": [],
                         "recorded": {"current": {"ollama_version": "0.32.15", "claude_code_version": "2.1.332",
                                                  "since": "2026-12-01T15:00:00+00:00"},
                                      "previous": {"ollama_version": "0.18.0", "claude_code_version": "2.1.332"}}}]}
    assert "Ollama 0.18.0 -&gt; 0.32.15 (2026-12-01 15:00:00 UTC)" in render(status)
