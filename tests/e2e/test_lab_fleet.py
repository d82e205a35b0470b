"""The session lab itself: unique hosts on a closed network, background services and host_data for other lab parts."""

import json
import re
import subprocess
import sys
from pathlib import Path

from ollama_claude.lab.inventory import lab_inventory


def test_hosts_have_their_own_name_machine_id_and_host_key(lab):
    identities = [
        lab.ssh(
            host, "hostname; cat /etc/machine-id; cut -d' ' -f2 /etc/ssh/ssh_host_ed25519_key.pub", check=True
        ).stdout.split()
        for host in ("gpu1", "gpu2")
    ]
    (name1, machine_id1, key1), (name2, machine_id2, key2) = identities
    assert (name1, name2) == ("gpu1", "gpu2")
    assert machine_id1 != machine_id2 and key1 != key2


def test_hosts_run_systemd_and_resolve_localhost_and_each_other(lab):
    result = lab.ssh(
        "gpu1", "systemctl is-system-running --wait; getent ahostsv4 localhost; getent hosts gpu2"
    )
    failed_units = lab.ssh("gpu1", "systemctl --failed --no-legend; journalctl -b -p err --no-pager | tail -20")
    assert result.stdout.splitlines()[0] == "running", failed_units.stdout
    gpu2_address = lab.require_state().host("gpu2").address.split("/")[0]
    assert "127.0.0.1" in result.stdout, result
    assert re.search(rf"^{re.escape(gpu2_address)}\s+gpu2$", result.stdout, re.MULTILINE), result


def test_hosts_reach_each_other_over_ssh_port(lab):
    assert lab.ssh("gpu1", "exec 3<>/dev/tcp/gpu2/22 && head -c 7 <&3", check=True).stdout == "SSH-2.0"


def test_the_bridge_does_not_forward_lab_traffic_anywhere(lab):
    bridge = lab.require_state().bridge
    assert Path(f"/proc/sys/net/ipv4/conf/{bridge}/forwarding").read_text().strip() == "0"
    assert lab.ssh("gpu1", "cat /etc/resolv.conf", check=True).stdout == ""


def test_a_service_on_the_gateway_is_reachable_from_hosts_and_stopped_on_request(lab, tmp_path):
    (tmp_path / "index.txt").write_text("from the gateway\n")
    gateway = lab.require_state().gateway.split("/")[0]
    service = lab.start_service(
        "test-http",
        [sys.executable, "-m", "http.server", "--bind", gateway, "18080", "--directory", str(tmp_path)],
    )
    try:
        fetch = f"for i in $(seq 50); do curl -fsS http://{gateway}:18080/index.txt && break; sleep 0.1; done"
        assert lab.ssh("gpu2", fetch, check=True).stdout == "from the gateway\n"
    finally:
        lab.stop_service("test-http")
    assert not service.process.alive()
    assert "test-http" not in [s.name for s in lab.require_state().services]


def test_host_data_reaches_the_inventory(lab):
    lab.set_host_data(lab_probe="http://10.213.1.1:18080")
    try:
        data = dict(lab_inventory(lab.name, lab.state_root)["gpu"])["gpu2"]
        assert data["lab_probe"] == "http://10.213.1.1:18080"
    finally:
        state = lab.require_state()
        state.host_data.pop("lab_probe")
        state.save()


def test_cli_status_reports_every_host_running_and_reachable(lab):
    result = subprocess.run(
        [
            str(Path(sys.executable).parent / "ollama-claude"),
            "lab",
            "status",
            "--json",
            "--name",
            lab.name,
            "--state-dir",
            str(lab.state_root),
        ],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert [(h["name"], h["running"], h["ssh"]) for h in json.loads(result.stdout)] == [
        ("gpu1", True, True),
        ("gpu2", True, True),
    ]
