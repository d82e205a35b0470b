"""
The fact prefetch (ollama_claude.factcache) against a real pyinfra State and Host whose connector runs each
command in a local ``sh``: the batch script, its parsing, record then replay, invalidation, opt-outs, the switch.
"""

from __future__ import annotations

import json
import stat
import subprocess

import pytest
from pyinfra.api import Config, FactBase, Inventory, State, StringCommand
from pyinfra.api.command import QuoteString
from pyinfra.api.facts import ShortFactBase
from pyinfra.api.hiddenvalue import HiddenValue
from pyinfra.api.state import StateStage
from pyinfra.connectors.util import CommandOutput, OutputLine

from ollama_claude import factcache
from ollama_claude.factcache import batch_command, parse_batch, prefetch_facts


class FileText(FactBase):
    def command(self, path: str) -> StringCommand:
        return StringCommand("cat", QuoteString(path))


class Lines(FactBase):
    def command(self, count: int) -> str:
        return f"i=0; while [ $i -lt {count} ]; do echo line$i; i=$((i+1)); done; printf no-newline"

    def process(self, output):
        return list(output)


class Fails(FactBase):
    @staticmethod
    def default():
        return "the default"

    def command(self) -> str:
        return "echo partial; echo oops >&2; exit 4"


class NeedsMissing(FactBase):
    @staticmethod
    def default():
        return ["missing"]

    def requires_command(self) -> str:
        return "no-such-binary-ollama-claude"

    def command(self) -> str:
        return "no-such-binary-ollama-claude --version"


class Upper(ShortFactBase):
    fact = FileText

    def process_data(self, data):
        return (data or "").upper()


class SideEffect(FactBase):
    prefetch = False

    def command(self, path: str) -> str:
        return f"echo changed > {path}; echo ran"


class Secret(FactBase):
    def command(self, token) -> StringCommand:
        return StringCommand("echo", QuoteString(token), "| wc -c")


class LocalShell:
    """A connector that runs every command in a local sh and counts them (one count = one round trip)."""

    def __init__(self):
        self.commands: list[tuple[str, dict]] = []

    def run_shell_command(self, command, print_output=False, print_input=False, **kwargs):
        text = command.get_raw_value() if isinstance(command, StringCommand) else str(command)
        self.commands.append((text, kwargs))
        done = subprocess.run(["sh", "-c", text], capture_output=True, text=True, check=False)
        lines = [OutputLine("stdout", line) for line in done.stdout.splitlines()]
        lines += [OutputLine("stderr", line) for line in done.stderr.splitlines()]
        return done.returncode in (kwargs.get("_success_exit_codes") or [0]), CommandOutput(lines)

    def put_file(self, *args, **kwargs):
        self.commands.append(("put_file", {}))
        return True


def new_host():
    inventory = Inventory((["box"], {}))
    state = State(inventory, Config())
    state.set_stage(StateStage.Prepare)
    host = inventory.get_host("box")
    host.connector = LocalShell()
    host.connected = True
    return state, host


@pytest.fixture(autouse=True)
def cache(tmp_path, monkeypatch):
    monkeypatch.setenv(factcache.CACHE_DIR, str(tmp_path / "cache"))
    monkeypatch.delenv(factcache.SWITCH, raising=False)
    return tmp_path / "cache"


def ask_all(host, data):
    return {
        "text": host.get_fact(FileText, path=str(data)),
        "lines": host.get_fact(Lines, count=3),
        "fails": host.get_fact(Fails, _ignore_errors=True),
        "missing": host.get_fact(NeedsMissing),
        "upper": host.get_fact(Upper, path=str(data)),
        "absent": host.get_fact(FileText, path=str(data) + ".absent", _ignore_errors=True),
    }


def first_run(tmp_path):
    data = tmp_path / "data.txt"
    data.write_text("one\ntwo\n")
    state, host = new_host()
    prefetch = prefetch_facts("test", state, host)
    values = ask_all(host, data)
    state.trigger_callbacks("host_disconnect", host)  # the end of the run: the record is saved
    return data, values, host.connector.commands, prefetch


def test_batch_script_keeps_each_commands_lines_and_status():
    commands = [StringCommand("printf 'a\\nb'"), "echo err >&2; exit 3", "true", "printf 'o-looks\\n#ocf-end 0 0\\n'"]
    done = subprocess.run(["sh", "-c", batch_command(commands).get_raw_value()], capture_output=True, text=True,
                          check=True)
    results = parse_batch(done.stdout.splitlines())
    assert results[0][0] is True and results[0][1].stdout_lines == ["a", "b"]
    assert results[1][0] is False and results[1][1].stdout_lines == [] and results[1][1].stderr_lines == ["err"]
    assert results[2] == (True, CommandOutput([]))
    assert results[3][1].stdout_lines == ["o-looks", "#ocf-end 0 0"]  # a fact's output never looks like a marker


def test_parse_leaves_out_a_command_without_its_end_marker():
    lines = ["#ocf-begin 0", "ofine", "#ocf-end 0 0", "#ocf-begin 1", "ocut off"]
    assert set(parse_batch(lines)) == {0}
    assert parse_batch(["#ocf-begin 0", "#ocf-end 0 7"], success_codes=(0, 7))[0][0] is True


def test_replay_serves_every_fact_from_one_command_with_the_values_a_live_read_gives(tmp_path):
    data, live_values, live_commands, _ = first_run(tmp_path)
    assert len(live_commands) == 5  # one round trip per fact (the short fact's FactBase was just read: not again)
    assert live_values["fails"] == "the default" and live_values["missing"] == ["missing"]
    assert live_values["lines"] == ["line0", "line1", "line2", "no-newline"]
    assert live_values["absent"] is None and live_values["upper"] == "ONE\nTWO"

    state, host = new_host()
    prefetch_facts("test", state, host)
    assert ask_all(host, data) == live_values
    assert len(host.connector.commands) == 1 and "#ocf-begin" in host.connector.commands[0][0]


def test_a_change_on_the_host_drops_the_snapshot(tmp_path):
    data, _, _, _ = first_run(tmp_path)
    state, host = new_host()
    prefetch_facts("test", state, host)
    assert host.get_fact(FileText, path=str(data)) == "one\ntwo"
    host.run_shell_command(StringCommand(f"echo three > {data}"))  # an operation's command
    assert host.get_fact(FileText, path=str(data)) == "three"
    assert len(host.connector.commands) == 3  # batch, the change, the live read


@pytest.mark.parametrize("how", ["upload", "predicted change", "previous op executed"])
def test_operations_drop_the_snapshot_through_pyinfras_hooks(tmp_path, how):
    first_run(tmp_path)
    state, host = new_host()
    prefetch = prefetch_facts("test", state, host)
    meta = type("Meta", (), {"_maybe_is_change": how == "predicted change", "executed": how != "upload"})()
    state.ops[host] = {"op1": type("Data", (), {"operation_meta": meta})()}
    if how == "upload":
        host.put_file("src", "dest")
    elif how == "predicted change":
        state.trigger_callbacks("operation_host_start", host, "op1")
    else:
        state.trigger_callbacks("operation_host_start", host, "op1")
        assert prefetch.snapshot is not None
        state.trigger_callbacks("operation_host_start", host, "op2")
    assert prefetch.snapshot is None


def test_opt_out_facts_are_never_recorded_and_run_live_then_the_snapshot_is_read_again(tmp_path, cache):
    data, _, _, _ = first_run(tmp_path)
    marker = tmp_path / "side-effect"
    for _ in range(2):
        state, host = new_host()
        prefetch_facts("test", state, host)
        host.get_fact(FileText, path=str(data))
        assert host.get_fact(SideEffect, path=str(marker)) == "ran"
        host.get_fact(FileText, path=str(data))
        state.trigger_callbacks("host_disconnect", host)
        texts = [text for text, _ in host.connector.commands]
        assert len(texts) == 3 and "#ocf-begin" in texts[0] and "#ocf-begin" in texts[2]
        assert texts[1].startswith("echo changed")
    record = (cache / "test" / "box.json").read_text()
    assert "SideEffect" not in record and "FileText" in record


def test_secrets_never_reach_the_record(tmp_path, cache):
    state, host = new_host()
    prefetch_facts("test", state, host)
    assert host.get_fact(Secret, token=HiddenValue("s3cret")) == "7"
    host.get_fact(FileText, path=str(tmp_path), _sudo_password="hunter2", _ignore_errors=True)
    state.trigger_callbacks("host_disconnect", host)
    record = (cache / "test" / "box.json").read_text()
    assert "s3cret" not in record and "hunter2" not in record and "Secret" not in record
    assert [entry["fact"] for entry in json.loads(record)["facts"]] == [f"{FileText.__module__}:FileText"]


def test_facts_run_with_other_connector_arguments_go_in_their_own_batch(tmp_path):
    data, _, _, _ = first_run(tmp_path)
    state, host = new_host()
    prefetch_facts("test", state, host)
    host.get_fact(FileText, path=str(data), _env={"A": "1"})
    state.trigger_callbacks("host_disconnect", host)
    state, host = new_host()
    prefetch_facts("test", state, host)
    assert host.get_fact(FileText, path=str(data), _env={"A": "1"}) == "one\ntwo"
    assert host.get_fact(FileText, path=str(data)) == "one\ntwo"
    envs = [kwargs.get("_env") for _, kwargs in host.connector.commands]
    assert len(envs) == 2 and {"A": "1"} in envs  # two batches, nothing read live


def test_switched_off_nothing_is_wrapped_or_recorded(tmp_path, cache, monkeypatch):
    monkeypatch.setenv(factcache.SWITCH, "0")
    state, host = new_host()
    assert prefetch_facts("test", state, host) is None
    assert "get_fact" not in vars(host) and "run_shell_command" not in vars(host)
    host.get_fact(FileText, path=str(tmp_path / "x"), _ignore_errors=True)
    state.trigger_callbacks("host_disconnect", host)
    assert not cache.exists()


def test_facts_not_asked_for_a_few_runs_are_forgotten():
    previous = {"old": {"fact": "m:F", "args": [], "kwargs": {}, "connector": {}, "age": 2},
                "older": {"fact": "m:G", "args": [], "kwargs": {}, "connector": {}, "age": 0}}
    merged = factcache.merge_record(previous, {"new": {"fact": "m:H", "args": [], "kwargs": {}, "connector": {}}})
    assert sorted((entry["fact"], entry["age"]) for entry in merged) == [("m:G", 1), ("m:H", 0)]


def test_facts_asked_with_a_url_beyond_loopback_are_never_recorded():
    """A mirror or registry URL may be stale next run (another lab's address under the same host name, a mirror
    that moved, a proxy now required): a batch would wait out its timeouts. Loopback URLs stay prefetchable."""
    from ollama_claude.factcache import make_entry
    from ollama_claude.ollama.facts import OllamaReleaseSums, OllamaServerVersion

    remote = make_entry(OllamaReleaseSums, (), {"url": "http://10.213.57.1:8470/v0.32.15/sha256sum.txt"}, {})
    assert remote is None
    assert make_entry(OllamaServerVersion, (), {"base_url": "http://127.0.0.1:11434"}, {}) is not None
    assert make_entry(OllamaServerVersion, (), {"base_url": "http://[::1]:11434"}, {}) is not None
    assert make_entry(OllamaServerVersion, (), {"base_url": "http://gpu-01.example.internal:11434"}, {}) is None


class Counted(FactBase):
    """Counts how often pyinfra parsed it: a value answered again must not go through pyinfra at all."""

    processed = 0

    def command(self, path: str) -> str:
        return f"cat {path}"

    def process(self, output):
        Counted.processed += 1
        return {"lines": list(output)}


def test_a_fact_asked_again_before_anything_changes_is_answered_once_and_as_a_copy(tmp_path):
    data = tmp_path / "data.txt"
    data.write_text("one\n")
    state, host = new_host()
    prefetch_facts("test", state, host)  # no record yet: a cold run
    Counted.processed = 0
    first = host.get_fact(Counted, path=str(data))
    first["lines"].append("changed by the caller")
    assert host.get_fact(Counted, path=str(data)) == {"lines": ["one"]}
    assert Counted.processed == 1 and len(host.connector.commands) == 1
    assert host.get_fact(Counted, path=str(data), _sudo=True, _ignore_errors=True) is not None  # other arguments
    assert Counted.processed == 2

    host.run_shell_command(StringCommand(f"echo two > {data}"))  # an operation's command
    assert host.get_fact(Counted, path=str(data)) == {"lines": ["two"]}
    data.write_text("three\n")
    host.get_fact(SideEffect, path=str(tmp_path / "marker"))  # a fact with side effects forgets the values too
    assert host.get_fact(Counted, path=str(data)) == {"lines": ["three"]}
    assert Counted.processed == 4


def test_a_value_is_kept_per_enclosing_operation_and_deploy_arguments(tmp_path):
    """pyinfra gives a fact the connector arguments of the operation and @deploy it is asked in (e.g. _sudo):
    another context is another value."""
    data = tmp_path / "data.txt"
    data.write_text("one\n")
    state, host = new_host()
    prefetch_facts("test", state, host)
    Counted.processed = 0
    host.get_fact(Counted, path=str(data))
    host.current_deploy_kwargs = {"_env": {"A": "1"}}
    try:
        host.get_fact(Counted, path=str(data))
    finally:
        host.current_deploy_kwargs = None
    assert Counted.processed == 2 and host.connector.commands[-1][1].get("_env") == {"A": "1"}
    host.current_op_global_arguments = {"_sudo": True, "_if": [lambda: True], "name": "an operation"}
    try:
        host.get_fact(Counted, path=str(data), _ignore_errors=True)  # asked inside an operation run with sudo
    finally:
        host.current_op_global_arguments = None
    assert Counted.processed == 3 and host.connector.commands[-1][1].get("_sudo") is True


def test_a_replay_runs_the_recorded_commands_without_building_them_again(tmp_path, monkeypatch):
    data, live_values, _, _ = first_run(tmp_path)
    state, host = new_host()
    built = []
    real_get_fact = host.get_fact
    monkeypatch.setattr(host, "get_fact", lambda *args, **kwargs: built.append(args) or real_get_fact(*args, **kwargs))
    prefetch_facts("test", state, host)
    assert built == [] and len(host.connector.commands) == 1  # the batch, from the record alone
    assert ask_all(host, data) == live_values
    host.get_fact(SideEffect, path=str(tmp_path / "marker"))
    assert host.get_fact(FileText, path=str(data)) == "one\ntwo"
    texts = [text for text, _ in host.connector.commands]
    assert len(texts) == 3 and "#ocf-begin" in texts[2]  # batch, the live fact, the batch again


def test_a_recorded_command_this_code_no_longer_builds_is_never_served(tmp_path, cache):
    data, _, _, _ = first_run(tmp_path)
    record = cache / "test" / "box.json"
    content = json.loads(record.read_text())
    for entry in content["facts"]:
        entry["command"] = "echo stale"  # as written by another version of the fact
    record.write_text(json.dumps(content))
    state, host = new_host()
    prefetch_facts("test", state, host)
    assert host.get_fact(FileText, path=str(data)) == "one\ntwo"
    assert [text for text, _ in host.connector.commands][1:] == [f"cat {data}"]  # read live


def test_a_record_others_could_write_is_ignored(tmp_path, cache):
    """Its commands run on every host: a record another user can change is never replayed."""
    data, _, _, _ = first_run(tmp_path)
    record = cache / "test" / "box.json"
    assert stat.S_IMODE(record.stat().st_mode) == 0o600 and stat.S_IMODE(record.parent.stat().st_mode) == 0o700
    record.chmod(0o666)
    state, host = new_host()
    prefetch_facts("test", state, host)
    assert host.get_fact(FileText, path=str(data)) == "one\ntwo"
    assert not any("#ocf-begin" in text for text, _ in host.connector.commands)
