"""The settings.json merge: the user's keys survive, ours win, a second merge changes nothing."""

from __future__ import annotations

import json

import pytest
from hypothesis import given
from hypothesis import settings as hsettings
from hypothesis import strategies as st

from ollama_claude.claude.settings_merge import (
    CONFLICTING_ENV,
    SettingsFileError,
    claude_env,
    machine_settings,
    merge_settings,
    parse_settings_text,
    user_settings,
)
from ollama_claude.settings import parse_settings

SETTINGS = parse_settings({"claude_users": ["dev"]}, "testhost")
MANAGED = user_settings(SETTINGS)

json_leaf = st.one_of(st.none(), st.booleans(), st.integers(), st.text(max_size=8))
json_value = st.recursive(
    json_leaf,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=6), inner, max_size=3),
    max_leaves=8,
)
env_names = st.sampled_from([*MANAGED["env"], *CONFLICTING_ENV, "HTTP_PROXY", "MY_VAR", "EDITOR"])
user_files = st.fixed_dictionaries(
    {},
    optional={
        "env": st.dictionaries(env_names, st.text(max_size=8), max_size=6),
        "permissions": st.dictionaries(
            st.sampled_from(["allow", "deny", "ask", "defaultMode", "additionalDirectories"]),
            json_value,
            max_size=4,
        ),
        "model": st.text(max_size=8),
        "hooks": json_value,
        "statusLine": json_value,
    },
).flatmap(
    lambda base: st.dictionaries(st.text(max_size=10), json_value, max_size=4).map(lambda extra: extra | base)
)


def _leaves(data: dict, prefix: tuple[str, ...] = ()) -> dict[tuple[str, ...], object]:
    """Every non-object value (and empty object) by its key path."""
    out: dict[tuple[str, ...], object] = {}
    for key, value in data.items():
        if isinstance(value, dict) and value:
            out.update(_leaves(value, (*prefix, key)))
        else:
            out[(*prefix, key)] = value
    return out


def _at(data: dict, path: tuple[str, ...]) -> object:
    for part in path:
        data = data[part]
    return data


@hsettings(max_examples=300)
@given(user_files)
def test_user_keys_survive_and_managed_keys_win(existing):
    merged = merge_settings(existing, MANAGED, CONFLICTING_ENV).data
    managed_leaves = _leaves(MANAGED)
    for path, value in _leaves(existing).items():
        overlaps = any(path[: len(m)] == m or m[: len(path)] == path for m in managed_leaves)
        dropped = path[:1] == ("env",) and len(path) == 2 and path[1] in CONFLICTING_ENV
        if not overlaps and not dropped:
            assert _at(merged, path) == value, path
    for path, value in managed_leaves.items():
        assert _at(merged, path) == value
    assert not set(merged.get("env", {})) & set(CONFLICTING_ENV)


@hsettings(max_examples=300)
@given(user_files)
def test_merge_is_idempotent(existing):
    once = merge_settings(existing, MANAGED, CONFLICTING_ENV)
    twice = merge_settings(once.data, MANAGED, CONFLICTING_ENV)
    assert twice.data == once.data
    assert twice.render() == once.render()
    assert not twice.replaced and not twice.removed


def test_custom_keys_hooks_and_rules_survive_in_their_order():
    existing = {
        "hooks": {
            "PostToolUse": [{"matcher": "Edit", "hooks": [{"type": "command", "command": "make fmt"}]}]
        },
        "permissions": {"allow": ["Bash(make:*)"], "deny": ["Read(./.env)"], "defaultMode": "plan"},
        "env": {
            "EDITOR": "vim",
            "ANTHROPIC_BASE_URL": "https://elsewhere.example",
            "CLAUDE_CODE_USE_BEDROCK": "1",
        },
        "statusLine": {"type": "command", "command": "date"},
    }
    merge = merge_settings(existing, MANAGED, CONFLICTING_ENV)
    assert list(merge.data)[:4] == ["hooks", "permissions", "env", "statusLine"]
    assert merge.data["hooks"] == existing["hooks"]
    assert merge.data["permissions"] == {
        "allow": ["Bash(make:*)"],
        "deny": ["Read(./.env)"],
        "defaultMode": "acceptEdits",
    }
    assert merge.data["env"]["EDITOR"] == "vim"
    assert merge.data["env"]["ANTHROPIC_BASE_URL"] == "http://127.0.0.1:11434"
    assert merge.replaced == ["env.ANTHROPIC_BASE_URL", "permissions.defaultMode"]
    assert merge.removed == ["env.CLAUDE_CODE_USE_BEDROCK"]
    assert merge.report == (
        "replaced env.ANTHROPIC_BASE_URL, permissions.defaultMode; removed env.CLAUDE_CODE_USE_BEDROCK"
    )


def test_report_names_a_stale_api_key_without_its_value():
    merge = merge_settings({"env": {"ANTHROPIC_API_KEY": "sk-ant-secret"}}, MANAGED, CONFLICTING_ENV)
    assert merge.data["env"]["ANTHROPIC_API_KEY"] == ""
    assert "env.ANTHROPIC_API_KEY" in merge.report and "sk-ant" not in merge.report


def test_small_fast_model_is_removed_because_it_beats_the_haiku_mapping():
    merge = merge_settings(
        {"env": {"ANTHROPIC_SMALL_FAST_MODEL": "claude-3-5-haiku"}}, MANAGED, CONFLICTING_ENV
    )
    assert "ANTHROPIC_SMALL_FAST_MODEL" not in merge.data["env"]
    assert merge.data["env"]["ANTHROPIC_DEFAULT_HAIKU_MODEL"] == "glm-4.7-flash:latest"


def test_every_role_points_at_a_local_model():
    env = claude_env(parse_settings({"claude_role_models": {"haiku": "qwen3:4b"}}, "h"))
    assert env["ANTHROPIC_DEFAULT_HAIKU_MODEL"] == "qwen3:4b"
    roles = [
        key for key in env if key.startswith("ANTHROPIC_DEFAULT_") or key == "CLAUDE_CODE_SUBAGENT_MODEL"
    ]
    assert len(roles) == 5
    assert all(env[key] == "glm-4.7-flash:latest" for key in roles if key != "ANTHROPIC_DEFAULT_HAIKU_MODEL")
    assert not any("claude" in env[key] for key in roles)


def test_env_follows_options():
    env = claude_env(
        parse_settings(
            {
                "claude_telemetry_off": False,
                "claude_max_output_tokens": 4096,
                "ollama_base_url": "http://10.0.0.5:11434",
                "claude_auth_token": "t0k",
            },
            "h",
        )
    )
    assert "DISABLE_TELEMETRY" not in env and env["DISABLE_AUTOUPDATER"] == "1"
    assert env["CLAUDE_CODE_MAX_OUTPUT_TOKENS"] == "4096"
    assert env["ANTHROPIC_BASE_URL"] == "http://10.0.0.5:11434"
    assert env["ANTHROPIC_AUTH_TOKEN"] == "t0k" and env["ANTHROPIC_API_KEY"] == ""


def test_machine_policy_carries_no_token():
    policy = machine_settings(SETTINGS)["env"]
    assert set(policy) == {
        "ANTHROPIC_BASE_URL",
        "DISABLE_AUTOUPDATER",
        "DISABLE_TELEMETRY",
        "DISABLE_ERROR_REPORTING",
        "CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC",
    }


@pytest.mark.parametrize("text", [None, "", "  \n"])
def test_missing_or_blank_file_is_empty(text):
    assert parse_settings_text(text, "/home/dev/.claude/settings.json") == {}


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (
            '{"env": {"A": 1},}',
            (
                "/home/dev/.claude/settings.json: invalid JSON (Expecting property name enclosed in "
                "double quotes at line 1 column 18); fix or move the file, then run again"
            ),
        ),
        ("[1, 2]", "/home/dev/.claude/settings.json: top level is a JSON list, not an object; fix the file"),
        ('{"env": "x"}', "/home/dev/.claude/settings.json: 'env' is not a JSON object; fix the file"),
    ],
)
def test_unreadable_file_names_path_and_error(text, message):
    with pytest.raises(SettingsFileError) as error:
        parse_settings_text(text, "/home/dev/.claude/settings.json")
    assert str(error.value) == message


def test_render_round_trips():
    merge = merge_settings({"x": "ü"}, MANAGED)
    assert json.loads(merge.render()) == merge.data
    assert merge.render().endswith("}\n") and "ü" in merge.render()
