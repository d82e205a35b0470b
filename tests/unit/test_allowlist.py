"""The allowlist's nftables rules: the file we load, nft's JSON listing reduced for comparison, the fact, the drop-in."""

from __future__ import annotations

import json
import os
import shutil
import subprocess

import pytest

from ollama_claude.allowlist import rules
from ollama_claude.allowlist.facts import NftAllowlist
from ollama_claude.ollama import config
from ollama_claude.settings import Settings

#: `nft -j list table inet ollama_claude` (nftables 1.0.6, Debian 12) after loading rules_file(11434, [one /32]).
LISTED_ONE = {"nftables": [
    {"metainfo": {"version": "1.0.6", "release_name": "Lester Gooch #5", "json_schema_version": 1}},
    {"table": {"family": "inet", "name": "ollama_claude", "handle": 2}},
    {"chain": {"family": "inet", "table": "ollama_claude", "name": "input", "handle": 1, "type": "filter",
               "hook": "input", "prio": 0, "policy": "accept"}},
    {"rule": {"family": "inet", "table": "ollama_claude", "chain": "input", "handle": 2, "expr": [
        {"match": {"op": "==", "left": {"payload": {"protocol": "tcp", "field": "dport"}}, "right": 11434}},
        {"match": {"op": "==", "left": {"meta": {"key": "iifname"}}, "right": "lo"}}, {"accept": None}]}},
    {"rule": {"family": "inet", "table": "ollama_claude", "chain": "input", "handle": 3, "expr": [
        {"match": {"op": "==", "left": {"payload": {"protocol": "tcp", "field": "dport"}}, "right": 11434}},
        {"match": {"op": "==", "left": {"payload": {"protocol": "ip", "field": "saddr"}}, "right": "10.213.61.12"}},
        {"accept": None}]}},
    {"rule": {"family": "inet", "table": "ollama_claude", "chain": "input", "handle": 4, "expr": [
        {"match": {"op": "==", "left": {"payload": {"protocol": "tcp", "field": "dport"}}, "right": 11434}},
        {"reject": {"type": "tcp reset"}}]}},
]}


def test_nfts_listing_of_the_loaded_table_equals_what_we_want():
    assert rules.listed(LISTED_ONE) == rules.wanted(11434, ["10.213.61.12/32"])
    assert rules.listed(LISTED_ONE) != rules.wanted(11434, ["10.213.61.0/24"])
    assert rules.listed(LISTED_ONE) != rules.wanted(8080, ["10.213.61.12/32"])


def test_an_extra_rule_or_a_drop_policy_someone_added_is_a_difference():
    extra = json.loads(json.dumps(LISTED_ONE))
    extra["nftables"].insert(3, {"rule": {"family": "inet", "table": "ollama_claude", "chain": "input", "expr": [
        {"accept": None}]}})
    assert rules.listed(extra) != rules.wanted(11434, ["10.213.61.12/32"])
    policy = json.loads(json.dumps(LISTED_ONE))
    policy["nftables"][2]["chain"]["policy"] = "drop"
    assert rules.listed(policy) != rules.wanted(11434, ["10.213.61.12/32"])


def test_address_sets_prefixes_and_ranges_compare_as_merged_networks():
    right = {"set": [{"prefix": {"addr": "10.0.4.0", "len": 24}}, "10.1.2.3",
                     {"range": ["10.9.0.0", "10.9.1.255"]}]}
    expr = {"match": {"op": "==", "left": {"payload": {"protocol": "ip", "field": "saddr"}}, "right": right}}
    assert rules._expression(expr) == "ip saddr 10.0.4.0/24 10.1.2.3/32 10.9.0.0/23"


def test_networks_have_host_bits_cleared_and_overlaps_merged():
    assert rules.networks(["10.0.4.7/24", "10.0.4.0/25", "10.1.2.3", "fd00::1/64"]) == (
        ["10.0.4.0/24", "10.1.2.3/32"], ["fd00::/64"])


def test_rules_file_loads_loopback_then_clients_then_reset():
    text = rules.rules_file(11434, ["10.0.4.0/24", "fd00::/64"])
    body = [line.strip() for line in text.splitlines() if not line.startswith("#")]
    assert body[:3] == ["table inet ollama_claude", "delete table inet ollama_claude", "table inet ollama_claude {"]
    assert body[5:9] == [
        'tcp dport 11434 iifname "lo" accept',
        "tcp dport 11434 ip saddr { 10.0.4.0/24 } accept",
        "tcp dport 11434 ip6 saddr { fd00::/64 } accept",
        "tcp dport 11434 reject with tcp reset",
    ]


def _nft_in_new_netns() -> bool:
    return os.geteuid() == 0 and bool(shutil.which("nft")) and bool(shutil.which("unshare"))


@pytest.mark.skipif(not _nft_in_new_netns(), reason="needs root, nft and unshare (a private network namespace)")
def test_real_nft_loads_the_file_twice_and_lists_exactly_what_we_want(tmp_path):
    """In a throwaway network namespace: the load is repeatable and leaves another table alone."""
    clients = ["10.0.4.0/24", "10.1.2.3/32", "10.1.2.9", "fd00::/64"]
    path = tmp_path / "allowlist.nft"
    path.write_text(rules.rules_file(11434, clients))
    script = (f"nft add table inet users_own && nft -f {path} && nft -f {path} && "
              "nft list tables && echo --- && nft -j list table inet ollama_claude")
    done = subprocess.run(["unshare", "-n", "sh", "-c", script], capture_output=True, text=True, check=True)
    tables, _, listing = done.stdout.partition("---\n")
    assert "table inet users_own" in tables
    assert rules.listed(json.loads(listing)) == rules.wanted(11434, clients)


def test_fact_states():
    fact = NftAllowlist()
    assert fact.process(["missing"]) == {"state": "missing", "error": None, "table": None}
    assert fact.process(["absent"])["state"] == "absent"
    assert fact.process(["present", json.dumps(LISTED_ONE)])["table"] == rules.wanted(11434, ["10.213.61.12"])
    unusable = fact.process(["unusable", ("Operation not permitted (you must be root) netlink: Error: cache "
                                         "initialization failed: Operation not permitted ")])
    assert unusable["state"] == "unusable" and "Operation not permitted" in unusable["error"]
    assert fact.process(["present", "not json"])["state"] == "unusable"


def test_drop_in_requires_the_allowlist_unit_only_when_enforced():
    enforced = config.drop_in({"OLLAMA_HOST": "10.0.4.20:11434"}, ["10.0.4.0/24"], rules.UNIT)
    assert f"[Unit]\n# ollama_allowed_clients: the server starts only once our nftables table is loaded.\n" \
           f"Requires={rules.UNIT}\nAfter={rules.UNIT}\n" in enforced
    assert enforced.index("[Unit]") < enforced.index("[Service]")
    assert "[Unit]" not in config.drop_in({"OLLAMA_HOST": "10.0.4.20:11434"}, ["10.0.4.0/24"])


def test_boot_unit_loads_the_rules_before_the_network_and_the_server():
    unit = rules.unit_file()
    assert f"ExecStart=nft -f {rules.RULES_FILE}" in unit
    assert "Before=network-pre.target shutdown.target ollama.service" in unit
    assert "WantedBy=sysinit.target" in unit


def test_unenforced_lan_is_off_unless_asked():
    assert Settings().ollama_allow_unenforced_lan is False
    with pytest.raises(ValueError, match="ollama_allowed_clients"):
        Settings(ollama_allowed_clients=["10.0.4.0/33"])
