"""The official `ollama` and `anthropic` Python clients cannot tell the stand-in from Ollama on our paths,
including native /api/chat as LiteLLM's Ollama provider calls it."""

import json

import anthropic
import httpx
import ollama
import pytest
from write_tool import OLLAMA_WRITE_TOOL

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


#: The releases the lab packages: below the toolkit's floor, the floor, the default.
VERSIONS = ["0.16.3", "0.18.0", "0.32.15"]


@pytest.fixture(scope="module", params=VERSIONS)
def standin(request, tmp_path_factory):
    server = start_standin(
        tmp_path_factory.mktemp("standin"), version=request.param, env={"OLLAMA_CONTEXT_LENGTH": "64000"}
    )
    server.version = request.param
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
    assert httpx.get(standin.url + "/api/version").json() == {"version": standin.version}


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


# --- native /api/chat (LiteLLM's ollama_chat provider) ------------------------------------------------------
WRITE_TOOL = OLLAMA_WRITE_TOOL
ASK = {"role": "user", "content": "Create hello.txt with content hi there"}
SYSTEM = {"role": "system", "content": "Primary working directory: /home/dev/project"}


def test_chat_tool_call_native_format(ollama_client):
    ollama_client.pull("qwen3-coder")
    reply = ollama_client.chat(model="qwen3-coder", messages=[SYSTEM, ASK], tools=[WRITE_TOOL], stream=False)
    (call,) = reply.message.tool_calls
    assert call.function.name == "Write"
    assert call.function.arguments == {"file_path": "/home/dev/project/hello.txt", "content": "hi there"}
    assert reply.done and reply.done_reason == "stop"
    assert reply.prompt_eval_count > 0 and reply.eval_count > 0


def test_chat_tool_result_ends_the_turn(ollama_client):
    call = {"function": {"name": "Write", "arguments": {"file_path": "hello.txt", "content": "hi there"}}}
    messages = [ASK, {"role": "assistant", "content": "", "tool_calls": [call]},
                {"role": "tool", "content": "File created successfully", "tool_name": "Write"}]
    reply = ollama_client.chat(model="qwen3-coder", messages=messages, tools=[WRITE_TOOL], stream=False)
    assert reply.message.content == "Done."
    assert not reply.message.tool_calls


def test_chat_failed_tool_result_is_reported(ollama_client):
    messages = [ASK, {"role": "tool", "content": "<tool_use_error>permission denied</tool_use_error>"}]
    reply = ollama_client.chat(model="qwen3-coder", messages=messages, tools=[WRITE_TOOL], stream=False)
    assert reply.message.content.startswith("The tool call failed: <tool_use_error>permission denied")


def test_chat_stream_ndjson(ollama_client, standin):
    chunks = list(ollama_client.chat(model="qwen3-coder", messages=[ASK], tools=[WRITE_TOOL], stream=True))
    assert [c.done for c in chunks][-1] is True and not any(c.done for c in chunks[:-1])
    calls = [call for c in chunks for call in c.message.tool_calls or []]
    assert [(c.function.name, c.function.arguments["content"]) for c in calls] == [("Write", "hi there")]
    text = "".join(c.message.content for c in ollama_client.chat(
        model="qwen3-coder", messages=[{"role": "user", "content": "say ok"}], stream=True))
    assert text == "ok"
    raw = httpx.post(standin.url + "/api/chat", json={"model": "qwen3-coder", "messages": [ASK]})
    assert raw.headers["content-type"] == "application/x-ndjson"
    assert json.loads(raw.text.splitlines()[-1])["done"] is True


def test_chat_thinking_when_asked(ollama_client):
    ollama_client.pull("qwen3")
    reply = ollama_client.chat(model="qwen3", messages=[ASK], tools=[WRITE_TOOL], think=True, stream=False)
    assert reply.message.thinking and "hello.txt" in reply.message.thinking


def test_chat_errors_like_ollama(ollama_client):
    with pytest.raises(ollama.ResponseError) as missing:
        ollama_client.chat(model="no-such-model", messages=[ASK])
    assert missing.value.status_code == 404
    assert "not found" in str(missing.value)


def test_chat_prompt_survives_a_proxy_flattening_reminders(ollama_client):
    """LiteLLM joins Claude Code's reminder and prompt blocks and passes system reminders as user turns."""
    flattened = {"role": "user", "content": "<system-reminder>\ncontext\n</system-reminder>\n\n" + ASK["content"]}
    note = {"role": "user", "content": "Operator note (not from the user): the following was originally a "
            "mid-conversation system-role reminder. Create other.txt with content no"}
    reply = ollama_client.chat(model="qwen3-coder", messages=[SYSTEM, flattened, note], tools=[WRITE_TOOL], stream=False)
    assert [c.function.arguments["content"] for c in reply.message.tool_calls] == ["hi there"]
