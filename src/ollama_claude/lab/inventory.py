"""pyinfra inventory groups for a running lab: connection data per host, plus the lab's shared host_data."""

from __future__ import annotations

import os
from pathlib import Path

from .fleet import Lab
from .rootfs import LAB_USER, MACOS
from .state import HostState, LabState

#: `OLLAMA_CLAUDE_LAB_USER=dev`: connect as the lab user with sudo, the way most real fleets allow.
USER_ENV = "OLLAMA_CLAUDE_LAB_USER"


def sudo_data(state: LabState, host: HostState, user: str) -> dict:
    """Privilege data for a non-root SSH user: `_sudo`, plus the lab's password where sudo asks for one.
    The Mac-shaped host gets no host-wide `_sudo` (a laptop's deploy takes sudo per operation, macos.md
    "Privilege"), only the password for the operations that ask for it."""
    if user == "root":
        return {}
    data: dict = {} if host.flavour == MACOS else {"_sudo": True}
    if host.dev_sudo == "password":
        data["_sudo_password"] = state.dev_password
    return data


def default_user(host: HostState) -> str:
    """root, except on the Mac-shaped host: laptops are reached as their user (Remote Login, macos.md
    "Privilege"), so as the lab user dev."""
    return LAB_USER if host.flavour == MACOS else "root"


def connection_data(state: LabState, host: HostState, user: str | None = None) -> dict:
    """
    SSH with the lab's own key and known_hosts: nothing from ~/.ssh, strict host key checking. As root by
    default (the Mac-shaped host: as dev); as the lab user with sudo when ``user`` (or OLLAMA_CLAUDE_LAB_USER)
    says so; OLLAMA_CLAUDE_LAB_USER=root connects to a Mac-shaped host as root too (as MDM tools run).
    """
    user = user or os.environ.get(USER_ENV) or default_user(host)
    return {
        **sudo_data(state, host, user),
        "ssh_hostname": host.address,
        "ssh_user": user,
        "ssh_key": state.ssh_key,
        "ssh_known_hosts_file": state.known_hosts,
        "ssh_strict_host_key_checking": "yes",
        "ssh_allow_agent": False,
        "ssh_look_for_keys": False,
    }


def inventory_groups(state: LabState) -> dict[str, list[tuple[str, dict]]]:
    """{group: [(host, data), ...]} in host order; `host_data` (set by other lab parts) under connection data."""
    groups: dict[str, list[tuple[str, dict]]] = {}
    for host in state.hosts:
        data = {**state.host_data, **connection_data(state, host)}
        for group in host.groups:
            groups.setdefault(group, []).append((host.name, data))
    return groups


def lab_inventory(name: str, state_root: Path | None = None) -> dict[str, list[tuple[str, dict]]]:
    """The groups of the named lab; LabError with the fix when it is not up."""
    return inventory_groups(Lab(name, state_root=state_root).require_state())
