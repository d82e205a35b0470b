"""deploys/hello.py through the pyinfra CLI on two lab hosts: the result is on the hosts, a rerun changes nothing."""

import pytest

HELLO_FILE = "/etc/ollama-claude-hello"
HELLO_UNIT = "ollama-claude-hello.service"


@pytest.fixture(scope="module")
def first_run(pyinfra_run):
    return pyinfra_run("deploys/hello.py")


def test_first_run_changes_every_host(first_run):
    assert first_run.rc == 0, first_run
    assert first_run.errors == 0, first_run
    assert first_run.changes > 0, first_run


@pytest.mark.parametrize("host", ["gpu1", "gpu2"])
def test_hello_file_has_content_mode_and_owner(lab, first_run, host):
    result = lab.ssh(host, f"stat -c '%a %U %G' {HELLO_FILE} && cat {HELLO_FILE}", check=True)
    assert result.stdout == "640 root dev\nhello from ollama-claude\n"


@pytest.mark.parametrize("host", ["gpu1", "gpu2"])
def test_hello_unit_is_enabled_and_active(lab, first_run, host):
    result = lab.ssh(host, f"systemctl is-enabled {HELLO_UNIT}; systemctl is-active {HELLO_UNIT}")
    assert result.stdout.split() == ["enabled", "active"], result


def test_dev_user_reads_the_file_through_its_group(lab, first_run):
    assert lab.ssh("gpu1", f"cat {HELLO_FILE}", user="dev", check=True).stdout == "hello from ollama-claude\n"


def test_second_run_reports_no_changes(pyinfra_run, first_run):
    second = pyinfra_run("deploys/hello.py")
    assert second.rc == 0, second
    assert second.changes == 0, second
    assert second.results()["Grand total"]["no_change"] == second.results()["Grand total"]["hosts"], second
