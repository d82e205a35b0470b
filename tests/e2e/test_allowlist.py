"""
ollama_allowed_clients enforced on the lab's hosts (cgroup v1, where systemd's IPAddressAllow= does nothing): gpu1
serves its lab address to gpu2 only. gpu2 gets 200, gpu3 is refused within seconds (before: 200, the deploy only
warned); a second run changes nothing; the table survives a reboot (our unit loads it before Ollama); a table
someone deleted comes back on the next run; uninstall removes table, unit and rules file.

Run with OLLAMA_CLAUDE_TEST_LAB=allow OLLAMA_CLAUDE_TEST_SUBNET=10.213.61.0/24.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from ollama_claude.lab.release_mirror import serve_release_mirror

pytestmark = [pytest.mark.lab]

SERVER, ALLOWED, OTHER = "gpu1", "gpu2", "gpu3"
TABLE = "inet ollama_claude"
UNIT = "ollama-claude-allowlist.service"
RULES = "/etc/ollama-claude/allowlist.nft"
DEPLOY = "from ollama_claude.ollama.deploy import install_ollama\n\ninstall_ollama()\n"


@pytest.fixture(scope="module")
def lab(request):
    """Three hosts: the server, the one client on its list, and one that is not (the shared lab helper)."""
    shared = request.config.pluginmanager.get_plugin(str(Path(__file__).resolve().parents[1] / "conftest.py"))
    yield from shared.disposable_lab(shared.TEST_LAB, shared.TEST_SUBNET, 3)


def address(lab, host: str) -> str:
    return lab.require_state().host(host).address.split("/")[0]


def on(lab, host: str, command: str, check: bool = True) -> str:
    return lab.ssh(host, command, check=check).stdout.strip()


def fetch(lab, client: str) -> str:
    """HTTP code from the server's /api/version as ``client`` sees it; 000 + curl's exit code when none came."""
    url = f"http://{address(lab, SERVER)}:11434/api/version"
    return on(lab, client, f"curl -s -o /dev/null -w '%{{http_code}}' --connect-timeout 5 --max-time 10 {url}; "
                           "echo \" $?\"", check=False)


@pytest.fixture(scope="module")
def ollama_only(lab, tmp_path_factory) -> str:
    serve_release_mirror(lab)
    path = tmp_path_factory.mktemp("allowlist") / "ollama_only.py"
    path.write_text(DEPLOY)
    return str(path)


@pytest.fixture(scope="module")
def deploy(lab, pyinfra_run, ollama_only):
    data = {"ollama_host": address(lab, SERVER), "ollama_allow_lan": True,
            "ollama_allowed_clients": [f"{address(lab, ALLOWED)}/32"]}
    return lambda **more: pyinfra_run(ollama_only, data={**data, **more}, hosts=[SERVER])


def test_only_the_listed_client_reaches_the_server_and_a_rerun_changes_nothing(lab, deploy):
    assert on(lab, SERVER, "stat -fc %T /sys/fs/cgroup") != "cgroup2fs"  # IPAddressAllow= cannot help here
    first = deploy()
    assert first.rc == 0, first
    assert fetch(lab, ALLOWED) == "200 0"
    code, curl_exit = fetch(lab, OTHER).split()
    assert code == "000" and curl_exit == "7", (code, curl_exit)  # 7: connection refused (reset by our rule)
    # The host itself, on its own lab address (the server binds only that): loopback interface, accepted.
    assert on(lab, SERVER, f"curl -s -o /dev/null -w '%{{http_code}}' http://{address(lab, SERVER)}:11434/api/version") == "200"
    assert on(lab, SERVER, f"systemctl is-enabled {UNIT}") == "enabled"
    assert f"Requires={UNIT}" in on(lab, SERVER, "systemctl cat ollama.service")

    second = deploy()
    assert second.rc == 0, second
    assert second.changes == 0, second
    assert "already allows only loopback" in second.output or second.results()


def test_the_table_is_back_after_a_reboot_and_after_someone_deletes_it(lab, deploy):
    lab.restart_host(SERVER)
    on(lab, SERVER, f"for i in $(seq 100); do curl -fs http://{address(lab, SERVER)}:11434/api/version >/dev/null "
                    "&& break; sleep 0.2; done")
    assert on(lab, SERVER, f"nft list table {TABLE} >/dev/null && echo loaded", check=False) == "loaded"
    assert fetch(lab, ALLOWED) == "200 0"
    assert fetch(lab, OTHER).split()[1] == "7"

    on(lab, SERVER, f"nft delete table {TABLE}")
    assert fetch(lab, OTHER).startswith("200")  # open: what the next run must notice
    again = deploy()
    assert again.rc == 0, again
    assert again.changes == 1, again  # only the table load
    assert fetch(lab, OTHER).split()[1] == "7"


def test_a_changed_list_is_loaded_and_an_emptied_one_removes_the_table(lab, deploy):
    changed = deploy(ollama_allowed_clients=[f"{address(lab, OTHER)}/32"])
    assert changed.rc == 0, changed
    assert fetch(lab, OTHER) == "200 0"
    assert fetch(lab, ALLOWED).split()[1] == "7"
    emptied = deploy(ollama_allowed_clients=[])  # the LAN bind stays, as the user now asks: open to all
    assert emptied.rc == 0, emptied
    assert on(lab, SERVER, f"nft list table {TABLE} 2>/dev/null || echo gone", check=False) == "gone"
    assert on(lab, SERVER, f"ls /etc/systemd/system/{UNIT} {RULES} 2>/dev/null; true") == ""
    assert "Requires=" not in on(lab, SERVER, "systemctl cat ollama.service")
    assert fetch(lab, ALLOWED) == "200 0" and fetch(lab, OTHER) == "200 0"
    back = deploy()
    assert back.rc == 0, back
    assert fetch(lab, ALLOWED) == "200 0"


def test_uninstall_removes_table_unit_and_rules(lab, pyinfra_run):
    run = pyinfra_run("deploys/uninstall.py", data={"uninstall_scope": "ollama"}, hosts=[SERVER])
    assert run.rc == 0, run
    assert on(lab, SERVER, f"nft list table {TABLE} 2>/dev/null || echo gone", check=False) == "gone"
    assert on(lab, SERVER, f"ls /etc/systemd/system/{UNIT} {RULES} /etc/ollama-claude 2>/dev/null; true") == ""
    assert on(lab, SERVER, f"systemctl is-enabled {UNIT} 2>/dev/null; true") in ("", "not-found")


def test_a_host_where_the_list_cannot_hold_fails_before_ollama_changes_unless_opted_in(lab, pyinfra_run, ollama_only):
    """gpu3 without nft and with apt-get unable to fetch it (no repository reachable), then with no package manager."""
    data = {"ollama_host": address(lab, OTHER), "ollama_allow_lan": True,
            "ollama_allowed_clients": [f"{address(lab, ALLOWED)}/32"]}
    url = f"http://{address(lab, OTHER)}:11434/api/version"
    on(lab, OTHER, "mv /usr/sbin/nft /usr/sbin/nft.hidden")
    try:
        run = pyinfra_run(ollama_only, data=data, hosts=[OTHER])
        assert run.rc != 0, run
        assert f"{OTHER}: installing nftables with apt-get failed, so ollama_allowed_clients cannot be enforced" \
            in run.output, run
        assert on(lab, OTHER, "ls /usr/local/bin/ollama /etc/systemd/system/ollama.service 2>/dev/null; true") == ""
        assert on(lab, ALLOWED, f"curl -s --max-time 5 {url}; echo $?", check=False) == "7"  # nothing listens

        on(lab, OTHER, "mv /usr/bin/apt-get /usr/bin/apt-get.hidden")
        refused = pyinfra_run(ollama_only, data=data, hosts=[OTHER])
        assert refused.rc != 0, refused
        assert (f"{OTHER}: ollama_allowed_clients cannot be enforced: nft (nftables) is missing and no known "
                "package manager") in refused.output, refused
        assert "ollama_allow_unenforced_lan = True" in refused.output
        assert on(lab, OTHER, "ls /usr/local/bin/ollama 2>/dev/null; true") == ""

        opted = pyinfra_run(ollama_only, data={**data, "ollama_allow_unenforced_lan": True},
                            hosts=[OTHER])
        assert opted.rc == 0, opted
        assert f"{OTHER}: ollama_allowed_clients is NOT enforced: nft (nftables) is missing" in opted.output, opted
        # As the user accepted, and was told: every client reaches it.
        assert on(lab, SERVER, f"curl -s -o /dev/null -w '%{{http_code}}' --max-time 5 {url}") == "200"
    finally:
        on(lab, OTHER, "for f in /usr/sbin/nft /usr/bin/apt-get; do [ -e $f.hidden ] && mv $f.hidden $f; done; true")
