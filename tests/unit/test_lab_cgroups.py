"""Which cgroup hierarchies a lab host gets its own cgroup in: the ones systemd inside the container uses."""

import subprocess
from pathlib import Path

from ollama_claude.lab.cgroups import run_inside, systemd_hierarchies

HYBRID_MOUNTINFO = """\
30 25 0:26 / /sys/fs/cgroup/memory rw,relatime shared:9 - cgroup cgroup rw,memory
31 25 0:27 / /sys/fs/cgroup/systemd rw,relatime shared:10 - cgroup cgroup rw,xattr,name=systemd
32 25 0:28 / /sys/fs/cgroup/unified rw,relatime shared:11 - cgroup2 cgroup2 rw
33 25 0:29 / /proc rw - proc proc rw
"""
HYBRID_CGROUP = "9:name=systemd:/\n4:memory:/x\n0::/\n"
UNIFIED_MOUNTINFO = "28 25 0:26 / /sys/fs/cgroup rw,nosuid shared:4 - cgroup2 cgroup2 rw,nsdelegate\n"


def test_hybrid_machine_uses_the_named_systemd_and_the_unified_hierarchy():
    assert systemd_hierarchies(HYBRID_MOUNTINFO, HYBRID_CGROUP) == [
        Path("/sys/fs/cgroup/systemd"),
        Path("/sys/fs/cgroup/unified"),
    ]


def test_pure_v2_machine_uses_the_single_hierarchy():
    assert systemd_hierarchies(UNIFIED_MOUNTINFO, "0::/user.slice\n") == [Path("/sys/fs/cgroup")]


def test_controller_hierarchies_are_left_alone():
    assert systemd_hierarchies(HYBRID_MOUNTINFO, "4:memory:/x\n") == []


def test_the_wrapped_command_enters_every_cgroup_then_execs_the_original(tmp_path):
    cgroups = [tmp_path / "a" / "host", tmp_path / "b" / "host"]
    argv = run_inside(cgroups, ["systemd-nspawn", "--boot"])
    assert argv[:2] == ["sh", "-c"] and argv[-2:] == ["systemd-nspawn", "--boot"]
    assert argv[4:7] == ["2", str(cgroups[0]), str(cgroups[1])]
    assert all(cgroup.is_dir() for cgroup in cgroups)


def test_the_process_writes_its_own_pid_then_becomes_the_command(tmp_path):
    """With plain files standing in for cgroup.procs: the pid written is the pid that then runs the command."""
    cgroups = [tmp_path / "a", tmp_path / "b"]
    done = subprocess.run(run_inside(cgroups, ["sh", "-c", "echo $$"]), capture_output=True, text=True, check=True)
    pid = done.stdout.strip()
    assert [(cgroup / "cgroup.procs").read_text().strip() for cgroup in cgroups] == [pid, pid]
