"""
A cgroup of its own for each lab host.

nspawn with --register=no --keep-unit leaves the container in its caller's cgroup, and without a cgroup namespace
the container's systemd then builds its tree (init.scope, system.slice, ...) at that same path: every host of
every lab shares one tree, and one host's shutdown removes cgroups another is starting units in ("Failed at step
CGROUP spawning ...: No such file or directory", a degraded boot). Moving each nspawn into its own cgroup, in the
hierarchies systemd uses, gives every container a tree of its own.
"""

from __future__ import annotations

import contextlib
from pathlib import Path

LAB_CGROUP = "ollama-claude-lab"


def systemd_hierarchies(mountinfo: str, proc_cgroup: str) -> list[Path]:
    """Mount points of the hierarchies systemd manages: the named v1 `systemd` one and/or the v2 (unified) one."""
    wanted = {line.split(":", 2)[1] for line in proc_cgroup.splitlines() if line.count(":") >= 2}
    found = []
    for line in mountinfo.splitlines():
        fields = line.split()
        if " - " not in line:
            continue
        mount_point = fields[4]
        fs_type, _, options = line.split(" - ", 1)[1].split()[:3]
        unified = fs_type == "cgroup2" and "" in wanted
        named = fs_type == "cgroup" and "name=systemd" in options.split(",") and "name=systemd" in wanted
        if unified or named:
            found.append(Path(mount_point))
    return found


def host_cgroups(machine: str) -> list[Path]:
    """The cgroup directories a host's container lives in, one per systemd hierarchy of this machine."""
    hierarchies = systemd_hierarchies(Path("/proc/self/mountinfo").read_text(), Path("/proc/self/cgroup").read_text())
    return [hierarchy / LAB_CGROUP / machine for hierarchy in hierarchies]


#: Moves itself into the cgroups given first, then execs the rest: the container is born in its own cgroup.
_ENTER = 'n=$1; shift; while [ "$n" -gt 0 ]; do echo $$ > "$1/cgroup.procs" || exit 1; shift; n=$((n - 1)); done; exec "$@"'


def run_inside(cgroups: list[Path], argv: list[str]) -> list[str]:
    """argv wrapped so the process enters the (created) cgroups before it execs; the pid stays the same."""
    for cgroup in cgroups:
        cgroup.mkdir(parents=True, exist_ok=True)
    return ["sh", "-c", _ENTER, "sh", str(len(cgroups)), *map(str, cgroups), *argv]


def remove(cgroups: list[Path]) -> None:
    """Remove a stopped host's cgroups, deepest first (a cgroup directory goes only once it is empty)."""
    for cgroup in cgroups:
        if not cgroup.is_dir():
            continue
        for directory in sorted((p for p in cgroup.rglob("*") if p.is_dir()), key=lambda p: -len(p.parts)):
            with contextlib.suppress(OSError):
                directory.rmdir()
        with contextlib.suppress(OSError):
            cgroup.rmdir()
            cgroup.parent.rmdir()  # the shared parent goes with the last lab host
