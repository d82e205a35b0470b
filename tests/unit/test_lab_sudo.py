"""The lab user's sudo modes, and the inventory connecting as that user with the matching privilege data."""

import json

import pytest
from test_lab_state import sample_state

from ollama_claude.lab import sudo
from ollama_claude.lab.errors import LabError
from ollama_claude.lab.inventory import USER_ENV, connection_data, inventory_groups
from ollama_claude.lab.state import LabState


def test_sudoers_rule_per_mode():
    assert sudo.sudoers_line("nopasswd") == "dev ALL=(ALL:ALL) NOPASSWD: ALL\n"
    assert sudo.sudoers_line("password") == "dev ALL=(ALL:ALL) ALL\n"
    assert sudo.sudoers_line("none") is None


def test_unknown_mode_is_refused_naming_the_choices():
    with pytest.raises(LabError, match="nopasswd, password, none"):
        sudo.check_mode("sometimes")


def test_setup_script_checks_the_rule_before_moving_it_in_and_sets_the_password():
    script = sudo.setup_script("password", "s3cret")
    assert "echo dev:s3cret | chpasswd" in script
    assert script.index("visudo -cqf") < script.index(f"mv -f {sudo.SUDOERS_FILE}.new {sudo.SUDOERS_FILE}")
    assert f"rm -f {sudo.SUDOERS_FILE}" in sudo.setup_script("none", "s3cret")


def test_root_connection_has_no_privilege_data(tmp_path, monkeypatch):
    monkeypatch.delenv(USER_ENV, raising=False)
    state = sample_state(tmp_path)
    data = connection_data(state, state.hosts[0])
    assert data["ssh_user"] == "root" and "_sudo" not in data


def test_lab_user_connects_with_sudo_and_the_password_only_where_sudo_asks(tmp_path, monkeypatch):
    monkeypatch.setenv(USER_ENV, "dev")
    state = sample_state(tmp_path)
    state.dev_password = "s3cret"
    state.hosts.append(type(state.hosts[0])(**{**vars(state.hosts[0]), "name": "gpu2", "dev_sudo": "password"}))
    data = dict(inventory_groups(state)["gpu"])
    assert data["gpu1"]["ssh_user"] == "dev" and data["gpu1"]["_sudo"] is True
    assert "_sudo_password" not in data["gpu1"]
    assert data["gpu2"]["_sudo_password"] == "s3cret"


def test_state_written_before_sudo_modes_loads_with_the_default(tmp_path):
    state = sample_state(tmp_path)
    state.save()
    raw = json.loads((tmp_path / "state.json").read_text())
    del raw["dev_password"], raw["hosts"][0]["dev_sudo"]
    (tmp_path / "state.json").write_text(json.dumps(raw))
    assert LabState.load(tmp_path).hosts[0].dev_sudo == "nopasswd"
