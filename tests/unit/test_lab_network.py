"""Lab addressing and naming, without touching the machine's network."""

import ipaddress

import pytest

from ollama_claude.lab.errors import LabError
from ollama_claude.lab.network import (
    IFNAMSIZ,
    check_name,
    conflicts,
    gateway_address,
    host_addresses,
    interface_name,
)


def test_gateway_is_the_subnets_first_address():
    assert gateway_address("10.213.0.0/24") == ipaddress.IPv4Interface("10.213.0.1/24")


def test_hosts_are_numbered_from_eleven():
    assert [str(a) for a in host_addresses("10.213.1.0/24", 3)] == [
        "10.213.1.11/24",
        "10.213.1.12/24",
        "10.213.1.13/24",
    ]


def test_subnet_too_small_for_the_hosts_is_refused_with_its_capacity():
    with pytest.raises(LabError, match="holds at most 4 lab hosts, not 5"):
        host_addresses("10.213.1.0/28", 5)


@pytest.mark.parametrize("subnet", ["10.213.0.0/33", "not-a-subnet", "10.213.0.1/24", "8.8.8.0/24"])
def test_bad_or_public_subnets_are_refused(subnet):
    with pytest.raises(LabError, match=subnet.split("/")[0]):
        host_addresses(subnet, 1)


def test_short_interface_names_stay_readable():
    assert interface_name("lab", "gpu1") == "oc-lab-gpu1"


def test_long_interface_names_fit_ifnamsiz_and_stay_distinct():
    first = interface_name("integration", "laptop-number-1")
    second = interface_name("integration", "laptop-number-2")
    assert len(first) <= IFNAMSIZ and len(second) <= IFNAMSIZ
    assert first != second
    assert first == interface_name("integration", "laptop-number-1")


@pytest.mark.parametrize("name", ["", "Gpu1", "gpu_1", "-gpu", "gpu-", "a" * 33, "gpu 1"])
def test_names_that_cannot_be_hostnames_are_refused(name):
    with pytest.raises(LabError, match="host name"):
        check_name("host", name)


def addr(ifname, cidr):
    local, prefixlen = cidr.split("/")
    return {"ifname": ifname, "addr_info": [{"family": "inet", "local": local, "prefixlen": int(prefixlen)}]}


def test_address_of_another_interface_in_the_subnet_is_a_conflict():
    found = conflicts("10.213.0.0/24", [addr("eth0", "10.213.0.5/16")], [], own_bridge="oc-lab")
    assert found == ["address 10.213.0.5/16 on eth0"]


def test_overlapping_route_is_a_conflict_but_default_and_local_routes_are_not():
    routes = [
        {"dst": "default", "gateway": "192.0.2.1", "dev": "eth0"},
        {"dst": "10.213.0.0/16", "dev": "tun0"},
        {"type": "local", "dst": "10.213.0.1", "dev": "oc-other"},
    ]
    assert conflicts("10.213.0.0/24", [], routes, own_bridge="oc-lab") == ["route 10.213.0.0/16 via tun0"]


def test_the_labs_own_bridge_left_by_a_crash_is_not_a_conflict():
    found = conflicts(
        "10.213.0.0/24",
        [addr("oc-lab", "10.213.0.1/24")],
        [{"dst": "10.213.0.0/24", "dev": "oc-lab"}],
        "oc-lab",
    )
    assert found == []


def test_neighbouring_subnet_is_free():
    assert conflicts("10.213.1.0/24", [addr("oc-lab", "10.213.0.1/24")], [], own_bridge="oc-test") == []
