"""Who holds the Ollama port: our ollama.service is fine, anything else fails the host before any change."""

from __future__ import annotations

from harness import run_operation

from ollama_claude.ollama import port

OURS = {"pid": 90, "unit": "ollama.service", "name": "ollama", "exe": "/usr/local/lib/ollama-claude/ollama/0.16.3/bin/ollama"}
USERS = {"pid": 4242, "unit": None, "name": "ollama", "exe": "/home/dev/bin/ollama"}


def listeners(*processes, listening=True):
    return {"PortListeners": {"listening": listening, "processes": list(processes)}}


def test_fact_reads_pid_unit_name_and_executable():
    output = ["listening", "proc 4242 - python3 /usr/bin/python3.11", "proc 90 ollama.service ollama /usr/local/bin/x"]
    assert port.PortListeners().process(output) == {"listening": True, "processes": [
        {"pid": 4242, "unit": None, "name": "python3", "exe": "/usr/bin/python3.11"},
        {"pid": 90, "unit": "ollama.service", "name": "ollama", "exe": "/usr/local/bin/x"},
    ]}
    assert port.PortListeners().process([]) == {"listening": False, "processes": []}


def test_free_port_and_our_service_are_noops():
    for facts in (listeners(listening=False), listeners(OURS)):
        commands, noops = run_operation(port.port_is_ours, facts, port=11434, base_url="http://127.0.0.1:11434")
        assert commands == [] and noops


def test_a_users_ollama_serve_fails_the_host_naming_it_and_the_choices():
    commands, _ = run_operation(port.port_is_ours, listeners(USERS), port=11434, base_url="http://127.0.0.1:11434")
    assert len(commands) == 1 and commands[0].endswith("exit 1")
    message = commands[0]
    assert "testhost: port 11434 is already held by ollama (pid 4242, /home/dev/bin/ollama)" in message
    assert "nothing was changed" in message and "stop it" in message
    assert "ollama_enabled = False" in message and "ollama_base_url = http://127.0.0.1:11434" in message


def test_a_distro_packages_unit_is_named():
    distro = {"pid": 7, "unit": "ollama-distro.service", "name": "ollama", "exe": "/usr/bin/ollama"}
    commands, _ = run_operation(port.port_is_ours, listeners(distro), port=11434, base_url="http://h:11434")
    assert "ollama (pid 7, /usr/bin/ollama, unit ollama-distro.service)" in commands[0]


def test_a_listener_this_connection_cannot_see_still_fails():
    commands, _ = run_operation(port.port_is_ours, listeners(), port=11434, base_url="http://h:11434")
    assert "a process this connection cannot see" in commands[0]
