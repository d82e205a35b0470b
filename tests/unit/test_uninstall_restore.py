"""The restore rules of uninstall: the user's file before our first deploy comes back, keys added since stay."""

from __future__ import annotations

import pytest

from ollama_claude.claude.operations import with_rc_block
from ollama_claude.claude.settings_merge import merge_settings, user_settings
from ollama_claude.settings import Settings, SettingsError, parse_settings
from ollama_claude.uninstall.operations import without_rc_block
from ollama_claude.uninstall.restore import MACHINE_KEYS, USER_KEYS, restored, written_by_us

MANAGED = user_settings(Settings(claude_max_output_tokens=4096))
USER_FILE = {
    "env": {"EDITOR": "vim", "ANTHROPIC_MODEL": "my-own-model", "CLAUDE_CODE_USE_BEDROCK": "1"},
    "model": "opus",
    "permissions": {"allow": ["Bash(make:*)"]},
    "statusLine": {"type": "command", "command": "date"},
}


def deployed(original: dict) -> dict:
    return merge_settings(original, MANAGED, ("CLAUDE_CODE_USE_BEDROCK",)).data


def test_the_users_own_values_come_back_exactly():
    assert restored(deployed(USER_FILE), USER_FILE, USER_KEYS) == USER_FILE


def test_keys_the_user_added_since_the_deploy_stay():
    current = deployed(USER_FILE)
    current["env"]["NEW_SINCE"] = "1"
    current["theme"] = "dark"
    result = restored(current, USER_FILE, USER_KEYS)
    assert result["env"] == {**USER_FILE["env"], "NEW_SINCE": "1"} and result["theme"] == "dark"


def test_a_file_we_created_goes_entirely_or_keeps_only_what_the_user_added():
    ours = deployed({})
    assert written_by_us(ours, USER_KEYS)
    assert restored(ours, None, USER_KEYS) is None
    ours["hooks"] = {}
    assert restored(ours, None, USER_KEYS) == {"hooks": {}}


def test_objects_we_created_do_not_stay_behind_empty():
    original = {"theme": "dark"}
    assert restored(deployed(original), original, USER_KEYS) == original


def test_a_users_file_is_not_mistaken_for_ours():
    assert not written_by_us(USER_FILE, USER_KEYS)
    assert not written_by_us(None, USER_KEYS)
    assert written_by_us({"env": {"ANTHROPIC_BASE_URL": "x", "DISABLE_AUTOUPDATER": "1"}}, MACHINE_KEYS)


def test_every_key_any_deploy_writes_is_known():
    written = {".".join(path) for path in USER_KEYS.written}
    assert {"env.ANTHROPIC_BASE_URL", "env.CLAUDE_CODE_MAX_OUTPUT_TOKENS", "env.DISABLE_TELEMETRY", "model",
            "permissions.defaultMode"} <= written
    assert {".".join(path) for path in MACHINE_KEYS.written} >= {"env.ANTHROPIC_BASE_URL", "env.DISABLE_TELEMETRY"}


@pytest.mark.parametrize("lines", [["a", "b"], ["a", ""], [], ["only"]])
def test_rc_block_added_then_removed_gives_the_lines_back(lines):
    with_block = with_rc_block(lines, "[ -f x ] && . x\n")
    assert without_rc_block(with_block) == (lines if lines[-1:] != [""] else lines[:-1])


def test_remove_models_needs_a_server_scope():
    with pytest.raises(SettingsError, match="uninstall_remove_models needs uninstall_scope"):
        parse_settings({"uninstall_remove_models": True}, "h1")
    assert parse_settings({"uninstall_remove_models": True, "uninstall_scope": "everything"}, "h1")
    with pytest.raises(SettingsError, match="did you mean 'uninstall_scope'"):
        parse_settings({"uninstall_scop": "ollama"}, "h1")
