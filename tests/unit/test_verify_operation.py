"""The checklist operation against fact fixtures: nothing yielded on a good host, only that host failed otherwise."""

from __future__ import annotations

import copy

from pyinfra.context import ctx_host, ctx_state

from ollama_claude.accounts import Account
from ollama_claude.models.facts import ShownModel
from ollama_claude.rollout.hoststate import VERIFY_FILE, HostState
from ollama_claude.settings import parse_settings
from ollama_claude.verify import operations, report
from ollama_claude.verify.checks import ROLE_VARS
from ollama_claude.verify.facts import EditTestResult, JsonDocument
from tests.harness import FakeHost, FakeState, render_command

URL = "http://127.0.0.1:11434"
ENV = {
    "ANTHROPIC_BASE_URL": URL, "ANTHROPIC_AUTH_TOKEN": "ollama", "ANTHROPIC_API_KEY": "",
    "DISABLE_TELEMETRY": "1", "DISABLE_ERROR_REPORTING": "1", "CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC": "1",
    "CLAUDE_CODE_MAX_CONTEXT_TOKENS": "64000", "ENABLE_TOOL_SEARCH": "false", "CLAUDE_CODE_ATTRIBUTION_HEADER": "0",
    **dict.fromkeys(ROLE_VARS, "glm-4.7-flash:latest"),
}
PASSED = EditTestResult(True, 0, False, "Created test.txt", "hi")
REFUSED = EditTestResult(False, 1, True, "API Error: Unable to connect to API (ConnectionRefused)", None)


def edit_key(model: str) -> str:
    return f"executable=claude, model={model}, timeout=120, user=dev"


GOOD_FACTS = {
    "OllamaServerVersion": "0.32.15",
    "OllamaServiceEnvironment": {"OLLAMA_CONTEXT_LENGTH": "64000"},
    "OllamaModels": {"glm-4.7-flash:latest": "a" * 64, "glm-5:cloud": "b" * 64},
    "ModelShow": {f"base_url={URL}, model=glm-4.7-flash:latest": ShownModel(["completion", "tools"], None, 202752),
                  f"base_url={URL}, model=glm-5:cloud": ShownModel(["completion", "tools"], None, None)},
    "OllamaSignin": {"signed_in": False, "signin_url": "https://ollama.example/connect"},
    "LoadedModels": {"glm-4.7-flash:latest": 64000},
    "Kernel": "Linux",
    "Accounts": {"dev": Account("dev", 1000, "dev", "/home/dev", "/bin/bash")},
    "LoginEnvironment": {"HOME": "/home/dev"},
    "JsonFile": {
        "path=/home/dev/.claude/settings.json, user=dev": JsonDocument(
            "/home/dev/.claude/settings.json", {"env": ENV, "permissions": {"defaultMode": "acceptEdits"}}),
        "path=/etc/claude-code/managed-settings.json": JsonDocument("/etc/claude-code/managed-settings.json"),
    },
    "JsonDirectory": (),
    "HttpHeadStatus": 200,
    "ClaudeCodeVersion": parse_settings({}, "h").claude_code_version,
    "EditTest": {edit_key("glm-4.7-flash:latest"): PASSED, edit_key("glm-5:cloud"): PASSED},
    "HostState": HostState.default(),
}


def without_record(commands):
    """The checklist's own commands: the host's last-verify record (tests/unit/test_rollout_record.py) aside."""
    return [command for command in commands if VERIFY_FILE not in str(command)]


def run_checklist(facts, **data):
    settings = parse_settings({"claude_users": ["dev"], "ollama_cloud_models": ["glm-5:cloud"], **data}, "h1")
    fake, fake_state = FakeHost(facts, name="h1"), FakeState()
    with ctx_state.use(fake_state), ctx_host.use(fake):
        commands = [render_command(command) for command in operations.checklist._inner(settings)]
    return without_record(commands), fake.noops, report.fleet_report(fake_state).hosts["h1"][1]


def with_facts(**changes):
    facts = copy.deepcopy(GOOD_FACTS)
    facts.update(changes)
    return facts


def test_a_good_host_yields_nothing_and_records_all_green():
    commands, noops, lines = run_checklist(GOOD_FACTS)
    assert commands == []
    assert noops == ["checklist passed (dev: local glm-4.7-flash:latest)"]
    assert [item.status for item in lines[0].items] == ["pass"] * 9
    assert [item.number for item in lines[0].items] == list(range(1, 10))


def test_context_4096_fails_exactly_that_item_and_only_this_host():
    commands, _, lines = run_checklist(with_facts(OllamaServiceEnvironment={"OLLAMA_CONTEXT_LENGTH": "4096"}))
    statuses = {item.number: item.status for item in lines[0].items}
    assert [n for n, s in statuses.items() if s == "fail"] == [2] and statuses[7] == "skip"
    assert len(commands) == 1 and commands[0].endswith("exit 1")
    assert "verify h1 dev: item 2 context: service OLLAMA_CONTEXT_LENGTH=4096 < 64000" in commands[0]


def test_local_broken_cloud_signed_in_passes_on_the_cloud_model():
    facts = with_facts(OllamaSignin={"signed_in": True, "signin_url": None})
    facts["EditTest"][edit_key("glm-4.7-flash:latest")] = REFUSED
    commands, noops, lines = run_checklist(facts)
    assert commands == [] and lines[0].link == "cloud" and lines[0].model == "glm-5:cloud"
    assert noops == ["checklist passed (dev: cloud glm-5:cloud)"]


def test_local_model_without_tools_is_a_warning_when_the_cloud_covers_it():
    facts = with_facts(OllamaSignin={"signed_in": True, "signin_url": None})
    facts["ModelShow"][f"base_url={URL}, model=glm-4.7-flash:latest"] = ShownModel(["completion"], None, 202752)
    commands, _, lines = run_checklist(facts)
    item3 = lines[0].items[2]
    assert commands == [] and item3.status == "warn" and "fallback cloud in use" in item3.message


def test_both_broken_and_no_credential_fail_the_host_with_the_chains_reasons():
    facts = with_facts()
    facts["EditTest"][edit_key("glm-4.7-flash:latest")] = REFUSED
    commands, _, lines = run_checklist(facts, verify_allow_anthropic=True)
    edit = lines[0].items[6]
    assert edit.status == "fail" and "cloud: the Ollama server is not signed in" in edit.message
    assert "claude: no anthropic_api_key for dev" in edit.message
    assert "item 7 edit_test: no link passed" in commands[0]


def test_claude_code_missing_fails_item_9_and_skips_the_edit_test():
    _, _, lines = run_checklist(with_facts(ClaudeCodeVersion=None))
    statuses = {item.number: item.status for item in lines[0].items}
    assert [n for n, s in statuses.items() if s == "fail"] == [9] and statuses[7] == "skip"


def test_no_claude_users_checks_the_host_items_only():
    settings_facts = with_facts()
    settings = parse_settings({}, "h1")
    fake, fake_state = FakeHost(settings_facts, name="h1"), FakeState()
    with ctx_state.use(fake_state), ctx_host.use(fake):
        assert without_record(render_command(c) for c in operations.checklist._inner(settings)) == []
    lines = report.fleet_report(fake_state).hosts["h1"][1]
    assert lines[0].user is None and [item.number for item in lines[0].items] == [1, 2, 3]
