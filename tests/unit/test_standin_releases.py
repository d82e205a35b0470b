"""The stand-in behaves like the Ollama release it is baked as (its BEHAVIOURS table), over HTTP."""

import hashlib
import json

import httpx
import pytest
from write_tool import ANTHROPIC_WRITE_TOOL

from ollama_claude.lab.standin_server import start_standin

WRITE_TOOL = ANTHROPIC_WRITE_TOOL
CREATE = "Create test.txt with content hi"
HF_TOOLS = "hf.co/bartowski/Qwen2.5-Coder-7B-Instruct-GGUF:Q4_K_M"
PROMPT_TOO_LONG = (
    "the prompt is longer than the context length currently available to the model; shorten the prompt, "
    "adjust the context length in settings, or use a model with a longer context length"
)


@pytest.fixture
def serve(tmp_path):
    """start(version, catalogue=None, **env) -> a running stand-in; all are stopped at the end."""
    servers = []

    def start(version, catalogue=None, home=None, **env):
        env = {"OLLAMA_CONTEXT_LENGTH": "64000", **env}
        if catalogue is not None:
            path = tmp_path / f"catalogue-{len(servers)}.json"
            path.write_text(json.dumps({"models": catalogue}))
            env["OLLAMA_STANDIN_CATALOGUE"] = str(path)
        server = start_standin(home or tmp_path / f"s{len(servers)}-{version}", version=version, env=env)
        servers.append(server)
        return server

    yield start
    for server in servers:
        server.stop()


def pull(server, model):
    response = httpx.post(server.url + "/api/pull", json={"model": model}, timeout=60)
    return [json.loads(line) for line in response.text.splitlines()]


def messages(server, model, prompt=CREATE, **extra):
    body = {"model": model, "max_tokens": 256, "messages": [{"role": "user", "content": prompt}], **extra}
    return httpx.post(server.url + "/v1/messages", json=body, headers={"Authorization": "Bearer ollama"}, timeout=30)


def sse(text):
    return [json.loads(frame.split("\n")[1][len("data: "):]) for frame in text.strip().split("\n\n")]


# --- 1. thinking on by default; "disabled" honoured from 0.23.4 ----------------------------------------------------


@pytest.mark.parametrize(("version", "disabled_thinks"), [("0.23.3", True), ("0.23.4", False)])
def test_thinking_models_think_whatever_the_request_says_until_0_23_4(serve, version, disabled_thinks):
    server = serve(version)
    pull(server, "glm-4.7-flash")
    pull(server, "qwen3-coder")
    unset = messages(server, "glm-4.7-flash", tools=[WRITE_TOOL]).json()
    assert [b["type"] for b in unset["content"]] == ["thinking", "tool_use"]
    disabled = messages(server, "glm-4.7-flash", tools=[WRITE_TOOL], thinking={"type": "disabled"}).json()
    assert ("thinking" in [b["type"] for b in disabled["content"]]) is disabled_thinks
    enabled = messages(server, "qwen3-coder", "Reply with ok", thinking={"type": "enabled"}).json()
    assert [b["type"] for b in enabled["content"]] == ["text"], "no thinking capability: relaxed, not refused"


def test_native_chat_thinks_unless_think_false_and_refuses_think_without_the_capability(serve):
    server = serve("0.32.15")
    pull(server, "qwen3")
    pull(server, "qwen3-coder")
    ask = {"role": "user", "content": "say ok"}
    unset = httpx.post(server.url + "/api/chat", json={"model": "qwen3", "messages": [ask], "stream": False}).json()
    assert unset["message"]["thinking"]
    off = httpx.post(server.url + "/api/chat", json={"model": "qwen3", "messages": [ask], "stream": False,
                                                     "think": False}).json()
    assert "thinking" not in off["message"]
    refused = httpx.post(server.url + "/api/chat", json={"model": "qwen3-coder", "messages": [ask], "think": True})
    assert (refused.status_code, refused.json()) == (400, {"error": '"qwen3-coder" does not support thinking'})


# --- 2. the thinking -> tool_use stream before and after 0.18.0 -----------------------------------------------------


def block_events(events):
    return [(e["type"], e.get("index"), (e.get("content_block") or {}).get("type")) for e in events
            if e["type"].startswith("content_block") and e["type"] != "content_block_delta"]


def test_thinking_then_tool_use_stream_reuses_the_index_before_0_18(serve):
    old, new = serve("0.16.3"), serve("0.18.0")
    for server in (old, new):
        pull(server, "glm-4.7-flash")
    broken = sse(messages(old, "glm-4.7-flash", tools=[WRITE_TOOL], stream=True).text)
    assert block_events(broken) == [
        ("content_block_start", 0, "thinking"),
        ("content_block_start", 0, "tool_use"),
        ("content_block_stop", 0, None),
        ("content_block_stop", 1, None),
    ]
    fixed = sse(messages(new, "glm-4.7-flash", tools=[WRITE_TOOL], stream=True).text)
    assert block_events(fixed) == [
        ("content_block_start", 0, "thinking"),
        ("content_block_stop", 0, None),
        ("content_block_start", 1, "tool_use"),
        ("content_block_stop", 1, None),
    ]
    assert fixed[-2]["delta"]["stop_reason"] == "tool_use" and fixed[-1]["type"] == "message_stop"
    # Non-streaming answers are the same in both (ToMessagesResponse did not change).
    for server in (old, new):
        body = messages(server, "glm-4.7-flash", tools=[WRITE_TOOL]).json()
        assert [b["type"] for b in body["content"]] == ["thinking", "tool_use"]


# --- 3. /api/me -----------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(("version", "status", "body"),
                         [("0.23.1", 200, b"null"), ("0.23.2", 503, b'{"error":"account unavailable"}')])
def test_api_me_when_ollama_com_is_unreachable(serve, version, status, body):
    server = serve(version)
    offline = httpx.post(server.url + "/api/me")
    assert (offline.status_code, offline.content) == (status, body)
    assert 'dial tcp: lookup ollama.com: no such host' in server.server_log()
    (server.home / ".ollama/standin-ollama-com-reachable").touch()
    signed_out = httpx.post(server.url + "/api/me")
    assert signed_out.status_code == 401 and signed_out.json()["signin_url"].startswith("https://ollama.com/connect")
    (server.home / ".ollama/standin-signed-in").touch()
    assert httpx.post(server.url + "/api/me").json()["name"] == "standin"


def test_signed_in_server_that_lost_ollama_com(serve):
    server = serve("0.32.15", OLLAMA_STANDIN_SIGNED_IN="1", OLLAMA_STANDIN_OLLAMA_COM="unreachable")
    assert httpx.post(server.url + "/api/me").status_code == 503


# --- 4. 412 for a model needing a newer Ollama; MLX without the runtime ---------------------------------------------

NEWER_MODEL = {"qwen9:latest": {"requires": "0.19.0"}, "qwen9:next": {"requires": "0.33.0-rc0"}}


@pytest.mark.parametrize("via_registry", [False, True])
def test_pull_of_a_model_newer_than_the_server_fails_412_in_stream(serve, tmp_path, via_registry):
    env = {}
    if via_registry:
        registry = serve("0.32.15", catalogue=NEWER_MODEL)  # only to serve the catalogue over HTTP
        registry.stop()
        import subprocess

        from ollama_claude.lab.standin_server import free_port
        port = free_port()
        process = subprocess.Popen([str(registry.executable), "standin-registry", f"127.0.0.1:{port}"],
                                   env={**registry.env, "OLLAMA_STANDIN_LOG": str(tmp_path / "reg.jsonl")})
        env["OLLAMA_STANDIN_REGISTRY"] = f"http://127.0.0.1:{port}"
    try:
        old = serve("0.18.0", catalogue=NEWER_MODEL, **env)
        if via_registry:
            import time
            deadline = time.monotonic() + 10
            while time.monotonic() < deadline:
                try:
                    httpx.get(env["OLLAMA_STANDIN_REGISTRY"] + "/v2/", timeout=1)
                    break
                except httpx.TransportError:
                    time.sleep(0.05)
        assert pull(old, "qwen9") == [
            {"status": "pulling manifest"},
            {"error": "pull model manifest: 412: \nThe model you are attempting to pull requires a newer version of "
                      "Ollama.\n\nPlease download the latest version at:\n\n\thttps://ollama.com/download\n"},
        ]
        assert "may be in pre-release" in pull(old, "qwen9:next")[-1]["error"]
        new = serve("0.19.0", catalogue=NEWER_MODEL, **env)
        assert pull(new, "qwen9")[-1] == {"status": "success"}
    finally:
        if via_registry:
            process.terminate()
            process.wait(timeout=5)


def test_mlx_model_needs_the_mlx_runtime_from_0_32_10(serve):
    catalogue = {"qwen-mlx:latest": {"format": "safetensors"}}
    old = serve("0.32.9", catalogue=catalogue)
    assert pull(old, "qwen-mlx")[-1] == {"status": "success"}
    new = serve("0.32.10", catalogue=catalogue)
    assert pull(new, "qwen-mlx") == [
        {"status": "pulling manifest"},
        {"error": "this model requires MLX support, but the MLX runtime is not available"},
    ]
    runtime = new.home / "lib" / "ollama" / "mlx_cuda_v13"  # next to <home>/bin/ollama, like a release's lib/
    runtime.mkdir(parents=True)
    (runtime / "libmlxc.so").write_bytes(b"")
    assert pull(new, "qwen-mlx")[-1] == {"status": "success"}


# --- 5. over-long prompts ---------------------------------------------------------------------------------------------

DEEPSEEK = {"deepseek-lite:latest": {"family": "deepseek2", "architecture": "deepseek2", "context_length": 163840}}
LONG = "word " * 4000  # ~5000 estimated tokens, over a 4096 context


@pytest.mark.parametrize(("version", "refused"), [("0.30.8", False), ("0.30.9", True)])
def test_over_long_prompt_is_refused_from_0_30_9_when_context_shift_is_off(serve, version, refused):
    server = serve(version, catalogue=DEEPSEEK, OLLAMA_CONTEXT_LENGTH="4096")
    pull(server, "deepseek-lite")
    pull(server, "qwen3-coder")
    answer = messages(server, "deepseek-lite", LONG)
    if refused:
        assert answer.status_code == 400
        assert answer.json()["error"] == {"type": "invalid_request_error", "message": PROMPT_TOO_LONG}
    else:
        assert answer.status_code == 200
    chat = httpx.post(server.url + "/api/chat", json={
        "model": "qwen3-coder", "messages": [{"role": "user", "content": LONG}], "shift": False, "stream": False})
    assert (chat.status_code, chat.json()) == ((400, {"error": PROMPT_TOO_LONG}) if refused else (200, chat.json()))
    shifted = messages(server, "qwen3-coder", LONG)  # context shift on (the default): still truncated
    assert shifted.status_code == 200
    assert "truncating input prompt" in server.server_log()


def test_old_messages_are_dropped_before_the_prompt_counts_as_too_long(serve):
    server = serve("0.32.15", catalogue=DEEPSEEK, OLLAMA_CONTEXT_LENGTH="4096")
    pull(server, "deepseek-lite")
    history = [{"role": "user", "content": LONG}, {"role": "assistant", "content": "ok"}]
    body = {"model": "deepseek-lite", "max_tokens": 64,
            "messages": [*history, {"role": "user", "content": "Reply with ok"}]}
    answer = httpx.post(server.url + "/v1/messages", json=body, timeout=30).json()
    assert answer["content"][-1]["text"] == "ok"
    assert answer["usage"]["input_tokens"] < 4096


# --- 6, 7. /api/tags capabilities; a GGUF's chat template -----------------------------------------------------------


@pytest.mark.parametrize(("version", "listed"), [("0.24.0", False), ("0.30.0", True)])
def test_tags_capabilities_and_gguf_template_tools_from_0_30(serve, version, listed):
    server = serve(version)
    for model in ("glm-4.7-flash", HF_TOOLS, "hf.co/bartowski/gemma-2-2b-it-GGUF:Q4_K_M"):
        pull(server, model)
    tags = {m["name"]: m for m in httpx.get(server.url + "/api/tags").json()["models"]}
    glm = tags["glm-4.7-flash:latest"]
    assert ("capabilities" in glm) is listed
    assert ("context_length" in glm["details"]) is listed
    if listed:
        assert glm["capabilities"] == ["completion", "tools", "thinking"]
        assert glm["details"]["context_length"] == 202752
        assert tags[HF_TOOLS]["capabilities"] == ["completion", "tools"]
        assert "tools" not in tags["hf.co/bartowski/gemma-2-2b-it-GGUF:Q4_K_M"]["capabilities"]
    shown = httpx.post(server.url + "/api/show", json={"model": HF_TOOLS}).json()
    assert ("tools" in shown["capabilities"]) is listed
    call = messages(server, HF_TOOLS, tools=[WRITE_TOOL])
    if listed:
        assert call.status_code == 200, call.text
    else:
        assert call.status_code == 400 and call.json()["error"]["message"] == f"{HF_TOOLS} does not support tools"


# --- 8. cloud models --------------------------------------------------------------------------------------------------


def test_cloud_models_from_0_18_are_proxied_without_a_stub_and_fail_502_offline(serve):
    server = serve("0.32.15")
    offline = messages(server, "glm-5.2:cloud", "hello")
    assert offline.status_code == 502
    assert offline.json() == {
        "error": 'Post "https://ollama.com:443/v1/messages": dial tcp: lookup ollama.com: no such host'}
    shown = httpx.post(server.url + "/api/show", json={"model": "glm-5.2:cloud"})
    assert shown.status_code == 502
    chat = httpx.post(server.url + "/api/chat", json={"model": "glm-5.2:cloud", "messages": [{"role": "user",
                                                                                              "content": "hi"}]})
    assert chat.status_code == 502
    (server.home / ".ollama/standin-signed-in").touch()
    assert messages(server, "glm-5.2:cloud", "hello").json()["type"] == "message"
    assert httpx.post(server.url + "/api/show", json={"model": "glm-5.2:cloud"}).json()["remote_model"] == "glm-5.2"
    assert httpx.get(server.url + "/api/tags").json() == {"models": []}, "nothing was pulled"


def test_local_suffix_forces_the_local_copy(serve):
    server = serve("0.32.15", OLLAMA_STANDIN_SIGNED_IN="1")
    pull(server, "qwen3-coder")
    assert messages(server, "qwen3-coder:local", "Reply with ok").json()["content"][-1]["text"] == "ok"
    conflict = messages(server, "glm-5.2:cloud:local", "hi")
    assert conflict.status_code == 400
    assert conflict.json()["error"]["message"] == 'use either :local or :cloud, not both: "glm-5.2:cloud:local"'
    missing = httpx.post(server.url + "/api/show", json={"model": "qwen3:local"})
    assert (missing.status_code, missing.json()) == (404, {"error": "model 'qwen3:latest' not found"})


def test_cloud_models_before_0_18_need_the_stub_and_fail_500_offline(serve):
    server = serve("0.16.3")
    unpulled = messages(server, "glm-5.2:cloud", "hello")
    assert unpulled.status_code == 404
    assert unpulled.json()["error"]["message"] == "model 'glm-5.2:cloud' not found"
    assert pull(server, "glm-5.2:cloud")[-1] == {"status": "success"}
    offline = messages(server, "glm-5.2:cloud", "hello")
    assert offline.status_code == 500
    assert offline.json()["error"] == {
        "type": "api_error",
        "message": 'Post "https://ollama.com:443/api/chat": dial tcp: lookup ollama.com: no such host'}
    (server.home / ".ollama/standin-ollama-com-reachable").touch()
    signed_out = messages(server, "glm-5.2:cloud", "hello")
    assert signed_out.status_code == 401
    assert signed_out.json()["error"] == {"type": "authentication_error", "message": "unauthorized"}


# --- 9. the model's num_ctx -------------------------------------------------------------------------------------------


def test_model_num_ctx_overrides_the_environment_and_is_what_ps_reports(serve):
    catalogue = {"glm-4.7-flash:64k": {"context_length": 202752, "parameters": {"temperature": 1, "num_ctx": 65536}}}
    server = serve("0.32.15", catalogue=catalogue, OLLAMA_CONTEXT_LENGTH="4096")
    pull(server, "glm-4.7-flash:64k")
    pull(server, "glm-4.7-flash")
    fine = messages(server, "glm-4.7-flash:64k", tools=[WRITE_TOOL]).json()
    assert fine["stop_reason"] == "tool_use", "65536 >= 64000: tool calls parse"
    broken = messages(server, "glm-4.7-flash", tools=[WRITE_TOOL]).json()
    assert broken["stop_reason"] == "end_turn", "4096 from the environment: broken tool call (#13820)"
    running = {m["name"]: m["context_length"] for m in httpx.get(server.url + "/api/ps").json()["models"]}
    assert running == {"glm-4.7-flash:64k": 65536, "glm-4.7-flash:latest": 4096}
    chat = httpx.post(server.url + "/api/chat", json={"model": "glm-4.7-flash", "stream": False, "options": {
        "num_ctx": 300000}, "messages": [{"role": "user", "content": "say ok"}]})
    assert chat.status_code == 200
    running = {m["name"]: m["context_length"] for m in httpx.get(server.url + "/api/ps").json()["models"]}
    assert running["glm-4.7-flash:latest"] == 202752, "a request's num_ctx, capped at the trained context"


# --- 11. the manifest digest across 0.19 --------------------------------------------------------------------------


def test_manifest_digest_changes_when_upgrading_across_0_19(serve, tmp_path):
    home = tmp_path / "host"
    old = serve("0.18.0", home=home)
    pull(old, "qwen3")
    (before,) = httpx.get(old.url + "/api/tags").json()["models"]
    old.stop()
    new = serve("0.19.0", home=home)
    assert httpx.get(new.url + "/api/tags").json()["models"][0]["digest"] == before["digest"], "same file"
    pull(new, "qwen3")
    (after,) = httpx.get(new.url + "/api/tags").json()["models"]
    assert after["digest"] != before["digest"]
    manifest = new.models_dir / "manifests/registry.ollama.ai/library/qwen3/latest"
    assert hashlib.sha256(manifest.read_bytes()).hexdigest() == after["digest"]
    assert manifest.read_bytes().endswith(b"\n"), "the registry's bytes, kept as served"


# --- 12. tool_result content; the system prompt in the request log -----------------------------------------------


def test_tool_result_keeps_only_text_like_convert_tool_result_content(serve):
    server = serve("0.32.15")
    pull(server, "qwen3-coder")

    def after(result_content, is_error=False):
        turn = [
            {"role": "user", "content": CREATE},
            {"role": "assistant", "content": [{"type": "tool_use", "id": "call_1", "name": "Write", "input": {}}]},
            {"role": "user", "content": [{"type": "tool_result", "tool_use_id": "call_1", "is_error": is_error,
                                          "content": result_content}]},
        ]
        body = {"model": "qwen3-coder", "max_tokens": 64, "tools": [WRITE_TOOL], "messages": turn}
        return httpx.post(server.url + "/v1/messages", json=body, timeout=30).json()["content"][-1]["text"]

    search = [{"type": "tool_reference", "tool_name": "Write"}, {"type": "text", "text": "<tool_use_error>no"},
              {"type": "text", "text": " such tool</tool_use_error>"}]
    assert after(search) == "The tool call failed: <tool_use_error>no such tool</tool_use_error>"
    assert after([{"type": "tool_reference", "tool_name": "Write"}]) == "Done."
    assert after("permission denied", is_error=True) == "Done.", "is_error is not passed on"


def test_request_log_records_the_system_prompt_of_each_messages_request(serve):
    server = serve("0.32.15")
    pull(server, "qwen3-coder")
    blocks = [{"type": "text", "text": "x-anthropic-billing-header: cc_version=1"},
              {"type": "text", "text": "You are Claude Code.", "cache_control": {"type": "ephemeral"}}]
    messages(server, "qwen3-coder", "Reply with ok", system=blocks)
    messages(server, "qwen3-coder", "Reply with ok", system="Plain system text")
    messages(server, "qwen3-coder", "Reply with ok")
    httpx.get(server.url + "/api/tags")
    logged = [r for r in server.requests() if r["path"] == "/v1/messages"]
    assert logged[0]["system"] == {
        "blocks": ["x-anthropic-billing-header: cc_version=1", "You are Claude Code."],
        "length": len("x-anthropic-billing-header: cc_version=1") + len("You are Claude Code."),
        "first_block_sha256": hashlib.sha256(b"x-anthropic-billing-header: cc_version=1").hexdigest(),
    }
    assert logged[1]["system"]["blocks"] == ["Plain system text"]
    assert logged[2]["system"] is None
    assert "system" not in server.requests()[-1], "only /v1/messages records carry it"
