"""
Issue 17: the configuration the toolkit writes for Claude Code as it is today (2.1.332), one test per defect.

Env names and behaviour are the pinned binary's (strings of package/claude; see claude/settings_merge.py and
claude/model_table.py for the excerpts): CLAUDE_CODE_MAX_CONTEXT_TOKENS sets the window of a model whose name does
not start with ``claude-``, ENABLE_TOOL_SEARCH=false keeps the flat tool list, CLAUDE_CODE_ATTRIBUTION_HEADER=0
drops the per-request billing header.
"""

from __future__ import annotations

import datetime
import json
import os
import pwd
import shutil
import subprocess
import tempfile
from pathlib import Path

import pytest
from pyinfra.api.hiddenvalue import HiddenValue

from ollama_claude.accounts import Account
from ollama_claude.claude.deploy import user_env
from ollama_claude.claude.operations import render
from ollama_claude.claude.paths import user_paths
from ollama_claude.claude.settings_merge import CONFLICTING_ENV, claude_env, merge_settings, user_settings
from ollama_claude.settings import ClaudeUser, Settings, SettingsError, parse_settings
from ollama_claude.verify import checks
from ollama_claude.verify import facts as verify_facts
from ollama_claude.verify.facts import EditTest, JsonDocument


def fallback_model_problem(*args, **kwargs):
    from ollama_claude.claude.model_table import fallback_model_problem as problem  # new in issue 17

    return problem(*args, **kwargs)

SETTINGS = parse_settings({"claude_users": ["dev"]}, "h")
DEV = ClaudeUser(name="dev")


# --- what settings.json env says ------------------------------------------------------------------------------
def test_tool_search_off_and_attribution_header_off_for_every_ollama_route():
    for data in ({}, {"claude_route": "litellm", "claude_litellm_master_key": "sk-lab-0123456789abcdef"},
                 {"ollama_cloud_models": ["glm-5.2:cloud"], "claude_model": "glm-5.2:cloud"}):
        env = claude_env(parse_settings(data, "h"))
        assert env["ENABLE_TOOL_SEARCH"] == "false", data
        assert env["CLAUDE_CODE_ATTRIBUTION_HEADER"] == "0", data


def test_claude_code_is_told_the_context_ollama_gives():
    assert claude_env(SETTINGS)["CLAUDE_CODE_MAX_CONTEXT_TOKENS"] == "64000"
    bigger = parse_settings({"ollama_context_length": 128000}, "h")
    assert claude_env(bigger)["CLAUDE_CODE_MAX_CONTEXT_TOKENS"] == "128000"
    # The model's own context is lower: that is what Ollama gives it.
    assert claude_env(bigger, model_context=100000)["CLAUDE_CODE_MAX_CONTEXT_TOKENS"] == "100000"
    assert claude_env(SETTINGS, model_context=202752)["CLAUDE_CODE_MAX_CONTEXT_TOKENS"] == "64000"
    # A cloud model runs on ollama.com: the local OLLAMA_CONTEXT_LENGTH does not limit it.
    cloud = parse_settings({"ollama_cloud_models": ["glm-5.2:cloud"], "claude_model": "glm-5.2:cloud"}, "h")
    assert claude_env(cloud, model_context=202752)["CLAUDE_CODE_MAX_CONTEXT_TOKENS"] == "202752"


def test_main_model_is_settings_model_so_slash_model_persists():
    managed = user_settings(SETTINGS)
    assert managed["model"] == "glm-4.7-flash:latest"
    assert "ANTHROPIC_MODEL" not in managed["env"]
    # One left in a user's file (or by an earlier deploy of ours) outranks ``model``: it goes.
    merged = merge_settings({"env": {"ANTHROPIC_MODEL": "glm-4.7-flash:latest"}, "model": "qwen3-coder"},
                            managed, CONFLICTING_ENV)
    assert "ANTHROPIC_MODEL" not in merged.data["env"] and "env.ANTHROPIC_MODEL" in merged.removed


@pytest.mark.parametrize("switch", ["CLAUDE_CODE_USE_GATEWAY", "CLAUDE_CODE_USE_ANTHROPIC_GOOGLE_CLOUD"])
def test_provider_switches_of_the_current_binary_are_removed(switch):
    merged = merge_settings({"env": {switch: "1"}}, user_settings(SETTINGS), CONFLICTING_ENV)
    assert switch not in merged.data["env"] and f"env.{switch}" in merged.removed


# --- the fallback model -----------------------------------------------------------------------------------------
def test_default_fallback_model_is_current_in_the_pinned_binarys_table():
    default = Settings.model_fields["verify_anthropic_model"].default
    assert default == "claude-haiku-5-5" and fallback_model_problem(default) is None
    assert Settings.model_fields["claude_code_version"].default == "2.1.332"


def test_a_retired_fallback_model_is_refused_with_its_replacement():
    with pytest.raises(SettingsError) as error:
        parse_settings({"verify_anthropic_model": "claude-3-5-haiku-latest"}, "h")
    assert "retired on February 19, 2026" in str(error.value) and "'claude-haiku-5-5'" in str(error.value)
    assert "use 'claude-sonnet-5-5'" in fallback_model_problem("claude-3-7-sonnet-20250219")
    # Retirement is by date: Sonnet 4.5 retires November 30, 2026.
    assert fallback_model_problem("claude-sonnet-4-5", today=datetime.date(2026, 11, 29)) is None
    assert "retired" in fallback_model_problem("claude-sonnet-4-5", today=datetime.date(2026, 11, 30))
    assert "not a model Claude Code 2.1.332 knows" in fallback_model_problem("claude-haiku-9")
    assert fallback_model_problem("claude-haiku-4-5-20251001") is None


# --- env files and the state file -------------------------------------------------------------------------------
def test_env_files_do_not_re_export_what_settings_json_carries():
    paths = user_paths(SETTINGS, DEV, "/home/dev")
    env_sh = render("env.sh", env=user_env(SETTINGS, paths))
    assert "export" not in env_sh and "ollama" not in env_sh.split("\n", 1)[1]
    isolated = parse_settings({"claude_users": ["dev"], "claude_config_isolation": True}, "h")
    iso_paths = user_paths(isolated, DEV, "/home/dev")
    assert user_env(isolated, iso_paths) == {"CLAUDE_CONFIG_DIR": "/home/dev/.local/share/claude-ollama"}


def test_onboarding_is_marked_done_in_the_state_file_claude_code_reads():
    assert user_paths(SETTINGS, DEV, "/home/dev").state_json == "/home/dev/.claude.json"
    isolated = parse_settings({"claude_users": ["dev"], "claude_config_isolation": True}, "h")
    assert (user_paths(isolated, DEV, "/home/dev").state_json
            == "/home/dev/.local/share/claude-ollama/.claude.json")


# --- verify ------------------------------------------------------------------------------------------------------
GOOD_ENV = claude_env(SETTINGS)


def user_obs(env=None, **changes) -> checks.UserObservation:
    data = {"env": GOOD_ENV if env is None else env, "permissions": {"defaultMode": "acceptEdits"}}
    return checks.UserObservation(
        uid=1000, login_env={"HOME": "/home/dev"},
        user_settings=JsonDocument("/home/dev/.claude/settings.json", data),
        managed_settings=JsonDocument("/etc/claude-code/managed-settings.json"),
        base_url_status=200, claude_version="2.1.332", **changes)


def test_verify_checks_window_tool_search_and_attribution():
    assert checks.check_claude_env(DEV, user_obs(), 64000).status == "pass"
    without = {k: v for k, v in GOOD_ENV.items() if k != "CLAUDE_CODE_MAX_CONTEXT_TOKENS"}
    result = checks.check_claude_env(DEV, user_obs(without), 64000)
    assert result.status == "fail" and "CLAUDE_CODE_MAX_CONTEXT_TOKENS is unset" in result.message
    over = checks.check_claude_env(DEV, user_obs(GOOD_ENV), 40960)
    assert over.status == "fail" and "exceeds the 40960 tokens" in over.message
    cache = checks.check_claude_env(DEV, user_obs({**GOOD_ENV, "CLAUDE_CODE_ATTRIBUTION_HEADER": "1"}), 64000)
    assert cache.status == "fail" and "CLAUDE_CODE_ATTRIBUTION_HEADER=1" in cache.message
    search = checks.check_claude_env(DEV, user_obs({**GOOD_ENV, "ENABLE_TOOL_SEARCH": "true"}), 64000)
    assert search.status == "fail" and "ENABLE_TOOL_SEARCH=true" in search.message


def test_verify_merges_managed_settings_d_drop_ins_over_the_managed_file():
    dropins = (JsonDocument("/etc/claude-code/managed-settings.d/10-proxy.json",
                            {"env": {"ANTHROPIC_BASE_URL": "http://proxy.example:8080"}}),
               JsonDocument("/etc/claude-code/managed-settings.d/20-key.json",
                            {"env": {"ANTHROPIC_API_KEY": "sk-ant-policy"}}))
    obs = user_obs(managed_dropins=dropins)
    assert obs.effective_env["ANTHROPIC_BASE_URL"] == "http://proxy.example:8080"
    result = checks.check_claude_env(DEV, obs, 64000)
    assert result.status == "fail" and "ANTHROPIC_API_KEY is set" in result.message
    listing = ["__OCV_FILE__/etc/claude-code/managed-settings.d/b.json", '{"env": {"B": "2"}}', "",
               "__OCV_FILE__/etc/claude-code/managed-settings.d/a.json", "{not json", ""]
    parsed = verify_facts.JsonDirectory().process(listing)
    assert [doc.path.rsplit("/", 1)[1] for doc in parsed] == ["a.json", "b.json"]
    assert parsed[0].error and parsed[1].data == {"env": {"B": "2"}}


def test_verify_reads_settings_json_where_the_deploy_wrote_it():
    """The deploy hard-codes the XDG default; verify used to expand XDG_DATA_HOME in the login shell."""
    from pyinfra.context import ctx_host, ctx_state

    from ollama_claude.verify import operations
    from tests.harness import FakeHost, FakeState

    isolated = parse_settings({"claude_users": ["dev"], "claude_config_isolation": True}, "h1")
    written = user_paths(isolated, DEV, "/home/dev").settings_json
    asked = []

    class Recording(FakeHost):
        def get_fact(self, fact_cls, *args, **kwargs):
            if fact_cls.__name__ == "JsonFile":
                asked.append(kwargs["path"])
            return super().get_fact(fact_cls, *args, **kwargs)

    facts = {"LoginEnvironment": {"HOME": "/home/dev", "XDG_DATA_HOME": "/home/dev/xdg"}, "Kernel": "Linux",
             "Accounts": {"dev": Account("dev", 1000, "dev", "/home/dev", "/bin/bash")}, "JsonFile": None, "JsonDirectory": (),
             "ClaudeCodeVersion": "2.1.332", "HttpHeadStatus": 200}
    with ctx_state.use(FakeState()), ctx_host.use(Recording(facts, name="h1")):
        operations.observe_user(isolated, DEV.model_copy(update={"home": "/home/dev"}),
                                Account("dev", 1000, "dev", "/home/dev", "/bin/bash"))
    assert asked[0] == written == "/home/dev/.local/share/claude-ollama/settings.json"


# --- the Claude link ---------------------------------------------------------------------------------------------
def test_claude_link_command_carries_the_key_only_hidden_and_no_settings_flag():
    command = EditTest().command(user="dev", model="claude-haiku-5-5", timeout=60,
                                 anthropic_base_url="http://127.0.0.1:9", api_key=HiddenValue("sk-ant-x", "***"))
    masked, raw = command.get_masked_value(), command.get_raw_value()
    assert "sk-ant-x" not in masked and "sk-ant-x" in raw
    assert ".verify-settings" not in raw and "unshare -m" in raw and "CLAUDE_CONFIG_DIR" in raw


@pytest.mark.skipif(os.geteuid() != 0 or not shutil.which("unshare"), reason="needs root and unshare")
def test_claude_link_ignores_the_users_settings_and_hides_the_machine_policy():
    """
    The real command with a recording `claude`, in a private /etc where a managed-settings.json points at
    Ollama: the link sees its own config dir, the key, the Anthropic URL, and no policy file.
    """
    user = "ocverify"
    try:
        pwd.getpwnam(user)
    except KeyError:
        subprocess.run(["useradd", "-m", "-s", "/bin/sh", user], check=True)
    tmp_path = Path(tempfile.mkdtemp(prefix="ocverify-"))
    seen = tmp_path / "seen"
    seen.touch()
    shutil.chown(seen, user)
    tmp_path.chmod(0o755)
    fake = tmp_path / "claude"
    fake.write_text(
        "#!/bin/sh\n"
        f"{{ env | grep -E '^(ANTHROPIC|CLAUDE)_' | sort; ls /etc/claude-code; }} > {seen}\n"
        "printf hi > test.txt\n"
        'echo \'{"type":"result","is_error":false,"result":"Created"}\'\n'
    )
    fake.chmod(0o755)
    command = EditTest().command(user=user, model="claude-haiku-5-5", timeout=20, executable=str(fake),
                                 anthropic_base_url="http://127.0.0.1:9", api_key=HiddenValue("sk-ant-y", "***"))
    policy = json.dumps({"env": {"ANTHROPIC_BASE_URL": "http://127.0.0.1:11434"}})
    outer = (f"set -e; u=$(mktemp -d); w=$(mktemp -d); chmod 755 $u; mount --make-rprivate /; "
             f"mount -t overlay overlay -o lowerdir=/etc,upperdir=$u,workdir=$w /etc; mkdir -p /etc/claude-code; "
             f"echo '{policy}' > /etc/claude-code/managed-settings.json; set +e; "
             f"export ANTHROPIC_BASE_URL=http://127.0.0.1:11434 ANTHROPIC_AUTH_TOKEN=ollama; "
             f"{command.get_raw_value()}")
    run = subprocess.run(["unshare", "-m", "sh", "-c", outer], capture_output=True, text=True, timeout=60,
                         check=False)
    result = EditTest().process(run.stdout.splitlines())
    lines = seen.read_text().splitlines()
    shutil.rmtree(tmp_path)
    assert result.passed, run.stdout + run.stderr
    assert "ANTHROPIC_API_KEY=sk-ant-y" in lines and "ANTHROPIC_BASE_URL=http://127.0.0.1:9" in lines
    assert not any(line.startswith("ANTHROPIC_AUTH_TOKEN") for line in lines)
    assert any(line.startswith("CLAUDE_CONFIG_DIR=") and "ollama-claude-verify." in line for line in lines)
    assert "managed-settings.json" not in lines  # /etc/claude-code is empty for the link


@pytest.mark.skipif(os.geteuid() != 0, reason="needs root")
def test_claude_link_refuses_the_key_when_a_policy_file_is_visible(tmp_path: Path):
    """Where the policy cannot be hidden (macOS, no unshare), the link reads back what applies and refuses."""
    link = render("claude-link.sh", base_url="http://127.0.0.1:9", timeout=5, claude="/bin/false",
                  timeout_command=verify_facts.TIMEOUT,
                  prompt="x", model="m", managed_paths=[str(tmp_path / "managed-settings.json")], managed_dirs=[])
    (tmp_path / "managed-settings.json").write_text("{}")
    work = tmp_path / "work"
    work.mkdir()
    (work / ".anthropic-key").write_text("sk-ant-z")
    (work / "link.sh").write_text(link)
    run = subprocess.run(["sh", str(work / "link.sh")], capture_output=True, text=True, timeout=20, check=False)
    assert run.returncode == 3 and "the key was not used" in run.stdout
    assert not (work / ".anthropic-key").exists()
