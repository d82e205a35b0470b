"""
What the control machine spends on one run of a tool: wall time, CPU (user + sys) and memory of the tool's whole
process tree, measured from outside so every approach is measured the same way.

- CPU: the rusage os.wait4 returns for the tool's process, which includes every descendant it waited for. pyinfra
  speaks SSH in-process (paramiko, gevent), so for it that is the one pyinfra process; Ansible's tree includes its
  forks and the OpenSSH clients it runs; the naive script's tree is the ssh client.
- peak RSS, sampled from /proc every 0.2 s: the tool's own process's high-water mark (VmHWM: exact, as it is
  the kernel's peak since exec), and the peak of the summed RSS of its whole tree (Ansible's forks are separate
  processes). Not ru_maxrss: on Linux it also holds the memory of the forked copy of the bench itself before exec.
- the lab hosts' own CPU (user + sys) while the tool ran: each host's cgroup (cgroup v2 `cpu.stat`), summed; with
  the hosts on the same cores as the control machine, this is what the wall time of a cold run is made of.
- round trips of the tools that use OpenSSH: a directory of `ssh`/`sftp`/`scp` shims put first on PATH, each
  appending a line to a log before running the real client.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import tempfile
import threading
import time
from dataclasses import dataclass
from pathlib import Path

SAMPLE_SECONDS = 0.2
OPENSSH_CLIENTS = ("ssh", "sftp", "scp")


@dataclass
class Measured:
    argv: list[str]
    returncode: int
    stdout: str
    stderr: str
    seconds: float
    cpu_seconds: float
    max_rss_bytes: int  # the tool's own process's peak (VmHWM)
    tree_rss_bytes: int  # the largest sampled sum over the tree


def run_measured(argv: list[str], *, timeout: float, input: str | None = None, **popen) -> Measured:
    """Run argv to completion (killing its process group after timeout) and measure it."""
    with tempfile.TemporaryFile("w+") as out, tempfile.TemporaryFile("w+") as err:
        started = time.monotonic()
        process = subprocess.Popen(
            argv,
            stdin=subprocess.PIPE if input is not None else subprocess.DEVNULL,
            stdout=out,
            stderr=err,
            text=True,
            start_new_session=True,
            **popen,
        )
        sampler = TreeRss(process.pid)
        sampler.start()
        killer = threading.Timer(timeout, lambda: _kill_group(process.pid))
        killer.start()
        try:
            if input is not None:
                try:
                    process.stdin.write(input)
                    process.stdin.close()
                except BrokenPipeError:
                    pass
            _, status, usage = os.wait4(process.pid, 0)
        finally:
            killer.cancel()
            sampler.stop()
        seconds = time.monotonic() - started
        process.returncode = os.waitstatus_to_exitcode(status)
        out.seek(0)
        err.seek(0)
        return Measured(
            argv=list(argv),
            returncode=process.returncode,
            stdout=out.read(),
            stderr=err.read(),
            seconds=seconds,
            cpu_seconds=usage.ru_utime + usage.ru_stime,
            max_rss_bytes=sampler.high_water,
            tree_rss_bytes=max(sampler.peak, sampler.high_water),
        )


def _kill_group(pid: int) -> None:
    try:
        os.killpg(pid, signal.SIGKILL)
    except ProcessLookupError:
        pass


def tree_rss(root: int, proc: Path = Path("/proc")) -> int:
    """Summed resident memory (bytes) of root and its descendants right now."""
    children: dict[int, list[int]] = {}
    rss: dict[int, int] = {}
    page = os.sysconf("SC_PAGE_SIZE")
    for entry in proc.iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
            statm = (entry / "statm").read_text().split()
        except OSError:
            continue
        # the command name may hold spaces and parentheses: the fields start after the last ")"
        ppid = int(stat.rsplit(")", 1)[1].split()[1])
        children.setdefault(ppid, []).append(int(entry.name))
        rss[int(entry.name)] = int(statm[1]) * page
    total, todo = 0, [root]
    while todo:
        pid = todo.pop()
        total += rss.get(pid, 0)
        todo += children.get(pid, [])
    return total


def high_water(pid: int, proc: Path = Path("/proc")) -> int:
    """The process's peak resident memory so far (bytes), 0 once it is gone."""
    try:
        status = (proc / str(pid) / "status").read_text()
    except OSError:
        return 0
    for line in status.splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) * 1024
    return 0


class TreeRss:
    """Samples tree_rss(pid) and the process's own high-water mark in a thread, keeping the peaks."""

    def __init__(self, pid: int):
        self.pid, self.peak, self.high_water = pid, 0, 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join()

    def _run(self) -> None:
        while not self._stop.is_set():
            self.peak = max(self.peak, tree_rss(self.pid))
            self.high_water = max(self.high_water, high_water(self.pid))
            self._stop.wait(SAMPLE_SECONDS)


def openssh_shims(directory: Path, log: Path) -> dict[str, str]:
    """Write ssh/sftp/scp shims that log each run to `log`; returns the environment that puts them first on PATH."""
    directory.mkdir(parents=True, exist_ok=True)
    for client in OPENSSH_CLIENTS:
        real = shutil.which(client)
        if real is None:
            continue
        shim = directory / client
        shim.write_text(f'#!/bin/sh\necho {client} >> "{log}"\nexec {real} "$@"\n')
        shim.chmod(0o755)
    return {"PATH": f"{directory}{os.pathsep}{os.environ.get('PATH', '')}"}


def openssh_runs(log: Path) -> int:
    return len(log.read_text().splitlines()) if log.is_file() else 0


def cgroup_cpu_seconds(cgroups: list[Path]) -> float | None:
    """CPU seconds (user + sys) used so far in the first of the cgroups that has a v2 `cpu.stat`; None if none has."""
    for cgroup in cgroups:
        try:
            stat = (cgroup / "cpu.stat").read_text()
        except OSError:
            continue
        for line in stat.splitlines():
            if line.startswith("usage_usec "):
                return int(line.split()[1]) / 1e6
    return None


def hosts_cpu_seconds(host_cgroups: list[list[Path]]) -> float | None:
    """Summed cgroup_cpu_seconds of the lab hosts (each host's list of cgroups); None if any cannot be read."""
    total = 0.0
    for cgroups in host_cgroups:
        used = cgroup_cpu_seconds(cgroups)
        if used is None:
            return None
        total += used
    return total
