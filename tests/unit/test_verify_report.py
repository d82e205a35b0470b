"""The fleet report: terminal lines, JSON records, JUnit XML read back with a real parser, missing hosts."""

from __future__ import annotations

import json
from types import SimpleNamespace

from junitparser import Error, Failure, JUnitXml, Skipped

from ollama_claude.verify import report
from ollama_claude.verify.checks import ItemResult, failed, passed


def items(**overrides: ItemResult) -> list[ItemResult]:
    results = {number: passed(number, f"item {number} fine") for number in range(1, 10)}
    results.update({int(key[1:]): value for key, value in overrides.items()})
    return [results[number] for number in sorted(results)]


GREEN = report.Line("h1", "dev", items(), "local", "glm-4.7-flash:latest", 2.5)
RED = report.Line("h2", "dev", items(i2=failed(2, "service OLLAMA_CONTEXT_LENGTH=4096 < 64000", "set it"),
                                     i7=ItemResult(7, "skip", "no link could be tried", "fix the items")),
                  None, None, 1.0)


def fake_state(names, activated, failed_names=(), executing=True, limit=None):
    hosts = {name: SimpleNamespace(name=name) for name in names}
    return SimpleNamespace(inventory=list(hosts.values()), is_executing=executing,
                           activated_hosts=[hosts[name] for name in activated],
                           failed_hosts=[hosts[name] for name in failed_names],
                           limit_hosts=None if limit is None else [hosts[name] for name in limit])


def test_terminal_has_one_line_per_host_with_marks_model_timing_and_summary():
    text = report.render_terminal([GREEN, RED])
    lines = text.splitlines()
    assert "h1" in lines[1] and "1✓ 2✓ 3✓ 4✓ 5✓ 6✓ 7✓ 8✓ 9✓" in lines[1]
    assert "local glm-4.7-flash:latest" in lines[1] and "2.5 s" in lines[1]
    assert "2✗" in lines[2] and "7-" in lines[2] and "no working model" in lines[2]
    assert "2 context: service OLLAMA_CONTEXT_LENGTH=4096 < 64000 -> fix: set it" in text
    assert lines[-1].startswith("verify: 1 passed, 1 failed, 0 unreachable")


def test_json_has_one_record_per_host_user_item(tmp_path):
    json_path, _ = report.write_files([GREEN, RED], tmp_path)
    data = json.loads(json_path.read_text())
    assert len(data["records"]) == 18 and data["failed"] is True
    record = next(r for r in data["records"] if r["host"] == "h2" and r["item"] == 2)
    assert record == {"host": "h2", "user": "dev", "item": 2, "key": "context",
                      "title": "Context length in effect >= 64000", "status": "fail",
                      "message": "service OLLAMA_CONTEXT_LENGTH=4096 < 64000", "fix": "set it"}
    assert data["hosts"][0]["model"] == "glm-4.7-flash:latest"


def test_junit_parses_with_one_testcase_per_item(tmp_path):
    _, junit_path = report.write_files([GREEN, RED], tmp_path)
    xml = JUnitXml.fromfile(str(junit_path))
    suites = {suite.name: suite for suite in xml}
    assert set(suites) == {"h1/dev", "h2/dev"}
    assert suites["h1/dev"].tests == 9 and suites["h1/dev"].failures == 0
    cases = {case.name: case for case in suites["h2/dev"]}
    assert isinstance(cases["2 context"].result[0], Failure)
    assert cases["2 context"].result[0].message == "service OLLAMA_CONTEXT_LENGTH=4096 < 64000"
    assert isinstance(cases["7 edit_test"].result[0], Skipped)
    assert cases["1 ollama"].is_passed


def test_unreachable_and_not_verified_hosts_are_reported(tmp_path):
    collected = report.FleetReport()
    collected.record("h1", [GREEN], executing=True)
    collected.record("h3", [GREEN], executing=False)  # prepare-time result, then failed earlier in the deploy
    state = fake_state(["h1", "h2", "h3"], activated=["h1", "h3"], failed_names=["h2", "h3"])
    lines = collected.lines(state)
    assert [line.status for line in lines] == ["pass", "unreachable", "not verified"]
    _, junit_path = report.write_files(lines, tmp_path)
    cases = [case for suite in JUnitXml.fromfile(str(junit_path)) for case in suite]
    assert any(isinstance(r, Error) and r.message.startswith("unreachable") for c in cases for r in c.result)
    assert "1 passed, 0 failed, 1 unreachable, 1 not verified, of 3 hosts" in report.summary(lines)


def test_hosts_left_out_by_limit_are_not_reported():
    """`--limit h1`: pyinfra never connects to h2, which is not part of the run, not unreachable."""
    collected = report.FleetReport()
    collected.record("h1", [GREEN], executing=True)
    lines = collected.lines(fake_state(["h1", "h2", "h3"], activated=["h1"], limit=["h1", "h3"]))
    assert [(line.host, line.status) for line in lines] == [("h1", "pass"), ("h3", "unreachable")]
    assert "1 passed, 0 failed, 1 unreachable, 0 not verified, of 2 hosts" in report.summary(lines)


def test_dry_run_keeps_prepare_time_results():
    collected = report.FleetReport()
    collected.record("h1", [GREEN], executing=False)
    assert collected.lines(fake_state(["h1"], ["h1"], executing=False)) == [GREEN]


def test_finish_writes_to_the_env_override(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv(report.REPORT_DIR_ENV, str(tmp_path / "ci"))
    state = fake_state(["h1"], ["h1"])
    report.fleet_report(state).record("h1", [GREEN], executing=True)
    paths = report.finish(state, "reports")
    assert paths == [tmp_path / "ci" / "verify.json", tmp_path / "ci" / "verify-junit.xml"]
    assert "verify: 1 passed" in capsys.readouterr().out
