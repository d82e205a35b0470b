"""
Faults injected on the lab fleet during real `deploys/ollama_claude.py` runs, each asserting its outcome and that
nothing was lost: every model listed before is still listed with the same digest, and the keys the user put in
settings.json are still there.

Covered elsewhere, not repeated here:
- a corrupt release archive aborts that host only and changes nothing (tests/e2e/test_ollama_install.py);
- a broken or user-edited settings.json (tests/e2e/test_claude_code.py: the user's keys survive every run);
- a host killed during an arbitrary operation, and `lab down` afterwards (tests/e2e/test_lab_crash.py).

The tests run in order on the session lab and build on each other: the first one provisions both hosts over a
lossy link, later ones add models and upgrade Ollama. Each one undoes its injection (qdisc, mount, stopped
mirror, killed host) even when it fails.
"""

from __future__ import annotations

import contextlib
import json
import subprocess
import time

import pytest
from conftest import PyinfraRun
from standin_registry import listed

from ollama_claude.lab.release_mirror import serve_release_mirror

DEPLOY = "deploys/ollama_claude.py"
HOSTS = ("gpu1", "gpu2")
URL = "http://127.0.0.1:11434"
STORE = "/usr/share/ollama/.ollama/models"
OLD, NEW = "0.15.2", "0.16.3"
SETTINGS_JSON = "/home/dev/.claude/settings.json"
#: What the user wrote into settings.json before any run: none of it is a key ollama-claude manages.
USER_SETTINGS = {"theme": "dark", "includeCoAuthoredBy": False, "env": {"MY_TOOL_HOME": "/opt/my-tool"}}
#: Pulls take a few seconds (the stand-in sleeps per blob), so a pull can be caught and broken midway.
#: Kept the same in every run, so the server's drop-in (and so the server) never changes between runs.
SERVER_ENV = {"OLLAMA_STANDIN_PULL_DELAY": "2"}

pytestmark = pytest.mark.lab


def data(*models: str, version: str = NEW, **extra) -> dict:
    return {"ollama_environment": SERVER_ENV, "ollama_models": ["glm-4.7-flash", *models],
            "ollama_version": version, **extra}


def on(lab, host: str, command: str) -> str:
    return lab.ssh(host, command, check=True).stdout.strip()


def models_on(lab, host: str) -> dict[str, str]:
    return listed(URL, run=lambda command: on(lab, host, command))


def version_on(lab, host: str) -> str | None:
    answer = lab.ssh(host, f"curl -fsS -m 3 {URL}/api/version", timeout=10)
    return json.loads(answer.stdout)["version"] if answer.returncode == 0 else None


def wait_for(condition, timeout: float, what: str, every: float = 0.3):
    deadline = time.monotonic() + timeout
    while not (result := condition()):
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}")
        time.sleep(every)
    return result


def pulling(lab, host: str) -> bool:
    """A blob is being written into the store: the server is in the middle of a pull."""
    return lab.ssh(host, f"ls {STORE}/blobs 2>/dev/null | grep -q -- -partial", timeout=10).returncode == 0


def snapshot(lab) -> dict[str, dict[str, str]]:
    return {host: models_on(lab, host) for host in HOSTS}


def assert_nothing_lost(lab, before: dict[str, dict[str, str]]) -> None:
    """Every model listed before is listed with the same digest, and the user's settings.json keys are intact."""
    for host in HOSTS:
        now = models_on(lab, host)
        assert {name: now.get(name) for name in before[host]} == before[host], host
        user_settings = json.loads(on(lab, host, f"cat {SETTINGS_JSON}"))
        assert {key: user_settings.get(key) for key in USER_SETTINGS if key != "env"} == {
            key: value for key, value in USER_SETTINGS.items() if key != "env"}, host
        assert user_settings["env"]["MY_TOOL_HOME"] == USER_SETTINGS["env"]["MY_TOOL_HOME"], host


def assert_green(run: PyinfraRun) -> None:
    assert run.rc == 0 and run.errors == 0, run
    assert "Checklist" in run.output, run


NFT_LOSS = """table inet ollama_claude_fault {{
  chain input {{ type filter hook input priority 0; numgen random mod 100 < {percent} drop; }}
  chain output {{ type filter hook output priority 0; numgen random mod 100 < {percent} drop; }}
}}"""


def netem_available() -> bool:
    """sch_netem is a kernel option some kernels (this VM's among them) are built without."""
    probe = subprocess.run(["tc", "qdisc", "add", "dev", "lo", "root", "netem", "delay", "1ms"], check=False,
                           capture_output=True, text=True)
    if probe.returncode == 0:
        subprocess.run(["tc", "qdisc", "del", "dev", "lo", "root"], check=False)
    return "unknown" not in probe.stderr


@contextlib.contextmanager
def lossy_link(lab, host: str, percent: int = 5, delay: str = "80ms"):
    """
    Loss and delay on the host's link, inside its own network namespace only. With sch_netem: netem on eth0
    (delay + loss, egress) and nftables loss on ingress. Without it: nftables drops `percent`% of packets each
    way and no delay can be added (yields which one it applied).
    """
    netns = ["ip", "netns", "exec", lab.require_state().host(host).netns]
    subprocess.run([*netns, "nft", "-f", "-"], input=NFT_LOSS.format(percent=percent), text=True, check=True)
    delayed = netem_available()
    if delayed:
        subprocess.run([*netns, "tc", "qdisc", "replace", "dev", "eth0", "root", "netem", "delay", delay],
                       check=True)
    try:
        yield f"{percent}% loss each way" + (f", {delay} delay" if delayed else " (no sch_netem: no delay)")
    finally:
        subprocess.run([*netns, "nft", "delete", "table", "inet", "ollama_claude_fault"], check=False)
        if delayed:
            subprocess.run([*netns, "tc", "qdisc", "del", "dev", "eth0", "root"], check=False)


@pytest.fixture(scope="module")
def fleet(lab):
    """The session lab with the release mirror served on its bridge, and the user's own settings.json on it."""
    serve_release_mirror(lab)
    for host in HOSTS:
        on(lab, host, f"install -d -o dev -g dev /home/dev/.claude && printf '%s' '{json.dumps(USER_SETTINGS)}' "
                      f"> {SETTINGS_JSON} && chown dev:dev {SETTINGS_JSON}")
    return lab


@pytest.fixture(scope="module")
def provisioned(fleet, pyinfra_run):
    """The first deploy, with 5% loss and 80 ms delay on gpu1's link: downloads, pulls, the edit test."""
    with lossy_link(fleet, "gpu1") as applied:
        started = time.monotonic()
        run = pyinfra_run(DEPLOY, data=data(version=OLD))
        took = time.monotonic() - started
    return run, took, applied


def test_lossy_link_run_completes_and_verifies_green(fleet, provisioned):
    run, took, applied = provisioned
    assert_green(run)
    print(f"\nlossy link ({applied}): first deploy finished green in {took:.0f}s")
    for host in HOSTS:
        assert version_on(fleet, host) == OLD
        assert "glm-4.7-flash:latest" in models_on(fleet, host)
    assert_nothing_lost(fleet, {host: {} for host in HOSTS})
    netns = fleet.require_state().host("gpu1").netns
    assert "ollama_claude_fault" not in subprocess.run(["ip", "netns", "exec", netns, "nft", "list", "tables"],
                                                       capture_output=True, text=True, check=True).stdout
