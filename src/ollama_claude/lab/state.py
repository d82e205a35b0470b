"""The lab's state file: every resource is recorded *before* it is created, so teardown can always find it."""

from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass, field
from pathlib import Path

from .errors import LabError

STATE_FILE = "state.json"


def default_state_root() -> Path:
    """`OLLAMA_CLAUDE_LAB_DIR`, else `.lab` at the enclosing git checkout (or the working directory)."""
    if root := os.environ.get("OLLAMA_CLAUDE_LAB_DIR"):
        return Path(root)
    cwd = Path.cwd()
    for folder in (cwd, *cwd.parents):
        if (folder / ".git").exists():
            return folder / ".lab"
    return cwd / ".lab"


@dataclass
class Process:
    """A process the lab started; `started` (kernel start time) guards against killing a reused pid."""

    pid: int
    started: int

    @classmethod
    def of(cls, pid: int) -> Process:
        return cls(pid, process_start_time(pid) or 0)

    def alive(self) -> bool:
        return self.started != 0 and process_start_time(self.pid) == self.started


def process_start_time(pid: int) -> int | None:
    """Field 22 of /proc/PID/stat, None when the process is gone (zombies count as gone)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except (FileNotFoundError, ProcessLookupError):
        return None
    state, *rest = stat.rsplit(")", 1)[1].split()
    return None if state in ("Z", "X") else int(rest[18])


@dataclass
class HostState:
    """One booted host: its network identity, its root and the nspawn process that runs it."""

    name: str
    groups: list[str]
    address: str
    netns: str
    veth: str
    dir: str
    root: str
    console_log: str
    overlay: bool = False
    process: Process | None = None
    #: the lab user's sudo here: nopasswd, password or none (see lab/sudo.py)
    dev_sudo: str = "nopasswd"
    #: the host's Debian release and the cached tree its root overlays (LabState.rootfs when empty)
    suite: str = "bookworm"
    rootfs: str = ""
    #: "linux", or "macos" for the Mac-shaped host (lab/macos): reached as the laptop user, see lab/inventory.py
    flavour: str = "linux"


@dataclass
class ServiceState:
    """A background helper (e.g. the release mirror) that `down` must stop."""

    name: str
    argv: list[str]
    log: str
    process: Process | None = None


@dataclass
class LabState:
    """All a lab created; `host_data` is merged into every host's pyinfra inventory data."""

    name: str
    subnet: str
    gateway: str
    bridge: str
    dir: str
    rootfs: str = ""
    ssh_key: str = ""
    known_hosts: str = ""
    hosts: list[HostState] = field(default_factory=list)
    services: list[ServiceState] = field(default_factory=list)
    host_data: dict = field(default_factory=dict)
    #: the lab user's password (sudo asks for it on hosts whose dev_sudo is "password")
    dev_password: str = ""

    def host(self, name: str) -> HostState:
        for host in self.hosts:
            if host.name == name:
                return host
        raise LabError(
            f"lab '{self.name}' has no host '{name}' (hosts: {', '.join(h.name for h in self.hosts)})"
        )

    def save(self) -> None:
        """Write atomically: a crash mid-write must not lose the record of what exists."""
        path = Path(self.dir) / STATE_FILE
        path.parent.mkdir(parents=True, exist_ok=True)
        partial = path.with_suffix(".tmp")
        partial.write_text(json.dumps(asdict(self), indent=2) + "\n")
        os.replace(partial, path)

    @classmethod
    def load(cls, lab_dir: Path) -> LabState | None:
        """The recorded state, or None when this lab has never been brought up (or was fully torn down)."""
        try:
            raw = json.loads((lab_dir / STATE_FILE).read_text())
        except FileNotFoundError:
            return None
        except json.JSONDecodeError as error:
            raise LabError(
                f"{lab_dir / STATE_FILE} is corrupt ({error}); remove it and clean up by hand"
            ) from None
        hosts = [
            HostState(**{**h, "process": Process(**h["process"]) if h.get("process") else None})
            for h in raw.pop("hosts", [])
        ]
        services = [
            ServiceState(**{**s, "process": Process(**s["process"]) if s.get("process") else None})
            for s in raw.pop("services", [])
        ]
        return cls(**raw, hosts=hosts, services=services)
