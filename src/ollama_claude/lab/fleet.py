"""A lab: N Debian hosts booted with systemd-nspawn, each in its own network namespace, reached over real SSH.

Every resource is recorded in the state file before it is created, and teardown tolerates anything already
gone, so `down` is idempotent and cleans up after a crashed `up`, a killed host or a killed test run.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import shutil
import signal
import subprocess
import time
import uuid
from dataclasses import dataclass
from pathlib import Path

from . import cgroups, network, sudo
from .errors import LabError
from .rootfs import (
    ETC_HOSTS,
    FLAVOURS,
    LAB_USER,
    LAB_USER_UID,
    LINUX,
    MACOS,
    MACOS_SUITE,
    SUITE,
    check_suite,
    ensure_rootfs,
)
from .state import HostState, LabState, Process, ServiceState, default_state_root
from .system import require_lab_host, run, run_quietly

DEFAULT_LAB = "lab"
DEFAULT_SUBNET = "10.213.0.0/24"
DEFAULT_GROUP = "gpu"
SSH_READY_TIMEOUT = 90.0
BOOTED_PROBE = "systemctl is-system-running --wait"
STOP_TIMEOUT = 5.0
NSPAWN_RUN_DIR = Path("/run/systemd/nspawn")


@dataclass(frozen=True)
class HostSpec:
    """A host to boot and the pyinfra groups it belongs to."""

    name: str
    groups: tuple[str, ...] = (DEFAULT_GROUP,)
    #: the host's Debian release (rootfs.SUITES)
    suite: str = SUITE
    #: "linux", or "macos": the Mac-shaped host (Debian bookworm underneath, lab/macos)
    flavour: str = LINUX

    @classmethod
    def parse(cls, text: str) -> HostSpec:
        """`gpu1` or `laptop1:laptops` or `box:gpu+laptops` (groups joined by '+'); a Debian release other
        than the default after '@': `gpu2@trixie`, `gpu2:gpu@trixie`; or the Mac-shaped host: `mac1:laptops@macos`."""
        text, _, suite = text.partition("@")
        flavour = LINUX
        if suite in FLAVOURS:
            flavour, suite = suite, (MACOS_SUITE if suite == MACOS else SUITE)
        name, _, groups = text.partition(":")
        group_names = tuple(g for g in groups.split("+") if g) or (DEFAULT_GROUP,)
        for group in group_names:
            if not group.isidentifier():
                raise LabError(
                    f"host '{name}': group '{group}' must be a Python identifier (pyinfra group name)"
                )
        try:
            suite = check_suite(suite or SUITE)
        except LabError as error:
            raise LabError(f"host '{name}': {error} (or '{MACOS}' for the Mac-shaped host)") from None
        return cls(network.check_name("host", name), group_names, suite, flavour)


def numbered_hosts(count: int) -> list[HostSpec]:
    """The default fleet: gpu1..gpuN in group gpu."""
    return [HostSpec(f"{DEFAULT_GROUP}{i}") for i in range(1, count + 1)]


@dataclass
class HostStatus:
    name: str
    address: str
    groups: list[str]
    running: bool
    ssh: bool
    suite: str = "bookworm"
    flavour: str = LINUX


class Lab:
    """One named lab under a state root; several labs (different names and subnets) can run side by side."""

    def __init__(self, name: str = DEFAULT_LAB, subnet: str = DEFAULT_SUBNET, state_root: Path | None = None):
        self.name = network.check_name("lab", name)
        self.subnet = subnet
        self.state_root = Path(state_root or default_state_root()).absolute()
        self.dir = self.state_root / name

    # -- reading ------------------------------------------------------------------------------------------

    def state(self) -> LabState | None:
        return LabState.load(self.dir)

    def require_state(self) -> LabState:
        state = self.state()
        if state is None:
            raise LabError(
                f"lab '{self.name}' is not up (no {self.dir}/state.json): run `ollama-claude lab up`"
            )
        return state

    def status(self) -> list[HostStatus]:
        state = self.require_state()
        return [
            HostStatus(
                host.name,
                host.address,
                host.groups,
                bool(host.process and host.process.alive()),
                self.ssh(host.name, "true", timeout=5).returncode == 0,
                host.suite,
                host.flavour,
            )
            for host in state.hosts
        ]

    def pyinfra_env(self) -> dict[str, str]:
        """Environment for `pyinfra inventories/lab.py ...` so the inventory finds this lab."""
        return {**os.environ, "OLLAMA_CLAUDE_LAB": self.name, "OLLAMA_CLAUDE_LAB_DIR": str(self.state_root)}

    # -- SSH ----------------------------------------------------------------------------------------------

    def ssh_argv(self, host: str, user: str = "root", connect_timeout: int = 5) -> list[str]:
        """An `ssh` command line for a host: the lab's key, its known_hosts, nothing from ~/.ssh."""
        state = self.require_state()
        return [
            "ssh",
            "-F",
            "none",
            "-i",
            state.ssh_key,
            "-o",
            "IdentitiesOnly=yes",
            "-o",
            "BatchMode=yes",
            "-o",
            f"UserKnownHostsFile={state.known_hosts}",
            "-o",
            "StrictHostKeyChecking=yes",
            "-o",
            f"ConnectTimeout={connect_timeout}",
            "-o",
            "LogLevel=ERROR",
            f"{user}@{state.host(host).address}",
        ]

    def ssh(
        self, host: str, command: str, user: str = "root", timeout: float = 60, check: bool = False
    ) -> subprocess.CompletedProcess:
        """Run a shell command on a host over SSH; stdout/stderr captured as text."""
        argv = [*self.ssh_argv(host, user, connect_timeout=min(5, int(timeout))), "--", command]
        try:
            result = subprocess.run(argv, check=False, capture_output=True, text=True, timeout=timeout)
        except subprocess.TimeoutExpired:
            result = subprocess.CompletedProcess(argv, 255, "", f"timed out after {timeout}s")
        if check and result.returncode != 0:
            raise LabError(f"{host}: `{command}` failed ({result.returncode}): {result.stderr.strip()}")
        return result

    # -- lifecycle ----------------------------------------------------------------------------------------

    def up(self, hosts: list[HostSpec] | None = None, log=print, dev_sudo: str = sudo.DEFAULT_MODE) -> LabState:
        """
        Boot the hosts and wait until each answers SSH; a stale lab of this name is cleaned up first.
        ``dev_sudo``: the lab user's sudo on every host (nopasswd, password or none; see lab/sudo.py).
        """
        hosts = hosts or numbered_hosts(2)
        sudo.check_mode(dev_sudo)
        if len({h.name for h in hosts}) != len(hosts):
            raise LabError(f"duplicate host names in {[h.name for h in hosts]}")
        require_lab_host()
        with self.locked():
            if (existing := self.state()) is not None:
                if existing.hosts and all(h.process and h.process.alive() for h in existing.hosts):
                    raise LabError(
                        f"lab '{self.name}' is already up: run `ollama-claude lab down --name {self.name}`"
                        " first"
                    )
                log(f"cleaning up what a previous run of lab '{self.name}' left behind")
                self.teardown(existing)
            addresses = network.host_addresses(self.subnet, len(hosts))
            bridge = network.interface_name(self.name)
            network.check_subnet_free(self.subnet, bridge)
            rootfs = {
                (suite, flavour): str(ensure_rootfs(log, suite, flavour))
                for suite, flavour in dict.fromkeys((h.suite, h.flavour) for h in hosts)
            }
            state = LabState(
                name=self.name,
                subnet=self.subnet,
                gateway=str(network.gateway_address(self.subnet)),
                bridge=bridge,
                dir=str(self.dir),
                rootfs=rootfs.get((SUITE, LINUX)) or next(iter(rootfs.values())),
                dev_password=sudo.new_password(),
            )
            try:
                self.build(state, hosts, addresses, log, dev_sudo, rootfs)
            except BaseException:
                self.teardown(state)
                raise
            return state

    def build(self, state: LabState, hosts: list[HostSpec], addresses, log, dev_sudo: str = sudo.DEFAULT_MODE,
              rootfs: dict[tuple[str, str], str] | None = None) -> None:
        started = time.monotonic()
        self.dir.mkdir(parents=True, exist_ok=True)
        state.save()
        self.make_ssh_key(state)
        network.create_bridge(state.bridge, network.gateway_address(state.subnet))
        state.hosts = [
            HostState(
                name=spec.name,
                groups=list(spec.groups),
                address=str(address.ip),
                netns=network.netns_name(self.name, spec.name),
                veth=network.interface_name(self.name, spec.name),
                dir=str(self.dir / "hosts" / spec.name),
                root=str(self.dir / "hosts" / spec.name / "root"),
                console_log=str(self.dir / "hosts" / spec.name / "console.log"),
                dev_sudo=dev_sudo,
                suite=spec.suite,
                flavour=spec.flavour,
                rootfs=(rootfs or {}).get((spec.suite, spec.flavour), state.rootfs),
            )
            for spec, address in zip(hosts, addresses)
        ]
        state.save()
        for host, address in zip(state.hosts, addresses):
            self.make_root(state, host)
            network.create_host_link(
                host.netns, host.veth, state.bridge, address, network.gateway_address(state.subnet)
            )
        self.write_known_hosts(state)
        for host in state.hosts:
            self.boot(state, host)
        self.wait_for_ssh(state, state.hosts)
        for host in state.hosts:
            self.ssh(host.name, sudo.setup_script(host.dev_sudo, state.dev_password), check=True)
        log(
            f"lab '{self.name}' up: {len(state.hosts)} hosts in {time.monotonic() - started:.1f}s "
            f"({', '.join(f'{h.name}={h.address}' for h in state.hosts)})"
        )

    def down(self, log=print) -> None:
        """Remove every container, namespace, veth, mount and directory the lab made; fine to run twice."""
        with self.locked():
            state = self.state()
            if state is None:
                # No record: still remove the bridge by its (lab-owned) name, in case state.json was lost.
                network.delete_bridge(network.interface_name(self.name))
                log(f"lab '{self.name}' is not up; nothing to remove")
                return
            self.teardown(state)
        log(f"lab '{self.name}' down")

    def teardown(self, state: LabState) -> None:
        for service in state.services:
            stop_process_group(service.process)
        for host in state.hosts:
            self.stop_host(host)
            network.delete_host_link(host.netns, host.veth)
            self.remove_root(host)
        network.delete_bridge(state.bridge)
        network.remove_fence(self.name)  # the proxy topology's nftables table, if this lab had one
        shutil.rmtree(state.dir, ignore_errors=True)

    def kill_host(self, name: str) -> None:
        """Pull the plug on one host (simulated crash): all its processes die at once, its disk stays."""
        with self.locked():
            self.stop_host(self.require_state().host(name), graceful=False)

    def restart_host(self, name: str) -> None:
        """Kill the host if needed and boot it again from the same root; waits for SSH."""
        with self.locked():
            state = self.require_state()
            host = state.host(name)
            self.stop_host(host, graceful=False)
            self.boot(state, host)
            self.wait_for_ssh(state, [host])

    def set_dev_sudo(self, mode: str, hosts: list[str] | None = None) -> None:
        """Change the lab user's sudo (nopasswd, password, none) on running hosts (default: all)."""
        sudo.check_mode(mode)
        with self.locked():
            state = self.require_state()
            for host in [state.host(name) for name in hosts] if hosts else state.hosts:
                self.ssh(host.name, sudo.setup_script(mode, state.dev_password), check=True)
                host.dev_sudo = mode
                state.save()

    # -- services and host data for other lab parts (release mirror, stand-ins) -----------------------

    def start_service(
        self, name: str, argv: list[str], env: dict[str, str] | None = None, cwd: str | None = None
    ) -> ServiceState:
        """Start a background helper in its own session; `down` stops it. Output goes to logs/<name>.log."""
        with self.locked():
            state = self.require_state()
            if any(s.name == name and s.process and s.process.alive() for s in state.services):
                raise LabError(f"lab service '{name}' is already running: stop_service('{name}') first")
            state.services = [s for s in state.services if s.name != name]
            log_path = self.dir / "logs" / f"{name}.log"
            log_path.parent.mkdir(parents=True, exist_ok=True)
            service = ServiceState(name=name, argv=list(argv), log=str(log_path))
            with open(log_path, "ab") as log_file:
                child = subprocess.Popen(
                    argv,
                    stdin=subprocess.DEVNULL,
                    stdout=log_file,
                    stderr=subprocess.STDOUT,
                    env=env,
                    cwd=cwd,
                    start_new_session=True,
                )
            service.process = Process.of(child.pid)
            state.services.append(service)
            state.save()
            return service

    def stop_service(self, name: str) -> None:
        with self.locked():
            state = self.require_state()
            for service in [s for s in state.services if s.name == name]:
                stop_process_group(service.process)
            state.services = [s for s in state.services if s.name != name]
            state.save()

    def set_host_data(self, **data) -> None:
        """Merge keys into every host's inventory data (e.g. the mirror's download URLs)."""
        with self.locked():
            state = self.require_state()
            state.host_data.update(data)
            state.save()

    # -- pieces ---------------------------------------------------------------------------------------

    @contextlib.contextmanager
    def locked(self):
        """One lab operation at a time per lab name (two `up`s would fight over the same bridge)."""
        self.state_root.mkdir(parents=True, exist_ok=True)
        with open(self.state_root / f".{self.name}.lock", "w") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            yield

    def make_ssh_key(self, state: LabState) -> None:
        key = self.dir / "ssh" / "id_ed25519"
        key.parent.mkdir(parents=True, exist_ok=True)
        run(
            [
                "ssh-keygen",
                "-q",
                "-t",
                "ed25519",
                "-N",
                "",
                "-C",
                f"ollama-claude-lab-{self.name}",
                "-f",
                str(key),
            ]
        )
        state.ssh_key = str(key)
        state.known_hosts = str(self.dir / "ssh" / "known_hosts")
        state.save()

    def make_root(self, state: LabState, host: HostState) -> None:
        """A copy-on-write root over the cached tree (overlayfs), or a full copy where overlayfs is refused."""
        host_dir, root = Path(host.dir), Path(host.root)
        for sub in ("upper", "work", "root"):
            (host_dir / sub).mkdir(parents=True, exist_ok=True)
        host.overlay = True
        state.save()
        lower = host.rootfs or state.rootfs
        options = f"lowerdir={lower},upperdir={host_dir / 'upper'},workdir={host_dir / 'work'}"
        if not run_quietly(
            ["mount", "-t", "overlay", f"oc-{self.name}-{host.name}", "-o", options, str(root)]
        ):
            host.overlay = False
            state.save()
            run(["cp", "-a", "--reflink=auto", f"{lower}/.", str(root)])
        self.write_identity(state, host)

    def write_identity(self, state: LabState, host: HostState) -> None:
        """What makes a host itself: name, /etc/hosts for the whole lab, machine-id, host key, login keys."""
        root = Path(host.root)
        (root / "etc" / "hostname").write_text(f"{host.name}\n")
        lab_hosts = "".join(f"{h.address}\t{h.name}\n" for h in state.hosts)
        (root / "etc" / "hosts").write_text(
            f"{ETC_HOSTS}{state.gateway.split('/')[0]}\tlab-gateway\n{lab_hosts}"
        )
        (root / "etc" / "machine-id").write_text(uuid.uuid4().hex + "\n")
        host_key = root / "etc" / "ssh" / "ssh_host_ed25519_key"
        host_key.unlink(missing_ok=True)
        run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", f"root@{host.name}", "-f", str(host_key)])
        public_key = Path(state.ssh_key + ".pub").read_text()
        for home, uid, gid in login_homes(root, host.flavour):
            ssh_dir = home / ".ssh"
            ssh_dir.mkdir(mode=0o700, exist_ok=True)
            (ssh_dir / "authorized_keys").write_text(public_key)
            for path in (ssh_dir, ssh_dir / "authorized_keys"):
                os.chown(path, uid, gid)
            (ssh_dir / "authorized_keys").chmod(0o600)

    def write_known_hosts(self, state: LabState) -> None:
        """Host keys are made before boot, so known_hosts is exact from the first connection."""
        lines = []
        for host in state.hosts:
            key_type, key, *_ = (Path(host.root) / "etc/ssh/ssh_host_ed25519_key.pub").read_text().split()
            lines.append(f"{host.address} {key_type} {key}\n")
        Path(state.known_hosts).write_text("".join(lines))

    def boot(self, state: LabState, host: HostState) -> None:
        """systemd-nspawn with real systemd as PID 1, detached in its own session, console to a file."""
        argv = [
            "systemd-nspawn",
            "--quiet",
            "--directory",
            host.root,
            "--machine",
            host.netns,
            "--hostname",
            host.name,
            "--register=no",
            "--keep-unit",
            "--boot",
            "--console=pipe",
            f"--network-namespace-path=/run/netns/{host.netns}",
            # The netns is the host's own: with CAP_NET_ADMIN its nftables (ollama_allowed_clients) work and
            # reach no other network namespace.
            "--capability=CAP_NET_ADMIN",
            "--link-journal=no",
            "--resolv-conf=off",
            "--timezone=off",
        ]
        with open(host.console_log, "ab") as console:
            child = subprocess.Popen(
                cgroups.run_inside(cgroups.host_cgroups(host.netns), argv),
                stdin=subprocess.DEVNULL,
                stdout=console,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        host.process = Process.of(child.pid)
        state.save()

    def wait_for_ssh(self, state: LabState, hosts: list[HostState]) -> None:
        """Poll until every host answers SSH with a finished boot (so deploys never race systemd's start-up);
        a dead or silent host fails with its console tail."""
        deadline = time.monotonic() + SSH_READY_TIMEOUT
        waiting = list(hosts)
        while waiting:
            for host in list(waiting):
                if not (host.process and host.process.alive()):
                    raise LabError(
                        f"lab host '{host.name}' exited while booting; its console:\n{console_tail(host)}"
                    )
                if self.ssh(host.name, BOOTED_PROBE, timeout=10).stdout.strip() in ("running", "degraded"):
                    waiting.remove(host)
            if waiting and time.monotonic() > deadline:
                names = ", ".join(h.name for h in waiting)
                raise LabError(
                    f"lab host(s) {names} did not finish booting / answer SSH within {SSH_READY_TIMEOUT:.0f}s; "
                    f"console of {waiting[0].name}:\n{console_tail(waiting[0])}"
                )
            if waiting:
                time.sleep(0.2)

    def stop_host(self, host: HostState, graceful: bool = True) -> None:
        """Power the host off (SIGTERM: orderly, ~0.1 s), then SIGKILL whatever is left in its namespace."""
        if graceful and host.process and host.process.alive():
            with contextlib.suppress(ProcessLookupError):
                os.kill(host.process.pid, signal.SIGTERM)
            deadline = time.monotonic() + STOP_TIMEOUT
            while host.process.alive() and time.monotonic() < deadline:
                time.sleep(0.02)
        if host.process and host.process.alive():
            with contextlib.suppress(ProcessLookupError):
                os.kill(host.process.pid, signal.SIGKILL)
        # The container's PID 1 lives in the host's netns; killing it ends the whole container.
        deadline = time.monotonic() + STOP_TIMEOUT
        while (pids := network.netns_pids(host.netns)) and time.monotonic() < deadline:
            for pid in pids:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGKILL)
            time.sleep(0.05)
        if pids:
            raise LabError(
                f"lab host '{host.name}': processes {pids} survive SIGKILL; check `ip netns pids "
                f"{host.netns}`"
            )
        self.remove_nspawn_leftovers(host)
        cgroups.remove(cgroups.host_cgroups(host.netns))

    def remove_nspawn_leftovers(self, host: HostState) -> None:
        """A killed nspawn leaves its propagation dir and image lock in /run; an orderly stop removes them."""
        shutil.rmtree(NSPAWN_RUN_DIR / "propagate" / host.netns, ignore_errors=True)
        with contextlib.suppress(FileNotFoundError):
            root = os.stat(host.root)
            (NSPAWN_RUN_DIR / "locks" / f"inode-{root.st_dev}:{root.st_ino}").unlink(missing_ok=True)

    def remove_root(self, host: HostState) -> None:
        """Unmount before deleting: removing files through a live overlay would only hide them."""
        root = Path(host.root)
        if host.overlay and is_mountpoint(root):
            if not run_quietly(["umount", str(root)]):
                run_quietly(["umount", "--lazy", str(root)])
            if is_mountpoint(root):
                raise LabError(
                    f"lab host '{host.name}': {root} is still mounted; unmount it, then run down again"
                )
        shutil.rmtree(host.dir, ignore_errors=True)


def login_homes(root: Path, flavour: str) -> list[tuple[Path, int, int]]:
    """(home, uid, gid) of the accounts the lab's key logs in to: root and dev; on the Mac-shaped host root's
    home is /var/root and the laptop users (dev, ada) live under /Users (lab/macos/userland.py)."""
    if flavour == MACOS:
        from .macos import userland

        return [
            (root / userland.ROOT_HOME.lstrip("/"), 0, 0),
            *((root / u.home.lstrip("/"), u.uid, userland.STAFF_GID) for u in userland.USERS),
        ]
    return [(root / "root", 0, 0), (root / "home" / LAB_USER, LAB_USER_UID, LAB_USER_UID)]


def is_mountpoint(path: Path) -> bool:
    """From /proc/self/mountinfo, as os.path.ismount misses bind/overlay mounts on the same device."""
    target = str(path.absolute())
    with open("/proc/self/mountinfo") as mounts:
        return any(line.split()[4] == target for line in mounts)


def stop_process_group(process: Process | None) -> None:
    """SIGTERM a service's session, then SIGKILL it if still there after STOP_TIMEOUT."""
    if process is None or not process.alive():
        return
    for sig in (signal.SIGTERM, signal.SIGKILL):
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, sig)
        deadline = time.monotonic() + STOP_TIMEOUT
        while process.alive() and time.monotonic() < deadline:
            time.sleep(0.05)
        if not process.alive():
            return


def console_tail(host: HostState, lines: int = 20) -> str:
    try:
        return "\n".join(Path(host.console_log).read_text(errors="replace").splitlines()[-lines:])
    except FileNotFoundError:
        return "(no console output)"
