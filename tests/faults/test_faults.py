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
import ipaddress
import json
import re
import signal
import subprocess
import threading
import time

import pytest
from pyinfra_cli_run import PYINFRA, REPO, PyinfraRun
from standin_registry import listed

from ollama_claude.lab.release_mirror import MIRROR_SERVICE, mirror_url, serve_release_mirror

DEPLOY = "deploys/ollama_claude.py"
HOSTS = ("gpu1", "gpu2")
URL = "http://127.0.0.1:11434"
STORE = "/usr/share/ollama/.ollama/models"
SERVER_LOG = "/usr/share/ollama/.ollama/standin-requests.jsonl"
OLD, NEW = "0.18.0", "0.32.15"
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


def pulls_of(lab, host: str, model: str) -> int:
    """/api/pull requests for the model in the stand-in's request log (written when a request arrives)."""
    lines = on(lab, host, f"cat {SERVER_LOG} 2>/dev/null || true").splitlines()
    return sum(1 for record in map(json.loads, lines) if record["path"] == "/api/pull" and record["model"] == model)


def row(run: PyinfraRun, operation: str) -> dict[str, int]:
    """The results-table row of an operation (pyinfra prefixes it with its deploy's name)."""
    return next(counts for name, counts in run.results().items() if name.endswith(operation))


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


def in_background(work) -> tuple[threading.Thread, dict]:
    """Start work() in a thread; its result lands in the returned dict under "result"."""
    box: dict = {}
    thread = threading.Thread(target=lambda: box.update(result=work()), daemon=True)
    thread.start()
    return thread, box


def test_server_crash_during_a_pull_is_retried_and_lists_no_half_model(fleet, provisioned, pyinfra_run):
    before = snapshot(fleet)
    thread, box = in_background(lambda: pyinfra_run(DEPLOY, data=data("qwen3-coder", version=OLD)))
    wait_for(lambda: pulling(fleet, "gpu1"), 120, "gpu1 to start pulling qwen3-coder")
    killed = time.monotonic()
    on(fleet, "gpu1", "kill -KILL $(systemctl show -p MainPID --value ollama.service)")
    # systemd's Restart=always brings the server back; what it lists then must not include the cut pull.
    wait_for(lambda: version_on(fleet, "gpu1"), 30, "the Ollama server on gpu1 to be restarted")
    back = time.monotonic() - killed
    assert "qwen3-coder:latest" not in models_on(fleet, "gpu1")
    thread.join(300)
    run = box["result"]
    print(f"\nserver crash: back in {back:.1f}s, run finished {time.monotonic() - killed:.0f}s after the kill")
    assert_green(run)
    # The cut pull was retried (pull script: transient, with backoff) within ollama_pull_retries (3).
    assert 2 <= pulls_of(fleet, "gpu1", "qwen3-coder:latest") <= 4 and pulls_of(fleet, "gpu2", "qwen3-coder:latest") == 1
    gpu1, gpu2 = models_on(fleet, "gpu1"), models_on(fleet, "gpu2")
    assert gpu1["qwen3-coder:latest"] == gpu2["qwen3-coder:latest"]  # the same complete manifest as the unbroken host
    for name in gpu1:  # every listed model is whole: the server can describe it from its blobs
        on(fleet, "gpu1", f"curl -fsS {URL}/api/show -d '{{\"model\":\"{name}\"}}' >/dev/null")
    assert_nothing_lost(fleet, before)


def test_host_stopped_during_a_pull_fails_alone_and_converges_after_restart(fleet, provisioned, pyinfra_run):
    before = snapshot(fleet)
    thread, box = in_background(lambda: pyinfra_run(DEPLOY, data=data("qwen3-coder", "gpt-oss:20b", version=OLD)))
    try:
        wait_for(lambda: pulling(fleet, "gpu2"), 120, "gpu2 to start pulling gpt-oss:20b")
        fleet.kill_host("gpu2")
        thread.join(300)
    finally:
        fleet.restart_host("gpu2")
    run = box["result"]
    assert run.rc != 0, run
    pull = row(run, "Pull library models")
    assert pull["error"] == 1 and pull["success"] == 1, run
    assert "gpu2" in run.output.split("--> Results:")[0].split("Pull library models")[-1], run
    assert row(run, "Checklist: Ollama, models, Claude Code env, edit test")["no_change"] == 1, run
    assert "✓ gpu1 dev  1✓ 2✓ 3✓ 4✓ 5✓ 6✓ 7✓ 8✓ 9✓" in run.output, run  # the other host finished green
    started = time.monotonic()
    rerun = pyinfra_run(DEPLOY, data=data("qwen3-coder", "gpt-oss:20b", version=OLD))
    print(f"\nhost stopped: re-run after restart converged in {time.monotonic() - started:.0f}s")
    assert_green(rerun)
    assert "gpt-oss:20b" in models_on(fleet, "gpu2")
    assert_nothing_lost(fleet, before)


def start_pyinfra(lab, deploy: str, data: dict) -> subprocess.Popen:
    """The pyinfra CLI as a process of its own, so a test can interrupt it like an operator would."""
    options = [item for key, value in data.items() for item in ("--data", f"{key}={json.dumps(value)}")]
    return subprocess.Popen([str(PYINFRA), "-y", *options, "inventories/lab.py", deploy], cwd=REPO,
                            env=lab.pyinfra_env(), stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)


def test_controller_killed_during_the_upgrade_leaves_a_working_ollama(fleet, provisioned, pyinfra_run):
    before = snapshot(fleet)
    upgrade = data("qwen3-coder", "gpt-oss:20b", version=NEW)
    controller = start_pyinfra(fleet, DEPLOY, upgrade)
    seen = []
    for line in controller.stdout:
        seen.append(line)
        if "Starting operation" in line and "Restart Ollama" in line:
            break
    controller.send_signal(signal.SIGINT)
    time.sleep(0.5)
    controller.send_signal(signal.SIGKILL)
    controller.wait(10)
    killed = time.monotonic()
    assert any("Restart Ollama" in line for line in seen), "".join(seen)
    versions = {host: wait_for(lambda h=host: version_on(fleet, h), 30, f"Ollama on {host}") for host in HOSTS}
    print(f"\ncontroller killed: versions {versions}, all answering {time.monotonic() - killed:.1f}s after")
    assert set(versions.values()) <= {OLD, NEW}
    rerun = pyinfra_run(DEPLOY, data=upgrade)
    assert_green(rerun)
    assert {version_on(fleet, host) for host in HOSTS} == {NEW}
    assert_nothing_lost(fleet, before)


def test_unreachable_mirror_keeps_the_installed_version_and_names_the_url(fleet, provisioned, pyinfra_run):
    before = snapshot(fleet)
    url = mirror_url(fleet)
    fleet.stop_service(MIRROR_SERVICE)
    try:
        started = time.monotonic()
        run = pyinfra_run(DEPLOY, data=data("qwen3-coder", "gpt-oss:20b", version="0.31.1"))
        took = time.monotonic() - started
    finally:
        serve_release_mirror(fleet)
    print(f"\nmirror unreachable: both hosts failed in {took:.0f}s")
    assert run.rc != 0, run
    for host in HOSTS:
        assert f"{url}/ollama/releases/download/v0.31.1" in run.output, run
        assert version_on(fleet, host) == NEW
    assert_nothing_lost(fleet, before)


SMALL_STORE = "/srv/ollama-small-store"


def test_full_model_store_names_the_store_and_the_size_and_keeps_models(fleet, provisioned, pyinfra_run):
    """gpu1's store moves to a tmpfs holding its models, filled up to 32 kB free: the next model cannot fit."""
    before = snapshot(fleet)
    on(fleet, "gpu1", f"mkdir -p {SMALL_STORE} && mount -t tmpfs -o size=4m ollama-small {SMALL_STORE} "
                      f"&& cp -a {STORE}/. {SMALL_STORE}/ && free=$(df -Pk {SMALL_STORE} | awk 'NR == 2 {{print $4}}') "
                      f"&& dd if=/dev/zero of={SMALL_STORE}/.filler bs=1k count=$((free - 32)) status=none")
    try:
        run = pyinfra_run(DEPLOY, data=data("qwen3-coder", "gpt-oss:20b", "qwen3", ollama_models_dir=SMALL_STORE),
                          hosts=["gpu1"])
        after = models_on(fleet, "gpu1")  # the server now reads the small store
    finally:
        on(fleet, "gpu1", f"umount {SMALL_STORE}")
        restored = pyinfra_run(DEPLOY, data=data("qwen3-coder", "gpt-oss:20b"), hosts=["gpu1"])
    assert run.rc != 0, run
    assert re.search(rf"gpu1: ollama_models: pulling \S+ from {URL} failed: no space left on device in the model "
                     rf"store {SMALL_STORE} \(\d+ kB free, the model needs \d+ kB\); fix: free space there or set "
                     "ollama_models_dir to a larger disk", run.output), run
    assert {name: after.get(name) for name in before["gpu1"]} == before["gpu1"]
    assert "qwen3:latest" not in after
    assert_green(restored)
    assert_nothing_lost(fleet, before)


STALE_INVENTORY = """
import os
from ollama_claude.lab.inventory import lab_inventory

gpu = [(name, {{**data, "ssh_hostname": "{address}"}} if name == "gpu2" else data)
       for name, data in lab_inventory(os.environ["OLLAMA_CLAUDE_LAB"])["gpu"]]
"""


def test_stale_host_address_fails_fast_and_is_named(fleet, provisioned, tmp_path):
    """gpu2's inventory entry points at a lab address where no host answers any more (a host that moved)."""
    before = snapshot(fleet)
    stale = str(ipaddress.ip_network(fleet.subnet)[200])
    inventory = tmp_path / "stale.py"
    inventory.write_text(STALE_INVENTORY.format(address=stale))
    started = time.monotonic()
    done = subprocess.run([str(PYINFRA), "-y", "--data", f"ollama_environment={json.dumps(SERVER_ENV)}",
                           "--data", 'ollama_models=["glm-4.7-flash", "qwen3-coder", "gpt-oss:20b"]',
                           str(inventory), DEPLOY], cwd=REPO, env=fleet.pyinfra_env(), capture_output=True,
                          text=True, timeout=300, check=False)
    took = time.monotonic() - started
    run = PyinfraRun(done.returncode, done.stdout, done.stderr)
    connect = run.output.split("--> Preparing", 1)[0]
    print(f"\nstale address: run over in {took:.0f}s; connect phase: {connect.strip()!r}")
    assert "[gpu2]" in connect and stale in connect, run
    assert "✓ gpu1 dev  1✓ 2✓ 3✓ 4✓ 5✓ 6✓ 7✓ 8✓ 9✓" in run.output, run
    assert run.rc != 0, run
    assert_nothing_lost(fleet, before)
