"""The state file: everything a lab made survives a round trip, and pids are only trusted with their start time."""

import os

import pytest

from ollama_claude.lab.errors import LabError
from ollama_claude.lab.state import HostState, LabState, Process, ServiceState


def sample_state(lab_dir) -> LabState:
    return LabState(
        name="test",
        subnet="10.213.1.0/24",
        gateway="10.213.1.1/24",
        bridge="oc-test",
        dir=str(lab_dir),
        rootfs="/cache/rootfs/abc",
        ssh_key=f"{lab_dir}/ssh/id_ed25519",
        known_hosts=f"{lab_dir}/ssh/known_hosts",
        hosts=[
            HostState(
                name="gpu1",
                groups=["gpu"],
                address="10.213.1.11",
                netns="oc-test-gpu1",
                veth="oc-test-gpu1",
                dir=f"{lab_dir}/hosts/gpu1",
                root=f"{lab_dir}/hosts/gpu1/root",
                console_log=f"{lab_dir}/hosts/gpu1/console.log",
                overlay=True,
                process=Process(pid=1234, started=99),
            )
        ],
        services=[ServiceState(name="mirror", argv=["python3", "-m", "x"], log="m.log", process=None)],
        host_data={"ollama_download_url": "http://10.213.1.1:8080"},
    )


def test_state_round_trips_through_the_file(tmp_path):
    state = sample_state(tmp_path / "test")
    state.save()
    assert LabState.load(tmp_path / "test") == state


def test_missing_state_means_the_lab_is_not_up(tmp_path):
    assert LabState.load(tmp_path / "nothing") is None


def test_corrupt_state_names_the_file(tmp_path):
    (tmp_path / "state.json").write_text("{")
    with pytest.raises(LabError, match="state.json is corrupt"):
        LabState.load(tmp_path)


def test_unknown_host_lists_the_known_ones(tmp_path):
    with pytest.raises(LabError, match=r"no host 'gpu9' \(hosts: gpu1\)"):
        sample_state(tmp_path).host("gpu9")


def test_own_process_is_alive_and_a_reused_pid_is_not():
    me = Process.of(os.getpid())
    assert me.alive()
    assert not Process(me.pid, me.started + 1).alive()
    assert not Process(2**22 + 1, 1).alive()
