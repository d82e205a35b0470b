"""Lab networking: one bridge per lab holding the gateway, one network namespace + veth per host, no way out."""

from __future__ import annotations

import hashlib
import ipaddress
import json
import re
import shutil
from pathlib import Path

from .errors import LabError
from .system import run, run_quietly

IFNAMSIZ = 15  # Linux interface names: 15 characters + NUL
FIRST_HOST_OFFSET = (
    11  # hosts are .11, .12, ...; .1 is the bridge (gateway, where the release mirror listens)
)
NAME_PATTERN = re.compile(r"^[a-z0-9]([a-z0-9-]{0,30}[a-z0-9])?$")


def check_name(kind: str, name: str) -> str:
    """Lab and host names become hostnames and interface names: keep them short, lowercase, DNS-safe."""
    if not NAME_PATTERN.match(name):
        raise LabError(f"{kind} name '{name}' is invalid: use 1-32 of a-z, 0-9 and '-' (not at either end)")
    return name


def interface_name(*parts: str) -> str:
    """`oc-<parts>` when it fits IFNAMSIZ, else `oc` + a stable hash of the parts, so names never collide."""
    readable = "-".join(("oc", *parts))
    if len(readable) <= IFNAMSIZ:
        return readable
    return "oc" + hashlib.sha256(readable.encode()).hexdigest()[: IFNAMSIZ - 2]


def netns_name(lab: str, host: str) -> str:
    return f"oc-{lab}-{host}"


def gateway_address(subnet: str) -> ipaddress.IPv4Interface:
    """The bridge's address: the subnet's first address, e.g. 10.213.0.1/24."""
    network = lab_network(subnet)
    return ipaddress.IPv4Interface(f"{network.network_address + 1}/{network.prefixlen}")


def host_addresses(subnet: str, count: int) -> list[ipaddress.IPv4Interface]:
    """Addresses for `count` hosts, from .11 on; refuses a subnet too small to hold them."""
    network = lab_network(subnet)
    last = FIRST_HOST_OFFSET + count - 1
    if last >= network.num_addresses - 1:
        raise LabError(
            f"subnet {subnet} holds at most {max(0, network.num_addresses - 1 - FIRST_HOST_OFFSET)} "
            f"lab hosts, not {count}: use a larger subnet (e.g. a /24)"
        )
    return [
        ipaddress.IPv4Interface(f"{network.network_address + FIRST_HOST_OFFSET + i}/{network.prefixlen}")
        for i in range(count)
    ]


def lab_network(subnet: str) -> ipaddress.IPv4Network:
    try:
        network = ipaddress.IPv4Network(subnet)
    except ValueError as error:
        raise LabError(f"lab subnet '{subnet}' is not an IPv4 network like 10.213.0.0/24: {error}") from None
    if not network.is_private:
        raise LabError(f"lab subnet {subnet} is not private: use one inside 10.0.0.0/8 or 192.168.0.0/16")
    return network


def conflicts(subnet: str, addresses: list[dict], routes: list[dict], own_bridge: str) -> list[str]:
    """Addresses and routes (from `ip -j addr` / `ip -j route`) that overlap the subnet, ignoring our bridge."""
    network = lab_network(subnet)
    found = []
    for link in addresses:
        if link.get("ifname") == own_bridge:
            continue
        for info in link.get("addr_info", []):
            if info.get("family") != "inet":
                continue
            interface = ipaddress.IPv4Interface(f"{info['local']}/{info['prefixlen']}")
            if interface.network.overlaps(network):
                found.append(f"address {interface} on {link['ifname']}")
    for route in routes:
        # Local/broadcast routes mirror addresses, reported above; the default route overlaps everything.
        if route.get("type", "unicast") != "unicast" or route.get("dst") in (None, "default"):
            continue
        if route.get("dev") == own_bridge:  # left by a crashed run of this lab, removed before reuse
            continue
        destination = ipaddress.IPv4Network(route["dst"], strict=False)
        if destination.overlaps(network):
            found.append(f"route {route['dst']} via {route.get('dev', '?')}")
    return found


def check_subnet_free(subnet: str, own_bridge: str) -> None:
    """Refuse a subnet this machine already uses (another lab, a VPN, docker...), naming the user."""
    addresses = json.loads(run(["ip", "-j", "-4", "addr", "show"]))
    routes = json.loads(run(["ip", "-j", "-4", "route", "show", "table", "all"]))
    if found := conflicts(subnet, addresses, routes, own_bridge):
        raise LabError(
            f"lab subnet {subnet} is already in use ({'; '.join(dict.fromkeys(found))}): "
            f"pick another with --subnet, e.g. 10.213.9.0/24"
        )


def create_bridge(bridge: str, gateway: ipaddress.IPv4Interface) -> None:
    """The lab's switch, holding the gateway address; forwarding off on it so hosts reach nothing beyond."""
    run(["ip", "link", "add", bridge, "type", "bridge"])
    set_sysctl(f"net/ipv4/conf/{bridge}/forwarding", "0")
    set_sysctl(f"net/ipv6/conf/{bridge}/disable_ipv6", "1")
    run(["ip", "addr", "add", str(gateway), "dev", bridge])
    run(["ip", "link", "set", bridge, "up"])


def create_host_link(
    netns: str, veth: str, bridge: str, address: ipaddress.IPv4Interface, gateway: ipaddress.IPv4Interface
) -> None:
    """A namespace whose `eth0` is plugged into the lab bridge, with `lo` up and a default route to the gateway."""
    run(["ip", "netns", "add", netns])
    in_netns = ["ip", "netns", "exec", netns]
    run(["ip", "link", "add", veth, "type", "veth", "peer", "name", "eth0", "netns", netns])
    # IPv4 only on the wire (no router solicitations); lo keeps ::1 as on any real host.
    run([*in_netns, "sysctl", "-q", "-w", "net.ipv6.conf.eth0.disable_ipv6=1"])
    set_sysctl(f"net/ipv6/conf/{veth}/disable_ipv6", "1")
    run(["ip", "link", "set", veth, "master", bridge, "up"])
    run([*in_netns, "ip", "link", "set", "lo", "up"])
    run([*in_netns, "ip", "addr", "add", str(address), "dev", "eth0"])
    run([*in_netns, "ip", "link", "set", "eth0", "up"])
    run([*in_netns, "ip", "route", "add", "default", "via", str(gateway.ip)])


def delete_host_link(netns: str, veth: str) -> None:
    """Idempotent: deleting the netns also removes its end of the veth pair."""
    run_quietly(["ip", "link", "delete", veth])
    run_quietly(["ip", "netns", "delete", netns])


def delete_bridge(bridge: str) -> None:
    run_quietly(["ip", "link", "delete", bridge])


def netns_exists(name: str) -> bool:
    return Path(f"/run/netns/{name}").exists()


def netns_pids(netns: str) -> list[int]:
    """Every process inside a host's namespace: the container's init and all it runs."""
    if not netns_exists(netns):
        return []
    try:
        return [int(pid) for pid in run(["ip", "netns", "pids", netns]).split()]
    except LabError:  # the namespace vanished meanwhile
        return []


def set_sysctl(key: str, value: str) -> None:
    Path("/proc/sys", key).write_text(value)


def fence_table(lab: str) -> str:
    """The lab's own nftables table (proxy topology): `inet oc_lab_<name>`."""
    return "oc_lab_" + re.sub(r"[^a-z0-9]", "_", lab)


def fence_port(lab: str, bridge: str, port: int) -> None:
    """Reject TCP connections to ``port`` that arrive on the lab bridge; the controller's own still connect."""
    table = fence_table(lab)
    remove_fence(lab)
    run(["nft", "-f", "-"], input=(
        f"add table inet {table}\n"
        f"add chain inet {table} input {{ type filter hook input priority -10; policy accept; }}\n"
        f'add rule inet {table} input iifname "{bridge}" tcp dport {port} reject with tcp reset\n'
    ))


def remove_fence(lab: str) -> None:
    """Idempotent: a lab without a fence (or a machine without nft) has nothing to remove."""
    if shutil.which("nft"):
        run_quietly(["nft", "delete", "table", "inet", fence_table(lab)])
