"""The official `ollama` and `anthropic` Python clients cannot tell the stand-in from Ollama on our paths."""

import anthropic
import httpx
import ollama
import pytest

from ollama_claude.lab.standin_server import start_standin

WEATHER_TOOL = {
    "name": "get_weather",
    "description": "Get the current weather in a location",
    "input_schema": {
        "type": "object",
        "properties": {"location": {"type": "string"}},
        "required": ["location"],
    },
}


@pytest.fixture(scope="module")
def standin(tmp_path_factory):
    server = start_standin(tmp_path_factory.mktemp("standin"), env={"OLLAMA_CONTEXT_LENGTH": "64000"})
    yield server
    server.stop()


@pytest.fixture(scope="module")
def ollama_client(standin):
    return ollama.Client(host=standin.url)


@pytest.fixture(scope="module")
def anthropic_client(standin, ollama_client):
    """A client for a server that has qwen3-coder, authenticating like Claude Code does (Bearer)."""
    ollama_client.pull("qwen3-coder")
    return anthropic.Anthropic(base_url=standin.url, auth_token="ollama", api_key=None, max_retries=0)


def test_ollama_pull_streaming_and_not(ollama_client):
    progress = list(ollama_client.pull("glm-4.7-flash", stream=True))
    assert progress[0].status == "pulling manifest"
    assert progress[-1].status == "success"
    assert any(p.digest and p.total and p.completed == p.total for p in progress)
    assert ollama_client.pull("gpt-oss:20b").status == "success"


def test_ollama_pull_unknown_model_raises(ollama_client):
    with pytest.raises(ollama.ResponseError, match="file does not exist"):
        list(ollama_client.pull("no-such-model", stream=True))
    with pytest.raises(ollama.ResponseError, match="file does not exist") as error:
        ollama_client.pull("no-such-model")
    assert error.value.status_code == 500


def test_ollama_list_show_delete(ollama_client):
    ollama_client.pull("qwen3")
    names = [m.model for m in ollama_client.list().models]
    assert "qwen3:latest" in names
    shown = ollama_client.show("qwen3")
    assert "tools" in shown.capabilities
    assert shown.modelinfo["qwen3.context_length"] == 40960
    assert shown.details.family == "qwen3"
    assert ollama_client.delete("qwen3").status == "success"
    assert "qwen3:latest" not in [m.model for m in ollama_client.list().models]
    with pytest.raises(ollama.ResponseError) as error:
        ollama_client.show("qwen3")
    assert error.value.status_code == 404


def test_ollama_ps_and_plain_version(ollama_client, anthropic_client, standin):
    anthropic_client.messages.create(
        model="qwen3-coder", max_tokens=64, messages=[{"role": "user", "content": "hello"}]
    )
    assert [m.model for m in ollama_client.ps().models] == ["qwen3-coder:latest"]
    assert httpx.get(standin.url + "/api/version").json() == {"version": "0.16.3"}


def test_anthropic_seed_tool_example(anthropic_client):
    message = anthropic_client.messages.create(
        model="qwen3-coder",
        max_tokens=1024,
        tools=[WEATHER_TOOL],
        messages=[{"role": "user", "content": "What's the weather in San Francisco?"}],
    )
    (tool_use,) = [block for block in message.content if block.type == "tool_use"]
    assert (tool_use.name, tool_use.input) == ("get_weather", {"location": "San Francisco"})
    assert message.stop_reason == "tool_use"

    answer = anthropic_client.messages.create(
        model="qwen3-coder",
        max_tokens=1024,
        tools=[WEATHER_TOOL],
        messages=[
            {"role": "user", "content": "What's the weather in San Francisco?"},
            {"role": "assistant", "content": message.content},
            {
                "role": "user",
                "content": [{"type": "tool_result", "tool_use_id": tool_use.id, "content": "18C"}],
            },
        ],
    )
    assert answer.stop_reason == "end_turn" and answer.content[-1].type == "text"


def test_anthropic_streaming_tool_example(anthropic_client):
    with anthropic_client.messages.stream(
        model="qwen3-coder",
        max_tokens=1024,
        tools=[WEATHER_TOOL],
        messages=[{"role": "user", "content": "What's the weather in Paris?"}],
    ) as stream:
        event_types = [event.type for event in stream]
        final = stream.get_final_message()
    assert "input_json" in event_types and event_types[-1] == "message_stop"
    (tool_use,) = final.content
    assert (tool_use.name, tool_use.input) == ("get_weather", {"location": "Paris"})
    assert final.stop_reason == "tool_use"


def test_anthropic_errors_map_to_client_exceptions(anthropic_client):
    with pytest.raises(anthropic.NotFoundError, match="model 'nonexistent' not found"):
        anthropic_client.messages.create(
            model="nonexistent", max_tokens=8, messages=[{"role": "user", "content": "hi"}]
        )
