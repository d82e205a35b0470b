"""Settings validation: every bad value stops the run with the host and field named."""

from __future__ import annotations

from pathlib import Path

import pytest

from ollama_claude.options_doc import options_table
from ollama_claude.settings import ModelRef, SettingsError, fleet_settings, parse_settings

README = Path(__file__).resolve().parents[2] / "README.md"


def error_for(data: dict, host: str = "gpu1") -> str:
    with pytest.raises(SettingsError) as caught:
        parse_settings(data, host)
    return str(caught.value)


def test_defaults_are_valid_and_local():
    settings = parse_settings({}, "gpu1")
    assert settings.ollama_version == "0.32.15"
    assert settings.ollama_context_length == 64000
    assert settings.base_url == "http://127.0.0.1:11434"
    assert settings.default_model == "glm-4.7-flash:latest"
    assert set(settings.role_models.values()) == {"glm-4.7-flash:latest"}


@pytest.mark.parametrize("version", ["0.14.3", "0.16.3", "0.17.7"])
def test_version_below_the_tool_floor_is_refused_with_the_reason(version):
    message = error_for({"ollama_version": version})
    assert message.startswith("host gpu1: ollama_version:")
    assert "tool calls after thinking are malformed before 0.18.0" in message


def test_the_floor_itself_is_accepted():
    assert parse_settings({"ollama_version": "0.18.0"}, "gpu1").ollama_version == "0.18.0"


@pytest.mark.parametrize("value", ["30m", "1h30m", "1.5h", "90s", "300ms", "-1", "-1m", "0", "1800", "+5m"])
def test_keep_alive_accepts_what_ollama_parses(value):
    assert parse_settings({"ollama_keep_alive": value}, "gpu1").ollama_keep_alive == value


@pytest.mark.parametrize("value", ["1d", "30 m", "forever", "1h 30m", "m", ".", "1.5", "5M", ""])
def test_keep_alive_refuses_what_ollama_would_silently_ignore(value):
    message = error_for({"ollama_keep_alive": value})
    assert "ollama_keep_alive" in message and "Go duration" in message


def test_ipv6_bind_is_bracketed_in_ollama_host_and_every_url():
    settings = parse_settings({"ollama_host": "::1"}, "gpu1")
    assert settings.bind_address == "[::1]:11434"
    assert settings.listen_url == settings.base_url == "http://[::1]:11434"
    wildcard = parse_settings({"ollama_host": "::", "ollama_allow_lan": True}, "gpu1")
    assert wildcard.bind_address == "[::]:11434" and wildcard.listen_url == "http://[::1]:11434"
    assert parse_settings({}, "gpu1").bind_address == "127.0.0.1:11434"


def test_unknown_own_key_suggests_the_right_one():
    assert "ollama_modles: unknown option; did you mean 'ollama_models'?" in error_for({"ollama_modles": []})


def test_foreign_keys_are_left_alone():
    assert parse_settings({"ssh_user": "root", "lab_extra": 1}, "gpu1").ollama_port == 11434


def test_hugging_face_import_is_refused_below_030_with_the_reason():
    message = error_for({"ollama_models": ["hf.co/bartowski/Qwen3-GGUF:Q4_K_M"], "ollama_version": "0.18.0"})
    assert "host gpu1: ollama_models:" in message
    assert "no tools capability" in message and "raise ollama_version to 0.30.0" in message


def test_hugging_face_import_is_accepted_from_030_the_tools_check_decides():
    settings = parse_settings({"ollama_models": ["hf.co/bartowski/Qwen3-GGUF:Q4_K_M"]}, "gpu1")
    (ref,) = settings.library_models
    assert ref.is_gguf_import and ref.full == "hf.co/bartowski/Qwen3-GGUF:Q4_K_M"


def test_lan_binding_needs_explicit_consent():
    assert "ollama_allow_lan" in error_for({"ollama_host": "0.0.0.0"})
    assert parse_settings({"ollama_host": "0.0.0.0", "ollama_allow_lan": True}, "h").base_url == (
        "http://127.0.0.1:11434"
    )


def test_default_model_must_be_declared():
    assert "not declared" in error_for({"ollama_default_model": "qwen3"})
    settings = parse_settings({"ollama_models": ["glm-4.7-flash", "qwen3"], "ollama_default_model": "qwen3"}, "h")
    assert settings.default_model == "qwen3:latest"


def test_cloud_models_go_in_their_own_list():
    assert "ollama_cloud_models" in error_for({"ollama_models": ["glm-5:cloud"]})
    assert "does not end in :cloud" in error_for({"ollama_cloud_models": ["glm-5"]})


def test_root_is_not_a_claude_user():
    assert "claude_users.0.name: root cannot run the edit test" in error_for({"claude_users": ["root"]})


def test_managed_environment_cannot_be_overridden_by_extras():
    assert "OLLAMA_CONTEXT_LENGTH is managed" in error_for({"ollama_environment": {"OLLAMA_CONTEXT_LENGTH": "1"}})


@pytest.mark.parametrize(
    ("text", "full", "digest"),
    [
        ("glm-4.7-flash", "glm-4.7-flash:latest", None),
        ("gpt-oss:20b", "gpt-oss:20b", None),
        ("qwen3-coder:30b@sha256:" + "a" * 64, "qwen3-coder:30b", "a" * 64),
        ("library/qwen3", "library/qwen3:latest", None),
    ],
)
def test_model_references_parse(text, full, digest):
    ref = ModelRef.parse(text)
    assert (ref.full, ref.digest) == (full, digest)


@pytest.mark.parametrize("text", ["Bad Name", "x:", "x@sha256:123", ":tag"])
def test_bad_model_references_are_refused(text):
    with pytest.raises(ValueError):
        ModelRef.parse(text)


def test_cloud_suffixes():
    assert ModelRef.parse("glm-5:cloud").is_cloud and ModelRef.parse("gpt-oss:120b-cloud").is_cloud
    assert not ModelRef.parse("glm-4.7-flash").is_cloud


def test_fleet_validation_lists_every_bad_host_at_once():
    class FakeData(dict):
        def dict(self):
            return self

    class FakeHost:
        def __init__(self, name, data):
            self.name, self.data = name, FakeData(data)

    class FakeState:
        inventory = (FakeHost("ok1", {}), FakeHost("bad1", {"ollama_port": 0}), FakeHost("bad2", {"ollama_gpu": "x"}))

    with pytest.raises(SettingsError) as caught:
        fleet_settings(FakeState())
    message = str(caught.value)
    assert "nothing was changed" in message
    assert "host bad1: ollama_port" in message and "host bad2: ollama_gpu" in message
    assert "ok1" not in message


def test_readme_option_table_matches_the_settings_model():
    """The README's table is generated from Settings (python -m ollama_claude.options_doc); it must be current."""
    assert options_table() in README.read_text(), "regenerate the README table: python -m ollama_claude.options_doc"
