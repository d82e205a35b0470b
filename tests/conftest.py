"""Shared fixtures: a lab fleet per test module (always torn down) and a runner for the pyinfra CLI against it."""

from __future__ import annotations

import atexit
import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest
from pyinfra_cli_run import PYINFRA, REPO, PyinfraRun

from ollama_claude.lab.errors import LabError
from ollama_claude.lab.fleet import HostSpec, Lab, numbered_hosts
from ollama_claude.lab.system import require_lab_host

# Its own name and subnet, so a user's `ollama-claude lab up` demo lab and the test lab never collide.
# Override both to run two test sessions side by side (each needs its own lab name and subnet).
TEST_LAB = os.environ.get("OLLAMA_CLAUDE_TEST_LAB", "test")
TEST_SUBNET = os.environ.get("OLLAMA_CLAUDE_TEST_SUBNET", "10.213.1.0/24")
SPARE_LAB = f"{TEST_LAB}-spare"
SPARE_SUBNET = os.environ.get("OLLAMA_CLAUDE_TEST_SPARE_SUBNET", "10.213.2.0/24")


def lab_or_skip() -> None:
    """Skip lab tests on a machine that cannot run a lab; in CI (OLLAMA_CLAUDE_REQUIRE_LAB=1) fail instead."""
    try:
        require_lab_host()
    except LabError as error:
        if os.environ.get("OLLAMA_CLAUDE_REQUIRE_LAB") == "1":
            pytest.fail(f"OLLAMA_CLAUDE_REQUIRE_LAB=1 but {error}", pytrace=False)
        pytest.skip(str(error))


def disposable_lab(name: str, subnet: str, hosts: int | list[str]):
    """Bring a lab up and always take it down: on return, on error, at exit, on SIGTERM.

    ``hosts``: a count (gpu1..gpuN on the default Debian release) or host specs as `lab up --hosts` takes them,
    e.g. ["gpu1", "gpu2:gpu@trixie"]."""
    specs = numbered_hosts(hosts) if isinstance(hosts, int) else [HostSpec.parse(text) for text in hosts]
    lab_or_skip()
    new_lab = Lab(name, subnet, Path(os.environ.get("OLLAMA_CLAUDE_LAB_DIR", REPO / ".lab")))
    quiet = {"log": lambda _: None}
    new_lab.down(**quiet)  # whatever a killed previous run left behind
    atexit.register(new_lab.down, **quiet)
    # SIGTERM (CI cancelling the job) becomes SystemExit, so finalizers and atexit still run.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(128 + signal.SIGTERM))
    try:
        new_lab.up(specs, **quiet)
        yield new_lab
    finally:
        new_lab.down(**quiet)
        atexit.unregister(new_lab.down)


@pytest.fixture(scope="module")
def lab():
    """
    A fresh 2-host lab (gpu1, gpu2 in group gpu) per test module, shared by that module's tests.

    A warm `up` takes about 1.5 s, so each module starts from clean hosts and never depends on what another
    module's deploys left behind.
    """
    yield from disposable_lab(TEST_LAB, TEST_SUBNET, 2)


@pytest.fixture(scope="module")
def mixed_lab():
    """A fresh 2-host lab of mixed Debian releases: gpu1 bookworm, gpu2 trixie (`lab up --hosts gpu1,gpu2:gpu@trixie`)."""
    yield from disposable_lab(TEST_LAB, TEST_SUBNET, ["gpu1", "gpu2:gpu@trixie"])


@pytest.fixture
def spare_lab():
    """A separate 2-host lab for one test that crashes hosts or tears the lab down itself."""
    yield from disposable_lab(SPARE_LAB, SPARE_SUBNET, 2)


@pytest.fixture(scope="module")
def pyinfra_run(request):
    """
    Run `pyinfra -y inventories/lab.py <deploy> [args]` from the repo, against the session lab by default.

    + data: extra host data for this run, as `--data key=<json>` so lists, dicts and numbers keep their type
    + hosts: limit the run to these lab hosts (`--limit`)
    + dry: `--dry`, show what would change and change nothing
    + target: another lab (e.g. `spare_lab`)
    """

    def run(
        deploy: str,
        *args: str,
        data: dict | None = None,
        hosts: list[str] | tuple[str, ...] = (),
        dry: bool = False,
        target: Lab | None = None,
        timeout: float = 600,
    ) -> PyinfraRun:
        target = target or request.getfixturevalue("lab")
        options = [
            item for key, value in (data or {}).items() for item in ("--data", f"{key}={json.dumps(value)}")
        ]
        options += [item for host in hosts for item in ("--limit", host)]
        options += ["--dry"] if dry else []
        done = subprocess.run(
            [str(PYINFRA), "-y", *options, "inventories/lab.py", deploy, *args],
            cwd=REPO,
            env=target.pyinfra_env(),
            text=True,
            capture_output=True,
            timeout=timeout,
            check=False,
        )
        return PyinfraRun(done.returncode, done.stdout, done.stderr)

    return run
