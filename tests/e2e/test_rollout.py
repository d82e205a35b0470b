"""
Issue 18 on the lab (3 hosts, or OLLAMA_CLAUDE_ROLLOUT_HOSTS; real SSH, real Claude Code, the stand-in packaged per release):

- `rollout --dry` prints the wave plan and changes nothing;
- a bad release (0.33.0 that brings back the pre-0.18.0 thinking -> tool_use stream): the canary fails the real
  edit test, the rollout stops, the canary is switched back to the pins it ran before and verifies green, the
  other hosts are never touched (their Ollama service PIDs unchanged); exit non-zero;
- 0.18.0 -> 0.32.15 and Claude Code 2.1.197 -> 2.1.332 in waves (1, 2, 3): the controller is killed during wave 2, every host still answers on the
  old or the new pins, `status` shows each host's pins, and the same command re-run skips wave 1 and finishes green.
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from browser import CHROMIUM, look_at
from pyinfra_cli_run import REPO
from release_under_test import publish_release

from ollama_claude.lab.release_mirror import mirror_root, serve_release_mirror
from ollama_claude.lab.releases import claude_code_tarball
from ollama_claude.lab.standin_server import baked_standin
from ollama_claude.mirror.layout import ollama_release_dir, publish_npm_package
from ollama_claude.mirror.server import requests
from ollama_claude.rollout.hoststate import STATE_PATH, VERIFY_PATH
from ollama_claude.settings import MIN_OLLAMA_VERSION, Settings

FLOOR, PIN = str(MIN_OLLAMA_VERSION), Settings.model_fields["ollama_version"].default
CLAUDE = Settings.model_fields["claude_code_version"].default
OLD_CLAUDE = "2.1.197"  # the previous pin, from the cache like the current one
FLOOR_PINS = {"ollama_version": FLOOR, "claude_code_version": OLD_CLAUDE}
BAD = "0.33.0"
#: 3 hosts by default (time); the issue's 6 with OLLAMA_CLAUDE_ROLLOUT_HOSTS=6. Waves 1,2,100%: gpu1, gpu2, the rest.
HOSTS = tuple(f"gpu{n}" for n in range(1, int(os.environ.get("OLLAMA_CLAUDE_ROLLOUT_HOSTS", "3")) + 1))
REST = HOSTS[2:]
CLI = Path(sys.executable).parent / "ollama-claude"
pytestmark = pytest.mark.lab


@pytest.fixture(scope="module")
def lab(request):
    """This module's own 3-host lab (overrides the 2-host default), from the shared lab helper."""
    shared = request.config.pluginmanager.get_plugin(str(Path(__file__).resolve().parents[1] / "conftest.py"))
    yield from shared.disposable_lab(shared.TEST_LAB, shared.TEST_SUBNET, len(HOSTS))


def bad_release(root: Path, version: str = BAD) -> None:
    """
    A test-only release: the stand-in baked as ``version``, except that its release regressed the fix of
    ollama/ollama f3f31a8 (the BEHAVIOURS row moved past it), so a thinking model's tool call stream is the
    pre-0.18.0 one. It installs, starts and reports its version like any release; only tool calls break.
    """
    source, count = re.subn(r'"stream_closes_thinking_before_tool_use": "[^"]+"',
                            '"stream_closes_thinking_before_tool_use": "99.0.0"', baked_standin(version))
    assert count == 1
    publish_release(root, version, source.encode())


def release_listing(root: Path) -> None:
    """The release directory's listing, as a static server's autoindex shows it (status reads it)."""
    download = ollama_release_dir(root, "0").parent
    names = sorted(path.name for path in download.iterdir() if path.is_dir())
    (download / "index.html").write_text("<html><body>" + "".join(f'<a href="{n}/">{n}/</a>\n' for n in names)
                                         + "</body></html>\n")


@pytest.fixture(scope="module")
def fleet(lab, pyinfra_run):
    """Every host deployed on the floor (0.18.0) and Claude Code 2.1.197, with a bad 0.33.0 in the mirror."""
    serve_release_mirror(lab)
    publish_npm_package(mirror_root(lab), claude_code_tarball(OLD_CLAUDE, "linux-x64"))
    bad_release(mirror_root(lab))
    release_listing(mirror_root(lab))
    started = time.monotonic()
    run = pyinfra_run("deploys/ollama_claude.py", data=FLOOR_PINS)
    print(f"initial deploy on the floor: {time.monotonic() - started:.1f} s")
    assert run.rc == 0, run
    return lab


def on(lab, host: str, command: str) -> str:
    return lab.ssh(host, command, check=True, timeout=120).stdout.strip()


def version(lab, host: str) -> str | None:
    done = lab.ssh(host, "curl -fsS --max-time 5 127.0.0.1:11434/api/version", timeout=60)
    return json.loads(done.stdout)["version"] if done.returncode == 0 else None


def claude_version(lab, host: str) -> str:
    return on(lab, host, "claude --version").split()[0]


def pid(lab, host: str) -> str:
    return on(lab, host, "systemctl show -p MainPID --value ollama.service")


def state(lab, host: str) -> dict:
    return json.loads(on(lab, host, f"cat {STATE_PATH}"))


def cli(lab, *args: str, timeout: float = 1800) -> subprocess.CompletedProcess:
    started = time.monotonic()
    done = subprocess.run([str(CLI), *args], cwd=REPO, env=lab.pyinfra_env(), text=True, capture_output=True,
                          timeout=timeout, check=False)
    print(f"ollama-claude {' '.join(args)}: exit {done.returncode} after {time.monotonic() - started:.1f} s\n"
          f"{done.stdout}\n{done.stderr[-3000:]}")
    return done


def test_the_deploy_records_pins_and_verify_and_a_rerun_changes_nothing(fleet, pyinfra_run):
    for host in HOSTS:
        recorded = state(fleet, host)
        assert recorded["current"]["ollama_version"] == FLOOR, recorded
        assert recorded["current"]["claude_code_version"] == OLD_CLAUDE
        verified = json.loads(on(fleet, host, f"cat {VERIFY_PATH}"))
        assert verified["status"] == "pass" and verified["ollama_version"] == FLOOR, verified
        assert [item["number"] for item in verified["items"]] == list(range(1, 10))
    before = {host: on(fleet, host, f"stat -c %Y {STATE_PATH} {VERIFY_PATH}") for host in HOSTS}
    again = pyinfra_run("deploys/ollama_claude.py", data=FLOOR_PINS)
    assert again.rc == 0 and again.changes == 0, again
    assert {host: on(fleet, host, f"stat -c %Y {STATE_PATH} {VERIFY_PATH}") for host in HOSTS} == before


def test_dry_prints_the_plan_and_changes_nothing(fleet, tmp_path):
    pids = {host: pid(fleet, host) for host in HOSTS}
    done = cli(fleet, "rollout", "inventories/lab.py", "--waves", "1,2,100%", "--dry",
               "--report-dir", str(tmp_path))
    assert done.returncode == 0
    assert "wave 1: gpu1\n" in done.stdout and "wave 2: gpu2\n" in done.stdout
    assert f"wave 3: {', '.join(REST)}\n" in done.stdout
    assert f"gpu1: Ollama {FLOOR}, Claude Code {OLD_CLAUDE} -> Ollama {PIN}, Claude Code {CLAUDE}" in done.stdout
    assert {host: pid(fleet, host) for host in HOSTS} == pids
    assert {host: version(fleet, host) for host in HOSTS} == dict.fromkeys(HOSTS, FLOOR)
    assert not (tmp_path / "rollout-progress.json").exists()


def test_status_shows_pins_models_last_verify_and_newer_releases(fleet, tmp_path):
    done = cli(fleet, "status", "inventories/lab.py", "--data", f"ollama_version={FLOOR}",
               "--data", f"claude_code_version={OLD_CLAUDE}", "--report-dir", str(tmp_path))
    assert done.returncode == 0
    status = json.loads((tmp_path / "status.json").read_text())
    for entry in status["hosts"]:
        assert entry["running"] == FLOOR_PINS, entry
        assert entry["last_verify"]["status"] == "pass" and "glm-4.7-flash:latest" in entry["models"]
        offer = status["offers"][entry["host"]]
        assert offer["ollama"] == [PIN, BAD] and offer["claude_code"] == [CLAUDE], offer
    assert f"newer Ollama: {PIN}, {BAD}" in done.stdout and f"newer Claude Code: {CLAUDE}" in done.stdout
    assert (tmp_path / "fleet.html").is_file()


def test_a_bad_release_stops_at_the_canary_which_goes_back_green(fleet, tmp_path):
    pids = {host: pid(fleet, host) for host in HOSTS}
    seen = len(requests(mirror_root(fleet)))
    done = cli(fleet, "rollout", "inventories/lab.py", "--waves", "1,2,100%", "--data", f"ollama_version={BAD}",
               "--report-dir", str(tmp_path))
    assert done.returncode == 1, done
    report = json.loads((tmp_path / "rollout.json").read_text())
    canary = report["waves"][0]
    assert canary["hosts"] == ["gpu1"] and canary["decision"] == "stop", canary
    assert canary["results"]["gpu1"]["status"] == "fail"
    assert any("item 7" in problem for problem in canary["results"]["gpu1"]["failing"]), canary
    assert canary["rollback"]["green"] is True, canary["rollback"]
    assert [wave["decision"] for wave in report["waves"][1:]] == [None, None]
    # The canary is back on the pins it ran before, green, and says so itself.
    assert version(fleet, "gpu1") == FLOOR and claude_version(fleet, "gpu1") == OLD_CLAUDE
    recorded = state(fleet, "gpu1")
    assert {key: recorded["current"][key] for key in FLOOR_PINS} == FLOOR_PINS
    assert recorded["previous"] == {"ollama_version": BAD, "claude_code_version": CLAUDE,
                                    "since": recorded["previous"]["since"]}
    assert json.loads(on(fleet, "gpu1", f"cat {VERIFY_PATH}"))["status"] == "pass"
    # Going back was a switch: nothing of the old pins was downloaded again.
    fetched = [entry["path"] for entry in requests(mirror_root(fleet))[seen:]]
    assert any(f"v{BAD}/ollama-linux-amd64.tar.zst" in path for path in fetched), fetched
    assert not [path for path in fetched if f"v{FLOOR}/" in path and path.endswith(".tar.zst")], fetched
    assert not [path for path in fetched if path.endswith(f"-{OLD_CLAUDE}.tgz")], fetched
    # The later waves' hosts were never touched.
    assert {host: pid(fleet, host) for host in HOSTS[1:]} == {host: pids[host] for host in HOSTS[1:]}
    assert {host: version(fleet, host) for host in HOSTS[1:]} == dict.fromkeys(HOSTS[1:], FLOOR)
    junit = (tmp_path / "rollout-junit.xml").read_text()
    assert 'name="gpu1 upgrade"' in junit and "<failure" in junit and "not run" in junit
    assert "stopped at wave 1" in done.stdout
    # What a person sees on the page the rollout wrote (headless chromium; screenshot kept).
    assert CHROMIUM, "chromium is not installed (make system-deps)"
    page, _, _ = look_at(tmp_path / "fleet.html", "fleet-lab-bad-release.png", tmp_path)
    assert [row[0] for row in page.rows] == list(HOSTS) and [row[1] for row in page.rows] == ["1", "2"] + ["3"] * len(REST)
    assert page.rows[0][2].startswith(f"{FLOOR} ") and page.rows[0][2].endswith(f"was {BAD}"), page.rows[0]
    assert "rolled back to" in page.rows[0][9]
    assert [row[9] for row in page.rows[1:]] == ["untouched"] * (len(HOSTS) - 1)
    assert "stop: 1 of 1 hosts failed verify (gpu1)" in page.decisions[0]
    assert page.decisions[1].endswith("not run:") and page.decisions[2].endswith("not run:")


def test_green_waves_survive_a_killed_controller_and_resume(fleet, tmp_path):
    argv = [str(CLI), "rollout", "inventories/lab.py", "--waves", "1,2,100%", "--report-dir", str(tmp_path)]
    progress_path = tmp_path / "rollout-progress.json"
    controller = subprocess.Popen(argv, cwd=REPO, env=fleet.pyinfra_env(), text=True, stdout=subprocess.PIPE,
                                  stderr=subprocess.STDOUT, start_new_session=True)
    deadline = time.monotonic() + 900
    while time.monotonic() < deadline and controller.poll() is None:
        try:
            waves = json.loads(progress_path.read_text())["waves"]
        except (OSError, ValueError):
            waves = []
        if len(waves) == 3 and waves[1]["decision"] == "running":
            time.sleep(8)  # into wave 2's deploy
            break
        time.sleep(1)
    assert controller.poll() is None, controller.stdout.read()
    os.killpg(controller.pid, signal.SIGKILL)  # the control machine dies: the controller and its pyinfra
    controller.wait()
    # Every host answers, on the old or the new pins.
    time.sleep(5)
    answers = {}
    for host in HOSTS:
        for _ in range(30):
            answers[host] = version(fleet, host)
            if answers[host]:
                break
            time.sleep(2)
    assert answers["gpu1"] == PIN and answers["gpu2"] in (FLOOR, PIN), answers
    assert all(answers[host] == FLOOR for host in REST), answers
    status = cli(fleet, "status", "inventories/lab.py", "--report-dir", str(tmp_path / "status"))
    for host in HOSTS:
        assert re.search(rf"^. {host}  running {re.escape(answers[host])} / ", status.stdout, re.MULTILINE), host
    resumed = cli(fleet, *argv[1:])
    assert resumed.returncode == 0, resumed
    assert "finished waves skipped: 1" in resumed.stdout
    report = json.loads((tmp_path / "rollout.json").read_text())
    assert [wave["decision"] for wave in report["waves"]] == ["continue"] * 3, report["waves"]
    assert all(result["status"] == "pass" for wave in report["waves"] for result in wave["results"].values())
    assert {host: version(fleet, host) for host in HOSTS} == dict.fromkeys(HOSTS, PIN)
    assert {host: claude_version(fleet, host) for host in HOSTS} == dict.fromkeys(HOSTS, CLAUDE)
    for host in HOSTS:
        recorded = state(fleet, host)
        assert recorded["current"]["ollama_version"] == PIN and recorded["current"]["claude_code_version"] == CLAUDE
        assert {key: recorded["previous"][key] for key in FLOOR_PINS} == FLOOR_PINS
    page, dom, _ = look_at(tmp_path / "fleet.html", "fleet-lab-rollout.png", tmp_path)
    assert "Rollout: completed" in dom and [row[0] for row in page.rows] == list(HOSTS)
    for row in page.rows:
        assert row[2] == f"{PIN} was {FLOOR}" and row[3] == f"{CLAUDE} was {OLD_CLAUDE}", row
        assert row[5] == "pass" and "7✓" in row[6] and row[8].endswith(" s"), row
