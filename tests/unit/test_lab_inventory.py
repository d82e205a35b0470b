"""inventories/lab.py's data: hosts grouped by their lab groups, connection data over the shared host_data."""

import pytest
from test_lab_state import sample_state

from ollama_claude.lab.errors import LabError
from ollama_claude.lab.fleet import HostSpec
from ollama_claude.lab.inventory import inventory_groups, lab_inventory


def test_hosts_are_grouped_by_their_groups_with_strict_ssh_data(tmp_path):
    state = sample_state(tmp_path)
    laptop = {
        **vars(state.hosts[0]),
        "name": "laptop1",
        "groups": ["laptops", "gpu"],
        "address": "10.213.1.12",
    }
    state.hosts.append(type(state.hosts[0])(**laptop))
    groups = inventory_groups(state)
    assert [name for name, _ in groups["gpu"]] == ["gpu1", "laptop1"]
    assert [name for name, _ in groups["laptops"]] == ["laptop1"]
    data = dict(groups["laptops"])["laptop1"]
    assert data["ssh_hostname"] == "10.213.1.12"
    assert data["ssh_user"] == "root"
    assert data["ssh_key"] == state.ssh_key
    assert data["ssh_known_hosts_file"] == state.known_hosts
    assert data["ssh_strict_host_key_checking"] == "yes"
    assert data["ollama_download_url"] == "http://10.213.1.1:8080"


def test_host_data_cannot_override_connection_data(tmp_path):
    state = sample_state(tmp_path)
    state.host_data["ssh_user"] = "dev"
    assert dict(inventory_groups(state)["gpu"])["gpu1"]["ssh_user"] == "root"


def test_inventory_of_a_lab_that_is_not_up_says_how_to_start_it(tmp_path):
    with pytest.raises(LabError, match="lab 'nolab' is not up .*ollama-claude lab up"):
        lab_inventory("nolab", tmp_path)


def test_inventory_reads_the_saved_state(tmp_path):
    sample_state(tmp_path / "test").save()
    assert [name for name, _ in lab_inventory("test", tmp_path)["gpu"]] == ["gpu1"]


@pytest.mark.parametrize(
    ("text", "spec"),
    [
        ("gpu1", HostSpec("gpu1", ("gpu",))),
        ("laptop1:laptops", HostSpec("laptop1", ("laptops",))),
        ("box:gpu+laptops", HostSpec("box", ("gpu", "laptops"))),
        ("gpu2@trixie", HostSpec("gpu2", ("gpu",), "trixie")),
        ("gpu2:gpu@trixie", HostSpec("gpu2", ("gpu",), "trixie")),
        ("gpu3:gpu@bookworm", HostSpec("gpu3", ("gpu",), "bookworm")),
    ],
)
def test_host_specs_carry_groups(text, spec):
    assert HostSpec.parse(text) == spec


def test_group_that_pyinfra_cannot_name_is_refused():
    with pytest.raises(LabError, match="host 'box': group 'my-group'"):
        HostSpec.parse("box:my-group")


def test_debian_release_the_lab_cannot_build_is_refused():
    with pytest.raises(LabError, match="host 'gpu2': lab hosts run Debian bookworm or trixie, not 'sid'"):
        HostSpec.parse("gpu2:gpu@sid")
