"""The on-host record of pins and verify results: what changes it and what does not."""

from ollama_claude.rollout.hoststate import parse_host_state, pins_record, verify_key, version_in_path

OLD = {"ollama_version": "0.18.0", "claude_code_version": "2.1.197"}
NEW = {"ollama_version": "0.32.15", "claude_code_version": "2.1.332"}


def test_first_record_takes_what_the_host_ran_before():
    record = pins_record(None, OLD, NEW, "t1")
    assert record == {"current": {**NEW, "since": "t1"}, "previous": {**OLD, "since": None}}


def test_same_pins_again_is_no_change():
    recorded = pins_record(None, OLD, NEW, "t1")
    assert pins_record(recorded, NEW, NEW, "t2") is None


def test_fresh_host_then_upgrade_then_switch_back():
    fresh = pins_record(None, {"ollama_version": None, "claude_code_version": None}, OLD, "t1")
    assert fresh == {"current": {**OLD, "since": "t1"}, "previous": None}
    upgraded = pins_record(fresh, OLD, NEW, "t2")
    assert upgraded["previous"] == {**OLD, "since": "t1"} and upgraded["current"]["since"] == "t2"
    back = pins_record(upgraded, NEW, OLD, "t3")
    assert back["current"] == {**OLD, "since": "t3"} and back["previous"]["ollama_version"] == "0.32.15"


def test_record_without_one_for_a_host_already_on_the_pins():
    assert pins_record(None, NEW, NEW, "t1") == {"current": {**NEW, "since": None}, "previous": None}


def test_parse_fact_output():
    output = ["--ollama-claude-state--state", '{"current": {"ollama_version": "0.18.0"}}',
              "--ollama-claude-state--verify", "{broken", "--ollama-claude-state--ollama_link",
              "/usr/local/lib/ollama-claude/ollama/0.18.0/bin/ollama", "--ollama-claude-state--claude_link"]
    parsed = parse_host_state(output)
    assert parsed == {"state": {"current": {"ollama_version": "0.18.0"}}, "verify": None,
                      "ollama_link": "0.18.0", "claude_link": None}


def test_version_in_path():
    assert version_in_path("/opt/claude-code/2.1.332/claude") == "2.1.332"
    assert version_in_path("/usr/bin/ollama") is None


def test_verify_key_ignores_time_and_messages():
    items = [{"user": "dev", "number": 7, "status": "pass"}]
    first = {**NEW, "status": "pass", "time": "t1", "items": items, "seconds": 3.0}
    assert verify_key(first) == verify_key({**first, "time": "t2", "seconds": 9.0})
    assert verify_key(first) != verify_key({**first, "items": [{**items[0], "status": "fail"}]})


def test_commands_write_and_read_the_record_on_macos_under_the_users_home(tmp_path):
    """The same commands on a Darwin host (a fake uname, and a perl answering the account's home as Open Directory
    would): the record lands in the account's Library, read back, whatever HOME says (a pull-mode timer sets none)."""
    import os
    import subprocess

    from ollama_claude.rollout.hoststate import STATE_FILE, HostState, write_json_command

    fake_bin = tmp_path / "bin"
    fake_bin.mkdir()
    (fake_bin / "uname").write_text("#!/bin/sh\necho Darwin\n")
    (fake_bin / "perl").write_text(f"#!/bin/sh\n[ \"$2\" = 'print((getpwuid $<)[7])' ] && printf %s {tmp_path}/home\n")
    for tool in ("uname", "perl"):
        (fake_bin / tool).chmod(0o755)
    env = {key: value for key, value in os.environ.items() if key != "HOME"}
    env["PATH"] = f"{fake_bin}:{os.environ['PATH']}"
    record = {"current": {**NEW, "since": "t1"}, "previous": None}
    subprocess.run(["sh", "-c", write_json_command(STATE_FILE, record)], env=env, check=True)
    written = tmp_path / "home" / "Library" / "Application Support" / "ollama-claude" / STATE_FILE
    assert written.is_file() and oct(written.stat().st_mode & 0o777) == "0o644"
    output = subprocess.run(["sh", "-c", HostState().command()], env=env, check=True, capture_output=True,
                            text=True).stdout.splitlines()
    assert parse_host_state(output)["state"] == record
