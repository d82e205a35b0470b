"""
Round trips of a re-run (ollama_claude.factcache): a no-op re-run of the whole deploy runs at most 8 commands per
host, changes nothing and verifies green; a changed setting is still applied (the snapshot never hides a change).

Commands are counted from `pyinfra --debug`: the SSH connector logs "Running command on <host>:" once per
command it runs on a host, facts and operations alike (our batches too), and nothing else.

Run with OLLAMA_CLAUDE_TEST_LAB=rtrip OLLAMA_CLAUDE_TEST_SUBNET=10.213.101.0/24.
"""

from __future__ import annotations

import os
import re

import pytest

from ollama_claude import factcache
from ollama_claude.lab.release_mirror import serve_release_mirror

HOSTS = ("gpu1", "gpu2")
DROP_IN = "/etc/systemd/system/ollama.service.d/zz-ollama-claude.conf"
MAX_COMMANDS = 8


def commands_per_host(run) -> dict[str, int]:
    counts = dict.fromkeys(HOSTS, 0)
    for host in re.findall(r"Running command on (\S+?):", run.output):
        counts[host] = counts.get(host, 0) + 1
    return counts


def on(lab, host: str, command: str) -> str:
    return lab.ssh(host, command, check=True).stdout.strip()


@pytest.fixture(scope="module")
def fact_cache(tmp_path_factory):
    """A record directory of this module's own (the records of other runs on this machine stay apart)."""
    before = os.environ.get(factcache.CACHE_DIR)
    os.environ[factcache.CACHE_DIR] = str(tmp_path_factory.mktemp("facts"))
    yield os.environ[factcache.CACHE_DIR]
    if before is None:
        os.environ.pop(factcache.CACHE_DIR, None)
    else:
        os.environ[factcache.CACHE_DIR] = before


@pytest.fixture(scope="module")
def runs(lab, pyinfra_run, fact_cache):
    serve_release_mirror(lab)
    done = {}
    for name in ("cold", "rerun1", "rerun2"):
        done[name] = pyinfra_run("deploys/ollama_claude.py", "--debug")
        assert done[name].rc == 0, done[name]
    return done


def test_a_no_op_rerun_runs_at_most_8_commands_per_host(runs, fact_cache):
    counts = {name: commands_per_host(run) for name, run in runs.items()}
    print(f"commands per host: {counts}")
    for host in HOSTS:
        assert counts["rerun2"][host] <= MAX_COMMANDS, counts
        assert counts["cold"][host] > 40, counts  # the cold run reads and changes everything live
    totals = runs["rerun2"].results()["Grand total"]
    assert totals["success"] == 0 and totals["no_change"] == totals["hosts"], totals
    assert "verify: 2 passed, 0 failed" in runs["rerun2"].output
    assert sorted(os.listdir(os.path.join(fact_cache, "ollama_claude"))) == ["gpu1.json", "gpu2.json"]


def test_switched_off_the_same_rerun_reads_every_fact_live(runs, pyinfra_run, monkeypatch):
    monkeypatch.setenv(factcache.SWITCH, "0")
    run = pyinfra_run("deploys/ollama_claude.py", "--debug")
    assert run.rc == 0, run
    counts = commands_per_host(run)
    print(f"commands per host, prefetch off: {counts}")
    assert all(count > 3 * MAX_COMMANDS for count in counts.values()), counts
    assert run.results()["Grand total"]["success"] == 0


def test_a_changed_setting_is_applied_and_the_next_rerun_is_short_again(lab, runs, pyinfra_run):
    started = {host: on(lab, host, "systemctl show ollama -p ActiveEnterTimestampMonotonic --value") for host in HOSTS}
    assert all("OLLAMA_KEEP_ALIVE=45m" not in on(lab, host, f"cat {DROP_IN}") for host in HOSTS)
    change = pyinfra_run("deploys/ollama_claude.py", "--debug", data={"ollama_keep_alive": "45m"})
    assert change.rc == 0, change
    print(f"commands per host, change run: {commands_per_host(change)}")
    assert change.results()["Grand total"]["success"] > 0
    for host in HOSTS:
        assert 'Environment="OLLAMA_KEEP_ALIVE=45m"' in on(lab, host, f"cat {DROP_IN}")
        assert "OLLAMA_KEEP_ALIVE=45m" in on(lab, host, "systemctl show ollama -p Environment --value")
        assert on(lab, host, "systemctl show ollama -p ActiveEnterTimestampMonotonic --value") != started[host]
    again = pyinfra_run("deploys/ollama_claude.py", "--debug", data={"ollama_keep_alive": "45m"})
    assert again.rc == 0, again
    counts = commands_per_host(again)
    assert all(count <= MAX_COMMANDS for count in counts.values()), counts
    assert again.results()["Grand total"]["success"] == 0
    assert "verify: 2 passed, 0 failed" in again.output
