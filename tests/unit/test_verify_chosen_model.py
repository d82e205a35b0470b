"""The chain's choice as the user's default: the record's rules, and the write step against fact fixtures."""

from __future__ import annotations

import copy
import hashlib
import json

from pyinfra.context import ctx_host, ctx_state

from ollama_claude.accounts import Account
from ollama_claude.claude.chosen_model import parse_record, record_for, with_chosen_model
from ollama_claude.claude.deploy import user_env
from ollama_claude.claude.operations import render
from ollama_claude.claude.paths import user_paths
from ollama_claude.claude.settings_merge import user_settings
from ollama_claude.settings import parse_settings
from ollama_claude.verify import operations
from tests.harness import FakeHost, FakeState, render_command
from tests.unit.test_verify_operation import GOOD_FACTS, REFUSED, edit_key

SETTINGS = parse_settings({"claude_users": ["dev"], "ollama_cloud_models": ["glm-5:cloud"]}, "h1")
RECORD = "/home/dev/.config/ollama-claude/chosen-model"
SETTINGS_JSON = "/home/dev/.claude/settings.json"
ENV_SH = "/home/dev/.config/ollama-claude/env.sh"
DEV = Account("dev", 1000, "dev", "/home/dev", "/bin/bash")
OWNED = {"mode": 600, "user": "dev", "group": "dev"}


def test_a_record_only_for_a_declared_model_other_than_the_default():
    assert record_for(SETTINGS, "glm-5:cloud") == "glm-5:cloud"
    assert record_for(SETTINGS, "glm-4.7-flash:latest") is None
    assert record_for(SETTINGS, "claude-3-5-haiku-latest") is None  # served by Anthropic, not Ollama
    off = parse_settings({"claude_users": ["dev"], "ollama_cloud_models": ["glm-5:cloud"],
                          "verify_write_default": False}, "h1")
    assert record_for(off, "glm-5:cloud") is None


def test_the_recorded_model_becomes_the_default_and_the_roles_that_follow_it():
    chosen = with_chosen_model(SETTINGS, parse_record(["glm-5:cloud", ""]))
    assert chosen.default_model == "glm-5:cloud" and set(chosen.role_models.values()) == {"glm-5:cloud"}
    assert with_chosen_model(SETTINGS, parse_record(None)) is SETTINGS
    assert with_chosen_model(SETTINGS, "qwen3:latest") is SETTINGS  # no longer declared: ignored


def files_as_configured(settings, record: str | None) -> dict:
    """Facts of a user whose files match ``settings`` (the Claude Code step ran with that record)."""
    paths = user_paths(settings, settings.claude_users[0], "/home/dev")
    effective = with_chosen_model(settings, record)
    env_sh = render("env.sh", env=user_env(effective, paths))
    return {
        "Accounts": {"dev": DEV},
        "FileContents": {f"path={RECORD}": [record] if record else None,
                         f"path={SETTINGS_JSON}": json.dumps(user_settings(effective), indent=2).splitlines()},
        "File": {f"path={RECORD}": OWNED if record else None, f"path={SETTINGS_JSON}": OWNED,
                 f"path={ENV_SH}": OWNED},
        "Sha256File": {f"path={ENV_SH}": hashlib.sha256(env_sh.encode()).hexdigest()},
    }


def chain_then_write(local_passes: bool, record: str | None) -> tuple[list, list[str]]:
    facts = copy.deepcopy(GOOD_FACTS)
    facts["OllamaSignin"] = {"signed_in": True, "signin_url": None}
    if not local_passes:
        facts["EditTest"][edit_key("glm-4.7-flash:latest")] = REFUSED
    facts["Accounts"] = {"dev": DEV}
    facts.update({key: value for key, value in files_as_configured(SETTINGS, record).items() if key != "Accounts"})
    fake, fake_state = FakeHost(facts, name="h1"), FakeState()
    with ctx_state.use(fake_state), ctx_host.use(fake):
        list(operations.checklist._inner(SETTINGS))
        commands = [render_command(c) for c in operations.write_chosen_model._inner(SETTINGS,
                                                                                      SETTINGS.claude_users[0])]
    return commands, fake.noops


def uploads(commands) -> dict[str, str]:
    return {command[2]: command[1] for command in commands if isinstance(command, list)}


def test_cloud_chosen_records_it_and_writes_it_into_settings_and_env():
    commands, _ = chain_then_write(local_passes=False, record=None)
    written = uploads(commands)
    assert written[f"{RECORD}.ollama-claude.tmp"] == "glm-5:cloud\n"
    settings_json = json.loads(written[f"{SETTINGS_JSON}.ollama-claude.tmp"])
    # settings.json ``model`` carries the main model: ANTHROPIC_MODEL would outrank it (and /model with it).
    assert settings_json["model"] == "glm-5:cloud" and "ANTHROPIC_MODEL" not in settings_json["env"]
    assert settings_json["env"]["ANTHROPIC_DEFAULT_SONNET_MODEL"] == "glm-5:cloud"
    assert f"{ENV_SH}.ollama-claude.tmp" not in written  # the env file holds nothing settings.json has


def test_the_same_choice_again_changes_nothing():
    commands, noops = chain_then_write(local_passes=False, record="glm-5:cloud")
    assert commands == [] and f"{SETTINGS_JSON} already has the managed keys" in noops


def test_local_passing_again_removes_the_record_and_restores_the_default():
    commands, _ = chain_then_write(local_passes=True, record="glm-5:cloud")
    assert f"rm -f {RECORD}" in commands
    settings_json = json.loads(uploads(commands)[f"{SETTINGS_JSON}.ollama-claude.tmp"])
    assert settings_json["model"] == "glm-4.7-flash:latest"
