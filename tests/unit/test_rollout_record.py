"""The checklist records its result on the host (last-verify.json) only when the result changed."""

import base64
import copy
import json
import re

from pyinfra.context import ctx_host, ctx_state

from ollama_claude.rollout.hoststate import VERIFY_FILE, HostState, verify_key
from ollama_claude.settings import parse_settings
from ollama_claude.verify import operations
from tests.harness import FakeHost, FakeState, render_command
from tests.unit.test_verify_operation import GOOD_FACTS


def checklist_commands(facts):
    settings = parse_settings({"claude_users": ["dev"], "ollama_cloud_models": ["glm-5:cloud"]}, "h1")
    with ctx_state.use(FakeState()), ctx_host.use(FakeHost(facts, name="h1")):
        return [render_command(command) for command in operations.checklist._inner(settings)]


def written_record(command):
    return json.loads(base64.b64decode(re.search(r"printf %s (\S+) \| base64 -d", command)[1]))


def test_first_verify_writes_the_record_then_the_same_result_does_not():
    commands = checklist_commands(GOOD_FACTS)
    assert len(commands) == 1 and VERIFY_FILE in commands[0]
    record = written_record(commands[0])
    assert record["status"] == "pass" and record["ollama_version"] == GOOD_FACTS["OllamaServerVersion"]
    assert [item["number"] for item in record["items"]] == list(range(1, 10))
    facts = copy.deepcopy(GOOD_FACTS)
    facts["HostState"] = {**HostState.default(), "verify": {**record, "time": "earlier", "seconds": 99}}
    assert checklist_commands(facts) == []


def test_a_failure_after_a_pass_is_recorded_before_the_host_fails():
    passed = written_record(checklist_commands(GOOD_FACTS)[0])
    facts = copy.deepcopy(GOOD_FACTS)
    facts["HostState"] = {**HostState.default(), "verify": passed}
    facts["OllamaServiceEnvironment"] = {"OLLAMA_CONTEXT_LENGTH": "4096"}
    commands = checklist_commands(facts)
    assert len(commands) == 2 and VERIFY_FILE in commands[0] and commands[1].endswith("exit 1")
    failed = written_record(commands[0])
    assert failed["status"] == "fail" and verify_key(failed) != verify_key(passed)
    assert {item["number"]: item["status"] for item in failed["items"]}[2] == "fail"
    assert "4096" in next(item["message"] for item in failed["items"] if item["number"] == 2)
