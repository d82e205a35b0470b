"""The allowlist's rules file and boot unit as text, and nftables' JSON listing reduced to what we compare."""

from __future__ import annotations

import json
from ipaddress import (
    IPv4Network,
    IPv6Network,
    collapse_addresses,
    ip_address,
    ip_network,
    summarize_address_range,
)
from typing import Any

TABLE = "ollama_claude"
CHAIN = "input"
RULES_FILE = "/etc/ollama-claude/allowlist.nft"
UNIT = "ollama-claude-allowlist.service"
UNIT_PATH = f"/etc/systemd/system/{UNIT}"
HEADER = "# Managed by ollama-claude: set ollama_allowed_clients in group_data and re-run the deploy instead."

#: The base chain as nft -j lists it: (type, hook, priority, policy).
CHAIN_SPEC = ("filter", "input", 0, "accept")


def networks(clients: list[str]) -> tuple[list[str], list[str]]:
    """(IPv4, IPv6) networks of the allowlist, host bits cleared and overlaps merged (nft refuses overlaps)."""
    parsed = [ip_network(client, strict=False) for client in clients]
    v4 = [str(n) for n in collapse_addresses(n for n in parsed if isinstance(n, IPv4Network))]
    v6 = [str(n) for n in collapse_addresses(n for n in parsed if isinstance(n, IPv6Network))]
    return v4, v6


def rules(port: int, clients: list[str]) -> list[list[str]]:
    """The chain's rules in the form ``listed`` reduces nft's JSON to: the comparison of desired and live."""
    v4, v6 = networks(clients)
    wanted = [[f"tcp dport {port}", "iifname lo", "accept"]]
    if v4:
        wanted.append([f"tcp dport {port}", f"ip saddr {' '.join(v4)}", "accept"])
    if v6:
        wanted.append([f"tcp dport {port}", f"ip6 saddr {' '.join(v6)}", "accept"])
    wanted.append([f"tcp dport {port}", "reject tcp reset"])
    return wanted


def rules_file(port: int, clients: list[str]) -> str:
    """
    What ``nft -f`` loads: the table is created, deleted and created again in one transaction, so a load replaces
    our table atomically (never a moment without it) and touches no other table.
    """
    v4, v6 = networks(clients)
    lines = [
        HEADER,
        f"# Only loopback and these clients reach Ollama on TCP port {port}; every other connection is reset.",
        f"table inet {TABLE}",
        f"delete table inet {TABLE}",
        f"table inet {TABLE} {{",
        f"\tchain {CHAIN} {{",
        "\t\ttype filter hook input priority filter; policy accept;",
        f'\t\ttcp dport {port} iifname "lo" accept',
    ]
    if v4:
        lines.append(f"\t\ttcp dport {port} ip saddr {{ {', '.join(v4)} }} accept")
    if v6:
        lines.append(f"\t\ttcp dport {port} ip6 saddr {{ {', '.join(v6)} }} accept")
    lines += [f"\t\ttcp dport {port} reject with tcp reset", "\t}", "}", ""]
    return "\n".join(lines)


def unit_file() -> str:
    """Loads the rules at boot before the network comes up and before ollama.service (whose drop-in requires it)."""
    return f"""\
{HEADER}
[Unit]
Description=ollama-claude: only ollama_allowed_clients reach Ollama (nftables table inet {TABLE})
DefaultDependencies=no
Wants=network-pre.target
Before=network-pre.target shutdown.target ollama.service
Conflicts=shutdown.target

[Service]
Type=oneshot
RemainAfterExit=yes
ExecStart=nft -f {RULES_FILE}
ExecReload=nft -f {RULES_FILE}

[Install]
WantedBy=sysinit.target
"""


def _addresses(right: Any) -> str:
    """An address match's right side (address, prefix, range or set of them) as merged networks."""
    items = right["set"] if isinstance(right, dict) and "set" in right else [right]
    found = []
    for item in items:
        if isinstance(item, str):
            found.append(ip_network(item))
        elif isinstance(item, dict) and "prefix" in item:
            found.append(ip_network(f"{item['prefix']['addr']}/{item['prefix']['len']}", strict=False))
        elif isinstance(item, dict) and "range" in item:
            low, high = (ip_address(end) for end in item["range"])
            found.extend(summarize_address_range(low, high))
        else:
            return json.dumps(right, sort_keys=True)
    return " ".join(str(n) for n in collapse_addresses(found))


def _expression(expr: dict[str, Any]) -> str:
    if "match" in expr and expr["match"].get("op") == "==":
        left, right = expr["match"]["left"], expr["match"]["right"]
        if left == {"payload": {"protocol": "tcp", "field": "dport"}}:
            return f"tcp dport {right}"
        if left == {"meta": {"key": "iifname"}}:
            return f"iifname {right}"
        payload = left.get("payload", {}) if isinstance(left, dict) else {}
        if payload.get("field") == "saddr" and payload.get("protocol") in ("ip", "ip6"):
            return f"{payload['protocol']} saddr {_addresses(right)}"
    if expr in ({"accept": None}, {"drop": None}):
        return next(iter(expr))
    if "reject" in expr:
        return f"reject {(expr['reject'] or {}).get('type', '')}".strip()
    return json.dumps(expr, sort_keys=True)  # anything we do not write: compares unequal, so the load replaces it


def listed(document: dict[str, Any]) -> dict[str, Any]:
    """
    ``nft -j list table inet ollama_claude`` reduced to ``{"chains": {name: [type, hook, prio, policy]},
    "rules": {chain: [[expression, ...], ...]}}``: what decides whether the live table is the one we would load.
    """
    chains: dict[str, list[Any]] = {}
    found: dict[str, list[list[str]]] = {}
    for item in document.get("nftables", []):
        if "chain" in item:
            chain = item["chain"]
            chains[chain["name"]] = [chain.get("type"), chain.get("hook"), chain.get("prio"), chain.get("policy")]
            found.setdefault(chain["name"], [])
        elif "rule" in item:
            rule = item["rule"]
            found.setdefault(rule["chain"], []).append([_expression(expr) for expr in rule.get("expr", [])])
    return {"chains": chains, "rules": found}


def wanted(port: int, clients: list[str]) -> dict[str, Any]:
    """The table we load, in the form ``listed`` gives."""
    return {"chains": {CHAIN: list(CHAIN_SPEC)}, "rules": {CHAIN: rules(port, clients)}}
