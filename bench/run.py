"""
`python -m bench`: onboard fresh lab fleets of N hosts behind a simulated WAN, three ways, side by side:

  toolkit+mirror  `mirror sync` (releases, Claude Code and the model) once on the control machine over the WAN,
                  `mirror serve` on the lab gateway, pyinfra deploy (install_ollama, manage_models with model
                  fan-out from the mirror, configure_claude_code) on all hosts at once
  toolkit direct  the same deploy with every host downloading from the upstream over the WAN (--direct-count N)
  naive           bench/baselines/naive_host.sh over SSH, host after host (what users do today)

Each is run twice (cold onboarding, then the re-run). WAN bytes come from the upstream's request log.
Results: <out>/bench.json, bench.md (table) and bench.png (chart).
"""

from __future__ import annotations

import argparse
import contextlib
import datetime
import json
import os
import platform
import re
import shlex
import shutil
import subprocess
import sys
import time
from importlib.metadata import version as package_version
from pathlib import Path

from bench.measure import Measured, hosts_cpu_seconds, openssh_runs, openssh_shims, run_measured
from bench.report import summarize, write_chart, write_table
from bench.wan import REPO, Wan
from ollama_claude.factcache import CACHE_DIR
from ollama_claude.lab import cgroups
from ollama_claude.lab.fleet import Lab, numbered_hosts
from ollama_claude.lab.mirror import build_mirror
from ollama_claude.lab.network import set_sysctl
from ollama_claude.lab.release_mirror import LAB_USER, gateway_ip
from ollama_claude.lab.system import require_lab_host, wait_until_serving
from ollama_claude.settings import Settings

sys.path.insert(0, str(REPO / "tests"))
from pyinfra_cli_run import PyinfraRun

DEPLOY = Path(__file__).parent / "deploys" / "onboard.py"
COUNTED_PYINFRA = Path(__file__).parent / "pyinfra_counted.py"
NAIVE_SCRIPT = Path(__file__).parent / "baselines" / "naive_host.sh"
PLAYBOOK = Path(__file__).parent / "baselines" / "ansible" / "onboard.yml"
ANSIBLE_PLAYBOOK = Path(sys.executable).parent / "ansible-playbook"
FLEET_MIRROR_PORT = 8471
OLLAMA_VERSION = Settings.model_fields["ollama_version"].default
CLAUDE_CODE_VERSION = Settings.model_fields["claude_code_version"].default
MODEL = "glm-4.7-flash"
CONTEXT_LENGTH = Settings.model_fields["ollama_context_length"].default


def quiet(_message: str) -> None:
    """Lab progress lines are not part of the results."""


class Bench:
    def __init__(self, args):
        self.args = args
        self.work = REPO / ".lab" / f"{args.lab}-work"
        self.upstream = self.work / "upstream"
        self.fact_cache = (
            self.work / "fact-cache"
        )  # the deploy's fact prefetch records (ollama_claude.factcache)
        self.wan = Wan(
            args.wan_netns,
            args.wan_veth,
            args.wan_subnet,
            args.rate,
            args.latency_ms,
            self.upstream,
            args.blob_size,
        )

    # -- pieces ---------------------------------------------------------------------------------------

    @contextlib.contextmanager
    def fresh_lab(self, count: int):
        self.row_started = time.monotonic()
        shutil.rmtree(
            self.fact_cache, ignore_errors=True
        )  # a fresh fleet: no facts recorded from a run before
        lab = Lab(self.args.lab, self.args.subnet, REPO / ".lab")
        lab.down(log=quiet)
        try:
            lab.up(numbered_hosts(count), log=quiet)
            self.wan.route_lab(lab.require_state().bridge)
            self.wan.reset_logs()
            yield lab
        finally:
            lab.down(log=quiet)

    def hosts_cpu(self, lab: Lab) -> float | None:
        """CPU seconds the lab's hosts have used since they booted (their cgroups), None where not readable."""
        return hosts_cpu_seconds([cgroups.host_cgroups(host.netns) for host in lab.require_state().hosts])

    def wan_bytes(self) -> int:
        return sum(self.wan.bytes_sent().values())

    def pyinfra(self, lab: Lab, profile: Path | None = None) -> tuple[Measured, PyinfraRun, dict]:
        """One deploy run, measured, with the commands and transfers it made per host (bench/pyinfra_counted.py);
        with profile, under cProfile writing its stats there."""
        counts = self.work / "pyinfra-counts.json"
        counts.unlink(missing_ok=True)
        done = run_measured(
            [
                sys.executable,
                *(["-m", "cProfile", "-o", str(profile)] if profile else []),
                str(COUNTED_PYINFRA),  # a script, not -m: runpy's frames would cost pyinfra's inspect.stack()
                str(counts),
                "-y",
                "inventories/lab.py",
                str(DEPLOY),
            ],
            cwd=REPO,
            env={**lab.pyinfra_env(), CACHE_DIR: str(self.fact_cache)},
            timeout=900,
        )
        per_host = json.loads(counts.read_text()) if counts.is_file() else {}
        return done, PyinfraRun(done.returncode, done.stdout, done.stderr), per_host

    def end_state(self, lab: Lab) -> bool:
        """Every host runs the pinned Ollama with the model and has the pinned Claude Code."""
        probe = (
            f"ollama --version; ollama list; claude --version; test -s /home/{LAB_USER}/.claude/settings.json"
        )
        for host in lab.require_state().hosts:
            out = lab.ssh(host.name, probe, timeout=60)
            if (
                out.returncode
                or OLLAMA_VERSION not in out.stdout
                or CLAUDE_CODE_VERSION not in out.stdout
                or MODEL not in out.stdout
            ):
                print(f"  {host.name}: end state not reached:\n{out.stdout}{out.stderr}", file=sys.stderr)
                return False
        return True

    def row(self, approach, count, cold, cold_bytes, warm, warm_bytes, ok, changes=None, errors=None, **cost):
        row_seconds = time.monotonic() - self.row_started
        row = {
            "approach": approach,
            "hosts": count,
            "cold_s": round(cold, 2),
            "warm_s": round(warm, 2),
            "wan_bytes_cold": cold_bytes,
            "wan_bytes_warm": warm_bytes,
            "end_state_ok": ok,
            "rerun_changes": changes,
            "errors": errors,
            **cost,
            "row_s": round(row_seconds, 1),  # the bench's own time for the row, lab boot included
        }
        print(
            f"  {approach:<15} N={count}: cold {cold:6.1f}s warm {warm:6.1f}s "
            f"WAN {cold_bytes / 1e6:7.1f} MB (+{warm_bytes / 1e6:.1f} MB on re-run) ok={ok} "
            f"re-run changes={changes} {format_cost(cost)}",
            flush=True,
        )
        return row

    # -- the three ways -------------------------------------------------------------------------------

    def toolkit(self, count: int, mirror: bool) -> dict:
        with self.fresh_lab(count) as lab:
            started = time.monotonic()
            if mirror:
                base = self.serve_synced_mirror(lab)
            else:
                base = self.wan.url
            lab.set_host_data(
                ollama_download_url=f"{base}/ollama/releases/download",
                claude_code_registry=f"{base}/npm",
                claude_users=[LAB_USER],
                ollama_models=[MODEL],
                ollama_environment=self.server_env(),
                **({"ollama_models_mirror": base} if mirror else {}),
            )
            hosts_before = self.hosts_cpu(lab)
            cold_run, first, cold_trips = self.pyinfra(lab)
            hosts_cold = self.hosts_cpu(lab)
            cold = time.monotonic() - started
            if first.rc != 0:
                print(first, file=sys.stderr)
            ok = first.rc == 0 and self.end_state(lab)
            cold_bytes = self.wan_bytes()
            hosts_end_state = self.hosts_cpu(lab)
            warm_run, second, warm_trips = self.pyinfra(lab)
            hosts_warm = self.hosts_cpu(lab)
            if self.args.profile:
                self.args.profile.mkdir(parents=True, exist_ok=True)
                self.pyinfra(lab, self.args.profile / f"rerun-{count}.prof")
            return self.row(
                "toolkit+mirror" if mirror else "toolkit direct",
                count,
                cold,
                cold_bytes,
                warm_run.seconds,
                self.wan_bytes() - cold_bytes,
                ok,
                second.changes,
                first.errors + second.errors,
                **controller_cost(
                    count,
                    cold_run,
                    warm_run,
                    trips_per_host(cold_trips, count),
                    trips_per_host(warm_trips, count),
                ),
                **hosts_cost(hosts_before, hosts_cold, hosts_warm, hosts_end_state),
            )

    def serve_synced_mirror(self, lab: Lab) -> str:
        dest = self.work / "fleet-mirror"
        shutil.rmtree(dest, ignore_errors=True)
        synced = subprocess.run(
            [
                sys.executable,
                "-m",
                "ollama_claude.cli",
                "mirror",
                "sync",
                "--dest",
                str(dest),
                "--ollama-version",
                OLLAMA_VERSION,
                "--claude-code-version",
                CLAUDE_CODE_VERSION,
                "--ollama-url",
                f"{self.wan.url}/ollama/releases/download",
                "--registry",
                f"{self.wan.url}/npm",
                "--model",
                MODEL,
                "--model-registry",
                self.wan.registry_url,
            ],
            capture_output=True,
            text=True,
            check=False,
            timeout=600,
        )
        if synced.returncode:
            raise SystemExit(f"bench: mirror sync failed: {synced.stderr.strip()}")
        url = f"http://{gateway_ip(lab)}:{FLEET_MIRROR_PORT}"
        lab.start_service(
            "fleet-mirror",
            [
                sys.executable,
                "-m",
                "ollama_claude.cli",
                "mirror",
                "serve",
                "--root",
                str(dest),
                "--bind",
                gateway_ip(lab),
                "--port",
                str(FLEET_MIRROR_PORT),
            ],
        )
        wait_until_serving(f"{url}/npm/")
        return url

    def server_env(self) -> dict[str, str]:
        """Lab only: where the hosts' Ollama stand-in finds the model registry (the real one knows)."""
        return {"OLLAMA_STANDIN_REGISTRY": self.wan.registry_url}

    def naive(self, count: int) -> dict:
        with self.fresh_lab(count) as lab:
            cold, ok = self.naive_pass(lab)
            ok = ok and self.end_state(lab)
            cold_bytes = self.wan_bytes()
            warm, warm_ok = self.naive_pass(lab)
            return self.row(
                "naive",
                count,
                cold.seconds,
                cold_bytes,
                warm.seconds,
                self.wan_bytes() - cold_bytes,
                ok and warm_ok,
                **controller_cost(count, cold, warm, 1.0, 1.0),  # one ssh per host, the script on its stdin
            )

    def naive_pass(self, lab: Lab) -> tuple[Measured, bool]:
        """The script over ssh, host after host; the Measured sums the hosts' ssh clients."""
        env = {
            "OLLAMA_URL": f"{self.wan.url}/ollama/releases/download",
            "VERSION": OLLAMA_VERSION,
            "REGISTRY": f"{self.wan.url}/npm",
            "CLAUDE_VERSION": CLAUDE_CODE_VERSION,
            "MODEL": MODEL,
            "USER_NAME": LAB_USER,
            "CONTEXT_LENGTH": str(CONTEXT_LENGTH),
            "SERVER_ENV": " ".join(f"{key}={value}" for key, value in self.server_env().items()),
        }
        command = "env " + " ".join(f"{key}={shlex.quote(value)}" for key, value in env.items()) + " sh -s"
        script = NAIVE_SCRIPT.read_text()
        total, ok = Measured([], 0, "", "", 0.0, 0.0, 0, 0), True
        for host in lab.require_state().hosts:
            done = run_measured([*lab.ssh_argv(host.name), "--", command], input=script, timeout=900)
            if done.returncode:
                print(f"  naive on {host.name} failed: {done.stderr.strip()}", file=sys.stderr)
                ok = False
            total.seconds += done.seconds
            total.cpu_seconds += done.cpu_seconds
            total.max_rss_bytes = max(total.max_rss_bytes, done.max_rss_bytes)
            total.tree_rss_bytes = max(total.tree_rss_bytes, done.tree_rss_bytes)
        return total, ok

    def ansible(self, count: int) -> dict:
        with self.fresh_lab(count) as lab:
            cold_trips, warm_trips = self.work / "ansible-ssh-cold.log", self.work / "ansible-ssh-warm.log"
            hosts_before = self.hosts_cpu(lab)
            first = self.ansible_pass(lab, cold_trips)
            hosts_cold = self.hosts_cpu(lab)
            ok = first.returncode == 0 and self.end_state(lab)
            cold_bytes = self.wan_bytes()
            hosts_end_state = self.hosts_cpu(lab)
            second = self.ansible_pass(lab, warm_trips)
            hosts_warm = self.hosts_cpu(lab)
            changed = sum(int(n) for n in re.findall(r"\bchanged=(\d+)", second.stdout))
            errors = sum(
                int(n) for n in re.findall(r"\b(?:failed|unreachable)=(\d+)", first.stdout + second.stdout)
            )
            for run in (first, second):
                if run.returncode:
                    print(f"  ansible failed:\n{run.stdout[-3000:]}{run.stderr[-2000:]}", file=sys.stderr)
            return self.row(
                "ansible",
                count,
                first.seconds,
                cold_bytes,
                second.seconds,
                self.wan_bytes() - cold_bytes,
                ok and second.returncode == 0,
                changed,
                errors,
                **controller_cost(
                    count, first, second, openssh_runs(cold_trips) / count, openssh_runs(warm_trips) / count
                ),
                **hosts_cost(hosts_before, hosts_cold, hosts_warm, hosts_end_state),
            )

    def ansible_pass(self, lab: Lab, trips: Path) -> Measured:
        """One ansible-playbook run over the lab's SSH key and known_hosts (pipelining on, as tuned users do);
        every OpenSSH client it starts (one per task and host with pipelining, plus file copies) is logged to trips."""
        state = lab.require_state()
        ssh_args = (
            f"-o UserKnownHostsFile={state.known_hosts} -o StrictHostKeyChecking=yes -o IdentitiesOnly=yes"
        )
        inventory = self.work / "ansible-inventory.ini"
        inventory.write_text(
            "[fleet]\n"
            + "".join(f"{host.name} ansible_host={host.address}\n" for host in state.hosts)
            + f"[fleet:vars]\nansible_user=root\nansible_ssh_private_key_file={state.ssh_key}\n"
            f"ansible_ssh_common_args='{ssh_args}'\nansible_python_interpreter=/usr/bin/python3\n"
        )
        variables = self.work / "ansible-vars.json"
        variables.write_text(
            json.dumps(
                {
                    "ollama_url": f"{self.wan.url}/ollama/releases/download",
                    "version": OLLAMA_VERSION,
                    "registry": f"{self.wan.url}/npm",
                    "claude_version": CLAUDE_CODE_VERSION,
                    "model": MODEL,
                    "user_name": LAB_USER,
                    "context_length": CONTEXT_LENGTH,
                    "server_env": self.server_env(),
                }
            )
        )
        trips.unlink(missing_ok=True)
        env = {
            **os.environ,
            **openssh_shims(self.work / "openssh-shims", trips),
            "ANSIBLE_PIPELINING": "True",
            "ANSIBLE_NOCOLOR": "1",
            "ANSIBLE_FORKS": str(max(10, len(state.hosts))),  # every host at once, as pyinfra does
            "ANSIBLE_HOME": str(self.work / "ansible-home"),
        }
        return run_measured(
            [str(ANSIBLE_PLAYBOOK), "-i", str(inventory), str(PLAYBOOK), "-e", f"@{variables}"],
            env=env,
            timeout=900,
        )

    # -- the run --------------------------------------------------------------------------------------

    def run(self) -> dict:
        build_mirror(self.upstream, (OLLAMA_VERSION,), CLAUDE_CODE_VERSION, ("linux-x64",))
        self.inotify_instances = ensure_inotify_instances(max(self.args.counts))
        self.wan.up([self.args.subnet])
        rows = []
        try:
            for count in self.args.counts:
                rows.append(self.toolkit(count, mirror=True))
                if count in self.args.naive_counts:
                    rows.append(self.naive(count))
                if self.args.ansible and count in self.args.ansible_counts:
                    rows.append(self.ansible(count))
            if self.args.direct and self.args.direct_count:
                rows.append(self.toolkit(self.args.direct_count, mirror=False))
        finally:
            self.wan.down()
        return {"machine": machine(), "setup": self.setup(), "rows": rows, "ratios": summarize(rows)}

    def setup(self) -> dict:
        return {
            "counts": self.args.counts,
            "naive_counts": [n for n in self.args.counts if n in self.args.naive_counts],
            "ansible_counts": [n for n in self.args.counts if n in self.args.ansible_counts]
            if self.args.ansible
            else [],
            "inotify_max_user_instances": self.inotify_instances,
            "wan_rate": self.args.rate,
            "wan_latency_ms": self.args.latency_ms,
            "ollama_version": OLLAMA_VERSION,
            "claude_code_version": CLAUDE_CODE_VERSION,
            "model": MODEL,
            "model_weights_bytes": self.args.blob_size,
            "upstream_files_bytes": sum(
                p.stat().st_size
                for p in self.upstream.rglob("*")
                if p.is_file() and not p.name.startswith(".")
            ),
        }


def ensure_inotify_instances(hosts: int, per_host: int = 8, spare: int = 128) -> int:
    """Each lab host's systemd (pid 1, journald, logind...) holds inotify instances, all root's: with the kernel's
    default of 128 per user, a fleet of about 28 hosts fails to boot (`exited while booting`). Raised, never
    lowered; returns the limit in effect."""
    limit = Path("/proc/sys/fs/inotify/max_user_instances")
    current = int(limit.read_text())
    wanted = hosts * per_host + spare
    if current < wanted:
        set_sysctl("fs/inotify/max_user_instances", str(wanted))
        return wanted
    return current


def trips_per_host(per_host: dict, count: int) -> float | None:
    """Mean commands + file transfers per host from bench/pyinfra_counted.py's counts."""
    if not per_host:
        return None
    return sum(c["commands"] + c["transfers"] for c in per_host.values()) / count


def controller_cost(count: int, cold: Measured, warm: Measured, cold_trips, warm_trips) -> dict:
    """The control machine's side of a row: CPU per host, peak memory, round trips per host (bench/measure.py)."""
    return {
        "cpu_s_cold": round(cold.cpu_seconds, 2),
        "cpu_s_warm": round(warm.cpu_seconds, 2),
        "cpu_s_per_host_cold": round(cold.cpu_seconds / count, 3),
        "cpu_s_per_host_warm": round(warm.cpu_seconds / count, 3),
        "max_rss_mb": round(max(cold.max_rss_bytes, warm.max_rss_bytes) / 1e6, 1),
        "tree_rss_mb": round(max(cold.tree_rss_bytes, warm.tree_rss_bytes) / 1e6, 1),
        "round_trips_per_host_cold": None if cold_trips is None else round(cold_trips, 1),
        "round_trips_per_host_warm": None if warm_trips is None else round(warm_trips, 1),
    }


def hosts_cost(before, after_cold, after_warm, before_warm) -> dict:
    """The lab hosts' CPU seconds during the cold run and the re-run (None where the cgroups were not readable)."""
    known = None not in (before, after_cold, after_warm, before_warm)
    return {
        "hosts_cpu_s_cold": round(after_cold - before, 1) if known else None,
        "hosts_cpu_s_warm": round(after_warm - before_warm, 1) if known else None,
    }


def format_cost(cost: dict) -> str:
    if not cost:
        return ""
    return (
        f"CPU/host {cost['cpu_s_per_host_cold']}s cold {cost['cpu_s_per_host_warm']}s re-run, "
        f"RSS {cost['tree_rss_mb']} MB, round trips/host {cost['round_trips_per_host_cold']} cold "
        f"{cost['round_trips_per_host_warm']} re-run"
    )


def machine() -> dict:
    commit = subprocess.run(
        ["git", "rev-parse", "--short", "HEAD"], cwd=REPO, capture_output=True, text=True, check=False
    ).stdout.strip()
    return {
        "date": datetime.datetime.now().astimezone().isoformat(timespec="seconds"),
        "kernel": platform.release(),
        "cpus": os.cpu_count(),
        "python": platform.python_version(),
        "pyinfra": package_version("pyinfra"),
        "commit": commit,
    }


def counts(text: str) -> list[int]:
    return [int(n) for n in text.split(",")]


def parse_args(argv):
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__.splitlines()[1])
    parser.add_argument(
        "--counts",
        type=counts,
        default=[1, 4, 16, 32],
        help="fleet sizes N for the toolkit (default 1,4,16,32)",
    )
    parser.add_argument(
        "--naive-counts",
        type=counts,
        default=[1],
        help="the N of --counts the naive baseline runs at (default 1: it goes host after host, so its time is "
        "N times one host's, and N=16 alone would take six minutes)",
    )
    parser.add_argument(
        "--ansible-counts",
        type=counts,
        default=[4, 16],
        help="the N of --counts Ansible runs at (default 4,16: the goals' N; N=32 would take the run past 15 min)",
    )
    parser.add_argument(
        "--direct-count",
        type=int,
        default=0,
        help="also run the toolkit without the mirror at this N (default 0: not run; N=4 adds two minutes)",
    )
    parser.add_argument("--rate", default="100mbit", help="WAN rate, tc syntax (default %(default)s)")
    parser.add_argument("--latency-ms", type=int, default=40, help="WAN round trip per request (default 40)")
    parser.add_argument(
        "--blob-size",
        type=int,
        default=40_000_000,
        help="size of the model's weights blob in the registry stand-in (default 40 MB)",
    )
    parser.add_argument(
        "--no-ansible",
        dest="ansible",
        action="store_false",
        help="skip the Ansible baseline (also skipped when ansible-playbook is not installed)",
    )
    parser.add_argument(
        "--no-direct",
        dest="direct",
        action="store_false",
        help="skip the toolkit-without-mirror run",
    )
    parser.add_argument(
        "--profile",
        type=Path,
        help="after the toolkit's measured re-run, run it once more under cProfile: DIR/rerun-<N>.prof",
    )
    parser.add_argument("--out", type=Path, default=REPO / "bench" / "results")
    parser.add_argument("--lab", default="bench")
    parser.add_argument("--subnet", default="10.213.24.0/24")
    parser.add_argument("--wan-subnet", default="10.213.27.0/30")
    parser.add_argument("--wan-netns", default="ocb-wan")
    parser.add_argument("--wan-veth", default="ocb-wan0")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if args.ansible and not ANSIBLE_PLAYBOOK.exists():
        print("no ansible-playbook in the venv: the Ansible baseline is skipped (pip install -e '.[bench]')")
        args.ansible = False
    require_lab_host()
    started = time.monotonic()
    results = Bench(args).run()
    results["setup"]["bench_seconds"] = round(time.monotonic() - started, 1)
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "bench.json").write_text(json.dumps(results, indent=2) + "\n")
    table = write_table(results, args.out / "bench.md")
    write_chart(results, args.out / "bench.png")
    print(table)
    return 0 if all(row["end_state_ok"] for row in results["rows"]) else 1
