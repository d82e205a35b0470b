"""A host that dies during a pyinfra run fails that run for that host only, and `down` still removes everything."""

import shutil
import subprocess
import threading
import time
from pathlib import Path

from ollama_claude.lab.fleet import numbered_hosts


def wait_for(condition, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}")
        time.sleep(0.2)


def output(argv: list[str]) -> str:
    return subprocess.run(argv, capture_output=True, text=True, check=False).stdout


def test_host_killed_mid_run_fails_only_that_host_and_down_leaves_nothing(spare_lab, pyinfra_run):
    state = spare_lab.require_state()
    finished = {}
    run = threading.Thread(
        target=lambda: finished.update(run=pyinfra_run("tests/e2e/deploys/slow.py", target=spare_lab))
    )
    run.start()
    wait_for(
        lambda: spare_lab.ssh("gpu2", "test -e /tmp/slow-deploy-started").returncode == 0,
        60,
        "the slow deploy to start on gpu2",
    )
    spare_lab.kill_host("gpu2")
    run.join(timeout=120)

    result = finished["run"]
    assert result.rc != 0, result
    assert "[gpu2] Error" in result.output, result
    assert result.results()["Long step"] == {"hosts": 2, "success": 1, "error": 1, "no_change": 0}, result
    assert spare_lab.ssh("gpu1", "test -e /tmp/slow-deploy-finished").returncode == 0, result
    assert spare_lab.ssh("gpu2", "true", timeout=5).returncode != 0

    spare_lab.down()
    prefix = f"oc-{state.name}"
    assert prefix not in output(["ip", "netns", "list"])
    assert prefix not in output(["ip", "-br", "link"])
    assert state.dir not in Path("/proc/self/mountinfo").read_text()
    assert state.dir not in output(["ps", "-eo", "args"])
    assert not list(Path("/run/systemd/nspawn/propagate").glob(f"{prefix}-*"))
    assert not Path(state.dir).exists()
    if shutil.which("machinectl"):
        assert prefix not in output(["machinectl", "list", "--no-legend"])


def test_up_after_a_crashed_lab_cleans_it_and_boots_fresh_hosts(spare_lab):
    crashed = spare_lab.require_state()
    for host in crashed.hosts:
        spare_lab.kill_host(host.name)
    spare_lab.up(numbered_hosts(2), log=lambda _: None)
    assert [spare_lab.ssh(h.name, "hostname", check=True).stdout.strip() for h in crashed.hosts] == [
        "gpu1",
        "gpu2",
    ]


def test_restarted_host_keeps_its_disk(spare_lab):
    spare_lab.ssh("gpu1", "echo kept > /root/marker", check=True)
    spare_lab.kill_host("gpu1")
    spare_lab.restart_host("gpu1")
    assert spare_lab.ssh("gpu1", "cat /root/marker", check=True).stdout == "kept\n"
