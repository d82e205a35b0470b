"""The stand-in's parsing of OLLAMA_HOST, OLLAMA_KEEP_ALIVE, context length and model names, in-process."""

import hashlib
import importlib.machinery
import importlib.util
import sys

import pytest

from ollama_claude.lab.standin_server import STANDIN_SOURCE


@pytest.fixture(scope="module")
def standin():
    """The executable loaded as a module, without leaving a __pycache__ beside it (it ships as package data)."""
    loader = importlib.machinery.SourceFileLoader("ollama_standin", str(STANDIN_SOURCE))
    module = importlib.util.module_from_spec(importlib.util.spec_from_loader(loader.name, loader))
    saved, sys.dont_write_bytecode = sys.dont_write_bytecode, True
    try:
        loader.exec_module(module)
    finally:
        sys.dont_write_bytecode = saved
    return module


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("", ("http", "127.0.0.1", 11434)),
        ("0.0.0.0", ("http", "0.0.0.0", 11434)),
        ("0.0.0.0:8080", ("http", "0.0.0.0", 8080)),
        (":9000", ("http", "", 9000)),
        ("http://10.0.0.5", ("http", "10.0.0.5", 80)),
        ("https://example.org", ("https", "example.org", 443)),
        ("[::1]:11435", ("http", "::1", 11435)),
        ("ollama.com", ("https", "ollama.com", 443)),
        ("127.0.0.1:99999", ("http", "127.0.0.1", 11434)),
    ],
)
def test_ollama_host_like_envconfig(standin, value, expected):
    assert standin.parse_host(value) == expected


@pytest.mark.parametrize(
    ("value", "seconds"), [(None, 300), ("5m", 300), ("1h30m", 5400), ("90", 90), ("0", 0), ("-1", None)]
)
def test_keep_alive(standin, monkeypatch, value, seconds):
    if value is None:
        monkeypatch.delenv("OLLAMA_KEEP_ALIVE", raising=False)
    else:
        monkeypatch.setenv("OLLAMA_KEEP_ALIVE", value)
    assert standin.keep_alive_seconds() == seconds


def test_context_length_defaults_to_low_vram_auto_and_is_capped_by_the_model(standin, monkeypatch):
    monkeypatch.delenv("OLLAMA_CONTEXT_LENGTH", raising=False)
    assert standin.context_length_in_effect(202752) == 4096
    monkeypatch.setenv("OLLAMA_CONTEXT_LENGTH", "131072")
    assert standin.context_length_in_effect(202752) == 131072
    assert standin.context_length_in_effect(40960) == 40960


@pytest.mark.parametrize(
    ("raw", "full", "shortest"),
    [
        ("qwen3", "registry.ollama.ai/library/qwen3:latest", "qwen3:latest"),
        ("gpt-oss:20b", "registry.ollama.ai/library/gpt-oss:20b", "gpt-oss:20b"),
        ("me/mine:1", "registry.ollama.ai/me/mine:1", "me/mine:1"),
        ("hf.co/bartowski/x-GGUF:Q4_K_M", "hf.co/bartowski/x-GGUF:Q4_K_M", "hf.co/bartowski/x-GGUF:Q4_K_M"),
    ],
)
def test_model_names(standin, raw, full, shortest):
    name = standin.ModelName.parse(raw)
    assert (name.full, name.shortest) == (full, shortest)


def test_invalid_and_cloud_names(standin):
    assert standin.ModelName.parse("bad name") is None
    assert standin.ModelName.parse("a/b/c/d") is None
    assert standin.ModelName.parse_pull("gpt-oss:120b:cloud").shortest == "gpt-oss:120b-cloud"
    assert standin.ModelName.parse("glm-5.2:cloud").is_cloud
    assert standin.ModelName.parse("gpt-oss:120b-cloud").is_cloud
    assert not standin.ModelName.parse("qwen3").is_cloud


def test_scripted_model_prefers_write_then_edit_and_resolves_the_working_directory(standin):
    request = {
        "system": "Primary working directory: /srv/app",
        "messages": [{"role": "user", "content": [
            {"type": "text", "text": "<system-reminder>ignore me</system-reminder>"},
            {"type": "text", "text": "Create notes.md with content two words"},
        ]}],
    }  # fmt: skip
    _, _, calls = standin.scripted_reply({**request, "tools": [{"name": "Edit"}, {"name": "Write"}]})
    assert calls == [("Write", {"file_path": "/srv/app/notes.md", "content": "two words"})]
    _, _, calls = standin.scripted_reply({**request, "tools": [{"name": "Edit"}]})
    assert calls == [
        ("Edit", {"file_path": "/srv/app/notes.md", "old_string": "", "new_string": "two words"})
    ]
    _, text, calls = standin.scripted_reply({**request, "tools": []})
    assert calls == [] and text


def test_since_reads_the_behaviour_table(standin, monkeypatch):
    monkeypatch.setattr(standin, "VERSION", "0.17.8")
    assert not standin.since("stream_closes_thinking_before_tool_use")
    monkeypatch.setattr(standin, "VERSION", "0.18.0")
    assert standin.since("stream_closes_thinking_before_tool_use")
    monkeypatch.setattr(standin, "VERSION", "0.0.0")
    assert all(standin.since(feature) for feature in standin.BEHAVIOURS), "a source build is the newest"


def converted(standin, responses):
    converter = standin.StreamConverter("m", 1, 1, "end_turn")
    events = [event for response in responses for event in converter.process(response)]
    return [(name, data.get("index"), (data.get("content_block") or {}).get("type")) for name, data in events
            if name in ("content_block_start", "content_block_stop")]


@pytest.mark.parametrize(("version", "expected"), [
    ("0.32.1", [("content_block_start", 0, "text"), ("content_block_start", 0, "thinking"),
                ("content_block_stop", 0, None)]),
    ("0.32.2", [("content_block_start", 0, "text"), ("content_block_stop", 0, None),
                ("content_block_start", 1, "thinking"), ("content_block_stop", 1, None)]),
])
def test_text_block_is_closed_before_a_thinking_block_from_0_32_2(standin, monkeypatch, version, expected):
    """anthropic.go@v0.32.15:779-790 (794a254, ollama/ollama#17101): text first, then thinking."""
    monkeypatch.setattr(standin, "VERSION", version)
    assert converted(standin, [{"content": "---\n"}, {"thinking": "hmm"}, {"done": True}]) == expected


def test_tool_result_text_like_convert_tool_result_content(standin):
    assert standin.tool_result_text("plain") == "plain"
    assert standin.tool_result_text([{"type": "tool_reference", "tool_name": "Read"},
                                     {"type": "text", "text": "a"}, {"type": "image", "source": {}},
                                     {"type": "text", "text": "b"}]) == "ab"
    assert standin.tool_result_text(None) == "" and standin.tool_result_text({"x": 1}) == ""


def test_system_prompt_record(standin):
    assert standin.system_prompt_record(None) is None
    record = standin.system_prompt_record([{"type": "text", "text": "ab"}, {"type": "text", "text": "cde"}])
    assert record["length"] == 5 and record["blocks"] == ["ab", "cde"]
    assert record["first_block_sha256"] == hashlib.sha256(b"ab").hexdigest()
