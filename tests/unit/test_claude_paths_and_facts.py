"""Claude Code paths per user and OS, rc blocks, and what the facts read from command output."""

from __future__ import annotations

import base64
import hashlib
import json

import pytest

from ollama_claude.claude.facts import (
    ClaudeCodeInstall,
    ClaudeNativePackage,
    ClaudePlatform,
    integrity_sha512_hex,
)
from ollama_claude.claude.operations import RC_MARKER, render, with_rc_block
from ollama_claude.claude.paths import expand_home, managed_settings_path, user_paths
from ollama_claude.settings import SettingsError, parse_settings
from ollama_claude.templating import fish_quote

BEGIN, END = RC_MARKER.format(mark="BEGIN"), RC_MARKER.format(mark="END")


def test_managed_settings_locations_per_os():
    assert managed_settings_path("Linux") == "/etc/claude-code/managed-settings.json"
    assert managed_settings_path("Darwin") == "/Library/Application Support/ClaudeCode/managed-settings.json"
    with pytest.raises(
        ValueError, match="claude_managed_settings: no managed-settings.json location known for SunOS"
    ):
        managed_settings_path("SunOS")


@pytest.mark.parametrize(
    ("configured", "expected"),
    [
        ("${XDG_DATA_HOME:-$HOME/.local/share}/claude-ollama", "/home/dev/.local/share/claude-ollama"),
        ("~/claude-ollama", "/home/dev/claude-ollama"),
        ("${HOME}/x/../y", "/home/dev/y"),
        ("/srv/claude/dev", "/srv/claude/dev"),
    ],
)
def test_config_dir_expands_to_a_concrete_path(configured, expected):
    assert expand_home(configured, "/home/dev") == expected


def test_config_dir_with_other_variables_is_refused():
    with pytest.raises(ValueError, match=r"claude_config_dir '\$WORK/c' must expand to an absolute path"):
        expand_home("$WORK/c", "/home/dev")


def test_default_paths_use_the_users_claude_dir_and_both_bash_files():
    settings = parse_settings({"claude_users": ["dev"]}, "h")
    paths = user_paths(settings, settings.claude_users[0], "/home/dev", ".bash_profile")
    assert paths.settings_json == "/home/dev/.claude/settings.json"
    assert paths.rc_files == ("/home/dev/.bashrc", "/home/dev/.bash_profile")
    assert paths.wrapper is None and paths.config_dir is None


def test_isolation_moves_settings_and_adds_a_wrapper():
    settings = parse_settings(
        {
            "claude_users": [{"name": "dev", "shell": "fish"}],
            "claude_config_isolation": True,
            "claude_wrapper_name": "cl",
        },
        "h",
    )
    paths = user_paths(settings, settings.claude_users[0], "/home/dev")
    assert paths.settings_json == "/home/dev/.local/share/claude-ollama/settings.json"
    assert paths.wrapper == "/home/dev/.local/bin/cl" and paths.wrapper_dir == "/home/dev/.local/bin"
    assert paths.rc_files == ("/home/dev/.config/fish/config.fish",)


def test_zsh_block_goes_where_every_zsh_reads_it():
    settings = parse_settings({"claude_users": [{"name": "z", "shell": "zsh"}]}, "h")
    assert user_paths(settings, settings.claude_users[0], "/home/z").rc_files == ("/home/z/.zshenv",)


def test_unknown_shell_and_root_user_are_refused_with_the_field():
    with pytest.raises(
        SettingsError, match="host h: claude_users.0.shell: Input should be 'bash', 'zsh' or 'fish'"
    ):
        parse_settings({"claude_users": [{"name": "dev", "shell": "tcsh"}]}, "h")
    with pytest.raises(SettingsError, match="claude_users.0.name: root cannot run the edit test"):
        parse_settings({"claude_users": ["root"]}, "h")
    with pytest.raises(SettingsError, match="claude_code_install: Input should be 'native', 'npm' or 'off'"):
        parse_settings({"claude_code_install": "brew"}, "h")
    with pytest.raises(
        SettingsError, match="claude_wrapper_nam: unknown option; did you mean 'claude_wrapper_name'"
    ):
        parse_settings({"claude_wrapper_nam": "x"}, "h")


def test_rc_block_after_three_runs_is_there_once():
    lines = ["# mine", "alias ll='ls -l'"]
    for _ in range(3):
        lines = with_rc_block(lines, ". /home/dev/.config/ollama-claude/env.sh\n")
    assert lines.count(BEGIN) == 1 and lines.count(END) == 1
    assert lines[:2] == ["# mine", "alias ll='ls -l'"]


def test_rc_block_changed_content_replaces_in_place():
    lines = with_rc_block(["a", BEGIN, "old", END, "b"], "new")
    assert lines == ["a", BEGIN, "new", END, "b"]


def test_env_files_quote_for_their_shell():
    env = {"ANTHROPIC_AUTH_TOKEN": "it's $secret\\n", "ANTHROPIC_API_KEY": ""}
    sh = render("env.sh", env=env)
    assert "export ANTHROPIC_AUTH_TOKEN='it'\"'\"'s $secret\\n'" in sh and "export ANTHROPIC_API_KEY=''" in sh
    assert "set -gx ANTHROPIC_AUTH_TOKEN 'it\\'s $secret\\\\n'" in render("env.fish", env=env)
    assert fish_quote("") == "''"


def test_wrapper_sources_the_env_and_execs_the_stable_claude():
    text = render(
        "wrapper.sh", env_file="/home/dev/.config/ollama-claude/env.sh", claude="/usr/local/bin/claude"
    )
    assert text.startswith("#!/bin/sh\n")
    assert '. /home/dev/.config/ollama-claude/env.sh\nexec /usr/local/bin/claude "$@"\n' in text


@pytest.mark.parametrize(
    ("uname", "platform"),
    [
        ("Linux x86_64 gnu", "linux-x64"),
        ("Linux aarch64 musl", "linux-arm64-musl"),
        ("Darwin arm64 gnu", "darwin-arm64"),
        ("Darwin x86_64 gnu", "darwin-x64"),
        ("Linux riscv64 gnu", None),
        ("FreeBSD amd64 gnu", None),
    ],
)
def test_platform_package_suffix(uname, platform):
    assert ClaudePlatform().process([uname]) == platform


def test_install_fact_reads_link_and_pinned_version():
    fact = ClaudeCodeInstall()
    assert fact.process(["link /opt/claude-code/2.1.197/claude", "pinned 2.1.197 (Claude Code)"]) == {
        "link": "/opt/claude-code/2.1.197/claude",
        "link_is_file": False,
        "pinned": "2.1.197",
    }
    assert fact.process(["file"]) == {"link": None, "link_is_file": True, "pinned": None}


def _package_fact(version="2.1.197"):
    fact = ClaudeNativePackage()
    fact.command(registry="http://10.213.13.1:8080/npm", platform="linux-x64", version=version)
    return fact


def test_package_fact_reads_version_document_and_packument():
    digest = hashlib.sha512(b"tgz").digest()
    dist = {
        "tarball": "http://10.213.13.1:8080/npm/x.tgz",
        "integrity": "sha512-" + base64.b64encode(digest).decode(),
    }
    expected = {"tarball": dist["tarball"], "sha512": digest.hex()}
    assert _package_fact().process(json.dumps({"version": "2.1.197", "dist": dist}).split("\n")) == expected
    packument = {"name": "@anthropic-ai/claude-code-linux-x64", "versions": {"2.1.197": {"dist": dist}}}
    assert _package_fact().process(json.dumps(packument, indent=1).split("\n")) == expected
    assert "version not published" in _package_fact("9.9.9").process([json.dumps(packument)])["error"]


def test_package_fact_errors_name_package_and_registry():
    error = _package_fact().process(["__OLLAMA_CLAUDE_FETCH_FAILED__"])["error"]
    assert error == (
        "cannot fetch @anthropic-ai/claude-code-linux-x64@2.1.197 from http://10.213.13.1:8080/npm; "
        "check claude_code_registry and the host's network"
    )
    no_sha512 = {"dist": {"tarball": "http://x/y.tgz", "shasum": "ab"}}
    assert "no sha512 dist.integrity" in _package_fact().process([json.dumps(no_sha512)])["error"]


def test_package_fact_asks_the_registry_by_version_then_by_packument():
    command = ClaudeNativePackage().command(registry="http://m/npm", platform="linux-x64", version="2.1.197")
    assert "http://m/npm/@anthropic-ai/claude-code-linux-x64/2.1.197" in command
    assert "http://m/npm/@anthropic-ai%2Fclaude-code-linux-x64" in command


def test_integrity_picks_sha512_among_several():
    digest = hashlib.sha512(b"x").digest()
    assert integrity_sha512_hex("sha1-abc sha512-" + base64.b64encode(digest).decode()) == digest.hex()
    assert integrity_sha512_hex("sha512-!!notbase64") is None
