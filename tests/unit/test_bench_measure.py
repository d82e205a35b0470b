"""bench/measure.py, bench/pyinfra_counted.py and the bench's report: what the control machine spends, counted
and shown right."""

from __future__ import annotations

import json
import os
import sys

import pytest

from bench.measure import (
    cgroup_cpu_seconds,
    high_water,
    hosts_cpu_seconds,
    openssh_runs,
    openssh_shims,
    run_measured,
    tree_rss,
)
from bench.pyinfra_counted import install_counters, new_counts
from bench.report import line_fit, summarize, write_chart, write_table
from bench.run import controller_cost, hosts_cost, trips_per_host

BURN = "import time\nend = time.process_time() + 0.3\nwhile time.process_time() < end: pass\nprint('done')"


def test_run_measured_counts_the_cpu_of_the_whole_tree(tmp_path):
    # the work happens in a grandchild: its CPU still counts, as an OpenSSH client of Ansible's would
    child = (
        "import subprocess, sys, time; blob = bytearray(50_000_000); time.sleep(0.5); "
        f"subprocess.run([sys.executable, '-c', {BURN!r}], check=True)"
    )
    done = run_measured([sys.executable, "-c", child], timeout=60)
    assert done.returncode == 0
    assert "done" in done.stdout
    assert 0.3 <= done.cpu_seconds < 5
    assert done.seconds >= 0.3
    assert 50_000_000 < done.max_rss_bytes < 200_000_000  # the 50 MB it held, not the bench's own memory
    assert done.tree_rss_bytes >= done.max_rss_bytes


def test_run_measured_feeds_input_and_keeps_the_exit_code():
    done = run_measured(
        [sys.executable, "-c", "import sys; print(sys.stdin.read().upper()); sys.exit(3)"],
        input="hi",
        timeout=60,
    )
    assert (done.returncode, done.stdout.strip()) == (3, "HI")


def test_run_measured_kills_a_run_past_its_timeout():
    done = run_measured([sys.executable, "-c", "import time; time.sleep(30)"], timeout=0.5)
    assert done.returncode < 0
    assert done.seconds < 10


def test_tree_rss_sums_a_process_and_its_descendants(tmp_path):
    proc = tmp_path / "proc"
    page = os.sysconf("SC_PAGE_SIZE")
    # pid 10 (a name with ") (" in it) -> 11 -> 12; 13 is not in the tree
    for pid, ppid, pages in ((10, 1, 5), (11, 10, 7), (12, 11, 1), (13, 1, 100)):
        (proc / str(pid)).mkdir(parents=True)
        (proc / str(pid) / "stat").write_text(f"{pid} (a) (b) S {ppid} 0 0\n")
        (proc / str(pid) / "statm").write_text(f"999 {pages} 0\n")
    (proc / "self").mkdir()
    assert tree_rss(10, proc) == 13 * page
    assert tree_rss(12, proc) == 1 * page
    (proc / "10" / "status").write_text("Name:\ta\nVmHWM:\t  2048 kB\nVmRSS:\t  1024 kB\n")
    assert high_water(10, proc) == 2048 * 1024
    assert high_water(99, proc) == 0


def test_openssh_shims_log_each_client_run_and_run_the_real_one(tmp_path):
    log = tmp_path / "trips.log"
    env = {**os.environ, **openssh_shims(tmp_path / "shims", log)}
    for _ in range(2):
        done = run_measured(["ssh", "-V"], env=env, timeout=30)
        assert done.returncode == 0
        assert "OpenSSH" in done.stderr
    assert openssh_runs(log) == 2
    assert openssh_runs(tmp_path / "none.log") == 0


def test_counters_count_commands_and_transfers_per_host():
    class Host:
        def __init__(self, name):
            self.name = name

    class Connector:
        def __init__(self, name):
            self.host = Host(name)

        def run_shell_command(self, command):
            return True, command

        def put_file(self, local, remote):
            return True

        def get_file(self, remote, local):
            return True

    counts = new_counts()
    install_counters(Connector, counts)
    one, two = Connector("one"), Connector("two")
    assert one.run_shell_command("true") == (True, "true")
    one.run_shell_command("true")
    one.put_file("a", "b")
    two.get_file("b", "a")
    assert json.loads(json.dumps(counts)) == {
        "one": {"commands": 2, "transfers": 1},
        "two": {"commands": 0, "transfers": 1},
    }
    assert trips_per_host(counts, 2) == 2.0
    assert trips_per_host({}, 2) is None


def measured(cpu: float, rss: int):
    from bench.measure import Measured

    return Measured([], 0, "", "", 10.0, cpu, rss, rss * 2)


def row(approach, hosts, cold, warm, **extra):
    return {
        "approach": approach,
        "hosts": hosts,
        "cold_s": cold,
        "warm_s": warm,
        "wan_bytes_cold": 100_000_000,
        "wan_bytes_warm": 0,
        "end_state_ok": True,
        "rerun_changes": 0,
        "errors": 0,
        **extra,
    }


def test_controller_cost_is_per_host_and_keeps_the_larger_peak():
    cost = controller_cost(4, measured(2.0, 100_000_000), measured(0.4, 150_000_000), 40.0, 8.0)
    assert cost == {
        "cpu_s_cold": 2.0,
        "cpu_s_warm": 0.4,
        "cpu_s_per_host_cold": 0.5,
        "cpu_s_per_host_warm": 0.1,
        "max_rss_mb": 150.0,
        "tree_rss_mb": 300.0,
        "round_trips_per_host_cold": 40.0,
        "round_trips_per_host_warm": 8.0,
    }


def test_report_shows_round_trips_cpu_and_rss_next_to_the_times(tmp_path):
    cost = controller_cost(16, measured(8.0, 200_000_000), measured(1.6, 200_000_000), 90.0, 7.0)
    cost.update(hosts_cpu_s_cold=72.0, hosts_cpu_s_warm=3.0)
    rows = [
        row(
            "toolkit+mirror", 1, 20.0, 2.0, **controller_cost(1, measured(1, 1), measured(0.5, 1), 90.0, 7.0)
        ),
        row("toolkit+mirror", 16, 40.0, 4.0, **cost),
        row("ansible", 16, 160.0, 40.0, **cost),
        row("naive", 1, 12.0, 9.0),  # a row from before the controller was measured
    ]
    results = {
        "setup": {
            "wan_rate": "100mbit",
            "wan_latency_ms": 40,
            "ollama_version": "0.32.15",
            "claude_code_version": "2.1.332",
            "model": "m",
        },
        "machine": {"cpus": 2, "kernel": "k", "pyinfra": "3.10.0", "commit": "abc", "date": "d"},
        "rows": rows,
        "ratios": summarize(rows),
    }
    controller = results["ratios"]["controller"]
    assert controller[16] == {
        "cpu_s_per_host_warm": 0.1,
        "cpu_s_per_host_cold": 0.5,
        "cpu_share_cold": 0.2,
        "cpu_share_warm": 0.4,
        "peak_rss_mb": 400.0,
        "hosts_cpu_s_cold": 72.0,
        "controller_share_of_cpu_cold": 0.1,
    }
    assert results["ratios"]["P2_rerun"][16]["round_trips_per_host"] == 7.0
    assert results["ratios"]["P4_ours_over_ansible"][16]["time_cold"] == 0.25
    table = write_table(results, tmp_path / "bench.md")
    assert "| toolkit+mirror | 16 | 40.0 | 4.0 | 90.0 / 7.0 | 0.500 / 0.100 | 400 |" in table
    assert "| naive | 1 | 12.0 | 9.0 | - / - | - / - | - |" in table
    assert "| P2 re-run round trips per host (goal <= 8) | 7.0 | 7.0 |" in table
    assert "| controller CPU s/host re-run (goal <= 0.1) | 0.5 | 0.1 |" in table
    assert "| P4 ours/ansible cold time | - | 0.25 |" in table
    assert "| peak controller RSS MB | 0.0 | 400.0 |" in table
    assert "| controller / (controller + hosts) CPU, cold | - | 0.1 |" in table


def test_line_fit_splits_fixed_and_per_host_cost():
    assert line_fit([1, 4, 16, 32], [0.7 + 0.15 * n for n in (1, 4, 16, 32)]) == (0.7, 0.15)
    assert line_fit([4, 4], [1.0, 3.0]) == (2.0, 0.0)


def test_report_fits_the_controller_cost_and_draws_it(tmp_path):
    rows = [
        row(
            "toolkit+mirror",
            n,
            20.0,
            2.0,
            **controller_cost(n, measured(0.5 + 0.2 * n, 0), measured(0.6 + 0.1 * n, 0), 90.0, 7.0),
        )
        for n in (1, 4, 16)
    ]
    results = {
        "setup": {
            "wan_rate": "100mbit",
            "wan_latency_ms": 40,
            "ollama_version": "v",
            "claude_code_version": "c",
            "model": "m",
        },
        "machine": {"cpus": 2, "kernel": "k", "pyinfra": "p", "commit": "c", "date": "d"},
        "rows": rows,
        "ratios": summarize(rows),
    }
    assert results["ratios"]["controller_fit"]["cpu_s_warm"] == {"fixed": 0.6, "per_host": 0.1}
    assert "CPU 0.5 s + 0.2 s/host cold, 0.6 s + 0.1 s/host re-run" in write_table(results, tmp_path / "b.md")
    pytest.importorskip("matplotlib")
    write_chart(results, tmp_path / "b.png")
    assert (tmp_path / "b.png").read_bytes()[:4] == b"\x89PNG"


def test_hosts_cpu_comes_from_each_hosts_cgroup(tmp_path):
    one, two, v1 = tmp_path / "unified" / "one", tmp_path / "unified" / "two", tmp_path / "systemd" / "one"
    for cgroup, usec in ((one, 1_500_000), (two, 500_000)):
        cgroup.mkdir(parents=True)
        (cgroup / "cpu.stat").write_text(f"usage_usec {usec}\nuser_usec 1\nsystem_usec 2\n")
    v1.mkdir(parents=True)  # the named v1 hierarchy has no cpu.stat: the next one is read
    assert cgroup_cpu_seconds([v1, one]) == 1.5
    assert cgroup_cpu_seconds([v1]) is None
    assert hosts_cpu_seconds([[v1, one], [two]]) == 2.0
    assert hosts_cpu_seconds([[v1, one], [v1]]) is None
    assert hosts_cost(10.0, 40.0, 45.5, 41.0) == {"hosts_cpu_s_cold": 30.0, "hosts_cpu_s_warm": 4.5}
    assert hosts_cost(None, 40.0, 45.5, 41.0) == {"hosts_cpu_s_cold": None, "hosts_cpu_s_warm": None}
