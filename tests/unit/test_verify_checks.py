"""The checklist items from recorded fact outputs: each verdict, message and fix."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from dataclasses import replace
from pathlib import Path

import pytest

from ollama_claude.models.facts import ShownModel
from ollama_claude.settings import ClaudeUser, parse_settings
from ollama_claude.verify import checks
from ollama_claude.verify.facts import (
    ClaudeCodeVersion,
    EditTest,
    JsonDocument,
    JsonFile,
    LoadedModels,
    LoginEnvironment,
    OllamaServiceEnvironment,
    parse_edit_test,
)

SETTINGS = parse_settings({"claude_users": ["dev"], "ollama_cloud_models": ["glm-5:cloud"]}, "h1")
DEV = ClaudeUser(name="dev")
GOOD_ENV = {
    "ANTHROPIC_BASE_URL": "http://127.0.0.1:11434", "ANTHROPIC_AUTH_TOKEN": "ollama", "ANTHROPIC_API_KEY": "",
    "DISABLE_TELEMETRY": "1", "DISABLE_ERROR_REPORTING": "1", "CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC": "1",
    **{name: "glm-4.7-flash" for name in checks.ROLE_VARS},
}


def host_obs(**changes) -> checks.HostObservation:
    good = checks.HostObservation(
        version="0.32.15",
        service_env={"OLLAMA_HOST": "127.0.0.1:11434", "OLLAMA_CONTEXT_LENGTH": "64000"},
        models={"glm-4.7-flash:latest": "a" * 64, "glm-5:cloud": "b" * 64},
        capabilities={"glm-4.7-flash:latest": ["completion", "tools"], "glm-5:cloud": ["completion", "tools"]},
        loaded={"glm-4.7-flash:latest": 64000},
    )
    return replace(good, **changes)


def user_obs(env: dict[str, str] | None = None, **changes) -> checks.UserObservation:
    good = checks.UserObservation(
        uid=1000,
        login_env={"HOME": "/home/dev", "PATH": "/usr/bin"},
        user_settings=JsonDocument("/home/dev/.claude/settings.json",
                                   {"env": GOOD_ENV if env is None else env,
                                    "permissions": {"defaultMode": "acceptEdits"}}),
        managed_settings=JsonDocument("/etc/claude-code/managed-settings.json"),
        base_url_status=200,
        claude_version=SETTINGS.claude_code_version,
    )
    return replace(good, **changes)


# --- Facts: recorded outputs -------------------------------------------------------------------------------------
def test_systemd_environment_is_parsed_with_its_quoting():
    line = 'PATH=/usr/local/bin:/usr/bin "OLLAMA_HOST=127.0.0.1:11434" OLLAMA_CONTEXT_LENGTH=64000 "X=a b"'
    env = OllamaServiceEnvironment().process(["systemd", line])
    assert env == {"PATH": "/usr/local/bin:/usr/bin", "OLLAMA_HOST": "127.0.0.1:11434",
                   "OLLAMA_CONTEXT_LENGTH": "64000", "X": "a b"}


def test_launchd_environment_is_the_plists_own():
    """macOS: read from the LaunchAgent's EnvironmentVariables (plutil), which launchctl getenv never shows."""
    fact = OllamaServiceEnvironment()
    plist = "/Users/dev/Library/LaunchAgents/com.ollama-claude.ollama.plist"
    assert f"plutil -extract EnvironmentVariables json -o - {plist}" in fact.command(plist=plist)
    assert "launchctl getenv" not in fact.command(plist=plist)
    env = fact.process(["launchd", '{"OLLAMA_CONTEXT_LENGTH":"128000","OLLAMA_HOST":"127.0.0.1:11434"}'])
    assert env == {"OLLAMA_CONTEXT_LENGTH": "128000", "OLLAMA_HOST": "127.0.0.1:11434"}
    assert fact.process(["launchd"]) == {}


def test_no_ollama_service_is_none():
    assert OllamaServiceEnvironment().process([]) is None


def test_login_env_joins_multiline_values():
    env = LoginEnvironment().process(["HOME=/home/dev", "PS1=line one", "line two", "ANTHROPIC_API_KEY="])
    assert env == {"HOME": "/home/dev", "PS1": "line one\nline two", "ANTHROPIC_API_KEY": ""}


def test_json_file_reports_path_content_and_parse_errors():
    fact = JsonFile()
    assert fact.process(["/home/dev/.claude/settings.json"]) == JsonDocument("/home/dev/.claude/settings.json")
    found = fact.process(["/p", "__OCV_START__", '{"env": {"A": "1"}}'])
    assert found.data == {"env": {"A": "1"}}
    broken = fact.process(["/p", "__OCV_START__", "{broken"])
    assert broken.data is None and "Expecting property name" in broken.error


def test_claude_version_from_its_banner():
    assert ClaudeCodeVersion().process(["2.1.197 (Claude Code)"]) == "2.1.197"
    assert ClaudeCodeVersion().process(["-bash: line 1: claude: command not found"]) is None


def test_loaded_models_context_from_api_ps():
    body = {"models": [{"name": "glm-4.7-flash:latest", "context_length": 4096}]}
    assert LoadedModels().process([json.dumps(body), "__HTTP_STATUS__200"]) == {"glm-4.7-flash:latest": 4096}
    assert LoadedModels().process(["__HTTP_STATUS__000"]) is None


def test_edit_test_passes_only_with_hi_in_the_file():
    ok = parse_edit_test(['{"type":"result","subtype":"success","is_error":false,"result":"Done"}',
                          "__OCV_RC__0", "__OCV_FILE__", "hi"])
    assert ok.passed and ok.result == "Done"
    wrong = parse_edit_test(['{"type":"result","is_error":false,"result":"Done"}', "__OCV_RC__0",
                             "__OCV_FILE__", "hello"])
    assert not wrong.passed and wrong.file_content == "hello"


def test_edit_test_reads_is_error_not_subtype():
    body = {"type": "result", "subtype": "success", "is_error": True,
            "result": "API Error: Unable to connect to API (ConnectionRefused)"}
    output = [json.dumps(body), "__OCV_RC__1"]
    result = parse_edit_test(output)
    assert not result.passed and result.is_error and "ConnectionRefused" in result.result


def test_edit_test_fails_on_an_api_error_in_the_transcript_even_when_the_file_was_written():
    """Ollama < 0.18.0's thinking -> tool_use stream: Claude Code runs the tool, records the broken stream as an
    API error in the transcript, and still exits 0 with is_error false (measured with the real CLI)."""
    broken = "API Error: Part of the response never arrived. Try again in a moment."
    transcript = [
        json.dumps({"type": "assistant", "message": {"content": [{"type": "thinking", "thinking": "..."}]}}),
        json.dumps({"type": "assistant", "message": {"content": [{"type": "text", "text": broken}]}}),
        json.dumps({"type": "result", "subtype": "success", "is_error": False, "result": "Done."}),
    ]
    result = parse_edit_test([*transcript, "__OCV_RC__0", "__OCV_FILE__", "hi"])
    assert not result.passed and result.is_error and result.result == broken
    clean = parse_edit_test([transcript[0], transcript[2], "__OCV_RC__0", "__OCV_FILE__", "hi"])
    assert clean.passed and clean.result == "Done."


def test_edit_test_as_root_keeps_claudes_refusal():
    refusal = "--dangerously-skip-permissions cannot be used with root/sudo privileges for security reasons"
    result = parse_edit_test([refusal, "__OCV_RC__1"])
    assert not result.passed and result.is_error is None and result.result == refusal


@pytest.mark.skipif(os.geteuid() != 0 or not shutil.which("runuser"), reason="runs the command as root")
@pytest.mark.parametrize("environment", [
    None,  # an SSH session's: HOME and SHELL set by sshd
    {"PATH": "/usr/sbin:/usr/bin:/sbin:/bin"},  # a systemd timer's or a bare CI runner's: no HOME, no SHELL
], ids=["session-env", "bare-env"])
def test_edit_test_command_runs_in_a_fresh_directory_and_removes_it(tmp_path: Path, environment):
    """The real shell command with a stand-in `claude` that records what it got: args, env, cwd."""
    fake = tmp_path / "claude"
    fake.write_text(
        "#!/bin/sh\n"
        f"{{ echo \"$*\"; echo \"retries=$CLAUDE_CODE_MAX_RETRIES\"; pwd; }} > {tmp_path}/seen\n"
        "printf hi > test.txt\n"
        'echo \'{"type":"result","is_error":false,"result":"Created"}\'\n'
    )
    fake.chmod(0o755)
    command = EditTest().command(user="root", model="glm-4.7-flash:latest", timeout=20, executable=str(fake))
    run = subprocess.run(["sh", "-c", command.get_raw_value()], capture_output=True, text=True, timeout=60,
                         check=True, env=environment)
    result = EditTest().process(run.stdout.splitlines())
    assert result.passed, run.stdout
    args, retries, workdir = (tmp_path / "seen").read_text().splitlines()
    assert "--model glm-4.7-flash:latest --allowedTools Read,Edit,Bash --dangerously-skip-permissions" in args
    assert args.startswith("-p Create test.txt with content hi") and "--output-format stream-json --verbose" in args
    assert retries == "retries=0"
    assert "ollama-claude-verify." in workdir and not Path(workdir).exists()


# --- Host items --------------------------------------------------------------------------------------------------
def test_all_host_items_pass_on_a_good_host():
    obs = host_obs()
    results = [checks.check_ollama(SETTINGS, obs), checks.check_context(SETTINGS, obs),
               checks.check_models(SETTINGS, obs)]
    assert [result.status for result in results] == ["pass"] * 3


def test_ollama_down_below_015_or_off_pin():
    assert "does not answer" in checks.check_ollama(SETTINGS, host_obs(version=None)).message
    old = checks.check_ollama(SETTINGS, host_obs(version="0.16.3"))
    assert old.status == "fail" and "below 0.18.0" in old.message and "tool calls after thinking" in old.message
    assert "ollama_version >= 0.18.0" in old.fix
    drift = checks.check_ollama(SETTINGS, host_obs(version="0.18.0"))
    assert drift.status == "fail" and "pins 0.32.15" in drift.message


def test_context_4096_in_the_service_environment_fails():
    result = checks.check_context(SETTINGS, host_obs(service_env={"OLLAMA_CONTEXT_LENGTH": "4096"}))
    assert result.status == "fail" and "OLLAMA_CONTEXT_LENGTH=4096 < 64000" in result.message
    assert "ollama_context_length = 64000" in result.fix
    unset = checks.check_context(SETTINGS, host_obs(service_env={}))
    assert unset.status == "fail" and "unset" in unset.message


def test_a_models_own_num_ctx_overrides_the_service_environment():
    shown = {"glm-4.7-flash:latest": ShownModel(["completion", "tools"], num_ctx=4096, trained_context=202752)}
    result = checks.check_context(SETTINGS, host_obs(shown=shown, loaded={}))
    assert result.status == "fail"
    assert "sets its own num_ctx 4096, which overrides OLLAMA_CONTEXT_LENGTH=64000" in result.message
    assert "without PARAMETER num_ctx" in result.fix


def test_a_model_trained_for_less_than_64000_is_capped_there():
    shown = {"glm-4.7-flash:latest": ShownModel(["completion", "tools"], num_ctx=None, trained_context=40960)}
    result = checks.check_context(SETTINGS, host_obs(shown=shown, loaded={}))
    assert result.status == "fail" and "trained for 40960 tokens" in result.message


def test_a_model_without_its_own_num_ctx_gets_the_service_context():
    shown = {"glm-4.7-flash:latest": ShownModel(["completion", "tools"], num_ctx=None, trained_context=202752),
             "other:latest": ShownModel(["tools"], num_ctx=4096, trained_context=8192)}  # not declared: ignored
    assert checks.check_context(SETTINGS, host_obs(shown=shown, loaded={})).status == "pass"
    bigger = {"glm-4.7-flash:latest": ShownModel(["tools"], num_ctx=131072, trained_context=202752)}
    assert checks.check_context(SETTINGS, host_obs(shown=bigger, loaded={})).status == "pass"


def test_context_the_server_really_gave_a_loaded_model_counts():
    result = checks.check_context(SETTINGS, host_obs(loaded={"glm-4.7-flash:latest": 4096}))
    assert result.status == "fail" and "context_length 4096" in result.message


def test_model_without_tools_and_missing_model():
    obs = host_obs(capabilities={"glm-4.7-flash:latest": ["completion"], "glm-5:cloud": ["tools"]})
    result = checks.check_models(SETTINGS, obs)
    assert result.status == "fail" and "glm-4.7-flash:latest lacks the tools capability" in result.message
    assert "not an HF import" in result.fix
    missing = checks.check_models(SETTINGS, host_obs(models={"glm-5:cloud": "b" * 64}))
    assert "glm-4.7-flash:latest missing" in missing.message and "ollama pull glm-4.7-flash:latest" in missing.fix


# --- User items --------------------------------------------------------------------------------------------------
def test_all_user_items_pass_for_a_configured_user():
    obs = user_obs()
    results = [checks.check_claude_env(DEV, obs), checks.check_headless(DEV, obs),
               checks.check_telemetry(SETTINGS, obs), checks.check_role_models(obs, host_obs()),
               checks.check_claude_version(SETTINGS, DEV, obs)]
    assert [result.status for result in results] == ["pass"] * 5, results


def test_settings_env_beats_the_login_shell():
    obs = user_obs(login_env={"ANTHROPIC_BASE_URL": "https://api.anthropic.com", "DISABLE_TELEMETRY": "0"})
    assert obs.effective_env["ANTHROPIC_BASE_URL"] == "http://127.0.0.1:11434"
    assert obs.effective_env["DISABLE_TELEMETRY"] == "1"


def test_managed_settings_beat_the_users_file():
    managed = JsonDocument("/etc/claude-code/managed-settings.json",
                           {"env": {"ANTHROPIC_BASE_URL": "http://gpu:11434"}})
    assert user_obs(managed_settings=managed).effective_env["ANTHROPIC_BASE_URL"] == "http://gpu:11434"


def test_api_key_instead_of_auth_token_fails_item_4():
    env = {**GOOD_ENV, "ANTHROPIC_API_KEY": "ollama", "ANTHROPIC_AUTH_TOKEN": ""}
    result = checks.check_claude_env(DEV, user_obs(env))
    assert result.status == "fail" and "ANTHROPIC_API_KEY is set" in result.message
    assert "ANTHROPIC_AUTH_TOKEN=ollama" in result.fix and "/home/dev/.claude/settings.json" in result.fix


def test_unreachable_base_url_fails_item_4():
    env = {**GOOD_ENV, "ANTHROPIC_BASE_URL": "http://127.0.0.1:1"}
    result = checks.check_claude_env(DEV, user_obs(env, base_url_status=0))
    assert result.status == "fail" and "http://127.0.0.1:1 does not answer" in result.message


def test_invalid_settings_json_is_named():
    broken = JsonDocument("/home/dev/.claude/settings.json", error="Expecting value: line 1 column 1 (char 0)")
    result = checks.settings_problem(user_obs(user_settings=broken))
    assert result is not None and result.number == 4 and "not valid JSON" in result.message


def test_headless_edits_as_root_need_accept_edits():
    root_default = user_obs(uid=0, user_settings=JsonDocument("/root/.claude/settings.json", {"env": GOOD_ENV}))
    result = checks.check_headless(DEV, root_default)
    assert result.status == "fail" and "uid 0" in result.message
    assert checks.check_headless(DEV, user_obs(uid=0)).status == "pass"


def test_telemetry_missing_or_opted_out():
    env = {key: value for key, value in GOOD_ENV.items() if key != "DISABLE_TELEMETRY"}
    result = checks.check_telemetry(SETTINGS, user_obs(env))
    assert result.status == "fail" and "DISABLE_TELEMETRY" in result.message
    opted_out = parse_settings({"claude_users": ["dev"], "claude_telemetry_off": False}, "h1")
    assert checks.check_telemetry(opted_out, user_obs(env)).status == "pass"


def test_role_model_unset_or_not_on_the_server():
    env = {**GOOD_ENV, "ANTHROPIC_DEFAULT_SONNET_MODEL": "claude-sonnet-4-5"}
    del env["CLAUDE_CODE_SUBAGENT_MODEL"]
    result = checks.check_role_models(user_obs(env), host_obs())
    assert result.status == "fail" and "CLAUDE_CODE_SUBAGENT_MODEL unset" in result.message
    assert "ANTHROPIC_DEFAULT_SONNET_MODEL=claude-sonnet-4-5 is not on the Ollama server" in result.message


def test_claude_code_missing_or_off_pin():
    missing = checks.check_claude_version(SETTINGS, DEV, user_obs(claude_version=None))
    pin = SETTINGS.claude_code_version
    assert missing.status == "fail" and "Claude Code missing" in missing.message and pin in missing.fix
    drift = checks.check_claude_version(SETTINGS, DEV, user_obs(claude_version="2.0.1"))
    assert drift.status == "fail" and f"2.0.1 installed, pinned {pin}" in drift.message


def test_isolation_uses_the_wrapper_and_its_config_dir():
    isolated = parse_settings({"claude_users": ["dev"], "claude_config_isolation": True}, "h1")
    assert checks.claude_command(isolated) == "claude-local"


def test_a_remote_servers_context_is_not_a_failure_before_the_edit_test_loads_the_model():
    """Otherwise item 2 blocks the local link, and the edit test that would load the model never runs."""
    remote = parse_settings({"ollama_enabled": False, "ollama_base_url": "http://10.0.4.20:11434"}, "h1")
    before = checks.check_context(remote, host_obs(service_env=None, loaded=None))
    assert before.status == "skip"
    after = checks.check_context(remote, host_obs(service_env=None, loaded={}))
    assert after.status == "fail" and "no model loaded" in after.message
    assert checks.check_context(remote, host_obs(service_env=None, loaded={"glm-4.7-flash:latest": 64000})).status == (
        "pass")
