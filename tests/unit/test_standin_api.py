"""The stand-in's HTTP API against the wire spec (shared/reference/ollama-api.md), with plain HTTP."""

import hashlib
import json
import os
import signal

import httpx
import pytest
from write_tool import ANTHROPIC_WRITE_TOOL

from ollama_claude.lab.standin_server import start_standin

TOOL_SAFE_CONTEXT = {"OLLAMA_CONTEXT_LENGTH": "64000"}
LAB_DEFAULT = "0.32.15"  # start_standin's default release
WRITE_TOOL = ANTHROPIC_WRITE_TOOL


@pytest.fixture
def standin(tmp_path):
    server = start_standin(tmp_path / "standin", env=TOOL_SAFE_CONTEXT)
    yield server
    server.stop()


@pytest.fixture
def http(standin):
    with httpx.Client(base_url=standin.url, timeout=30) as client:
        yield client


def pull_lines(http, model, **extra):
    response = http.post("/api/pull", json={"model": model, **extra})
    assert response.status_code == 200
    assert response.headers["content-type"] == "application/x-ndjson"
    return [json.loads(line) for line in response.text.splitlines()]


def messages(http, model, prompt, **extra):
    body = {"model": model, "max_tokens": 256, "messages": [{"role": "user", "content": prompt}], **extra}
    return http.post("/v1/messages?beta=true", json=body, headers={"Authorization": "Bearer ollama"})


def sse_events(text):
    events = []
    for frame in text.strip().split("\n\n"):
        event_line, data_line = frame.split("\n")
        assert event_line.startswith("event: ") and data_line.startswith("data: ")
        data = json.loads(data_line[len("data: ") :])
        assert data["type"] == event_line[len("event: ") :]
        events.append(data)
    return events


def test_liveness_and_version(http):
    root = http.get("/")
    assert (root.status_code, root.text) == (200, "Ollama is running")
    assert root.headers["content-type"] == "text/plain; charset=utf-8"
    head = http.head("/")
    assert head.status_code == 200 and head.content == b""
    assert http.get("/api/version").json() == {"version": LAB_DEFAULT}
    assert "server" not in http.get("/").headers


def test_unknown_path_wrong_method_and_count_tokens(http):
    missing = http.post("/v1/messages/count_tokens", json={"model": "x"})
    assert (missing.status_code, missing.text) == (404, "404 page not found")
    assert http.get("/api/nothing").status_code == 404
    assert http.get("/api/pull").status_code == 405


def test_loopback_server_rejects_foreign_host_header(http):
    assert http.get("/", headers={"Host": "attacker.example"}).status_code == 403
    assert http.get("/", headers={"Host": "localhost:11434"}).status_code == 200


def test_pull_streams_the_real_status_sequence_and_persists_ollama_layout(http, standin):
    lines = pull_lines(http, "glm-4.7-flash")
    statuses = [line["status"] for line in lines]
    assert statuses[0] == "pulling manifest"
    assert statuses[-3:] == ["verifying sha256 digest", "writing manifest", "success"]
    layer_lines = [line for line in lines if "digest" in line]
    for line in layer_lines:
        assert line["status"] == f"pulling {line['digest'][7:19]}"
        assert line.get("completed", 0) <= line["total"]
    assert "completed" not in layer_lines[0], "completed is omitted while 0"

    manifest_path = standin.models_dir / "manifests/registry.ollama.ai/library/glm-4.7-flash/latest"
    manifest = json.loads(manifest_path.read_bytes())
    assert manifest["schemaVersion"] == 2
    for desc in [*manifest["layers"], manifest["config"]]:
        blob = standin.models_dir / "blobs" / desc["digest"].replace(":", "-")
        assert hashlib.sha256(blob.read_bytes()).hexdigest() == desc["digest"][len("sha256:") :]
        assert blob.stat().st_size == desc["size"]
    assert {line["digest"] for line in layer_lines} == {
        d["digest"] for d in [*manifest["layers"], manifest["config"]]
    }

    (tag,) = http.get("/api/tags").json()["models"]
    assert tag["name"] == tag["model"] == "glm-4.7-flash:latest"
    assert tag["digest"] == hashlib.sha256(manifest_path.read_bytes()).hexdigest()
    assert tag["size"] == sum(d["size"] for d in [*manifest["layers"], manifest["config"]])
    assert tag["details"]["family"] == "glm4moelite"


def test_second_pull_reports_cached_blobs_complete(http):
    pull_lines(http, "qwen3")
    for line in pull_lines(http, "qwen3"):
        if "digest" in line:
            assert line["completed"] == line["total"]


def test_pull_errors(http):
    lines = pull_lines(http, "no-such-model")
    assert lines == [{"status": "pulling manifest"}, {"error": "pull model manifest: file does not exist"}]
    non_stream = http.post("/api/pull", json={"model": "no-such-model", "stream": False})
    assert non_stream.status_code == 500
    assert non_stream.json() == {"error": "pull model manifest: file does not exist"}
    assert http.post("/api/pull").json() == {"error": "missing request body"}
    invalid = http.post("/api/pull", json={"model": "bad name!"})
    assert (invalid.status_code, invalid.json()) == (400, {"error": "invalid model name"})
    assert http.get("/api/tags").json() == {"models": []}


def test_pull_without_stream_answers_success_only(http):
    response = http.post("/api/pull", json={"model": "gpt-oss:20b", "stream": False})
    assert (response.status_code, response.json()) == (200, {"status": "success"})


def test_blob_size_is_configurable_and_digests_are_stable(tmp_path):
    digests = []
    for run in ("a", "b"):
        server = start_standin(tmp_path / run, env={"OLLAMA_STANDIN_BLOB_SIZE": "1000"})
        try:
            httpx.post(server.url + "/api/pull", json={"model": "qwen3-coder", "stream": False}, timeout=30)
            (model,) = httpx.get(server.url + "/api/tags").json()["models"]
            digests.append(model["digest"])
            assert model["size"] < 3000
        finally:
            server.stop()
    assert digests[0] == digests[1]


def test_catalogue_override_publishes_a_new_upstream_version(http, standin, tmp_path):
    pull_lines(http, "glm-4.7-flash")
    old_digest = http.get("/api/tags").json()["models"][0]["digest"]
    override = tmp_path / "catalogue.json"
    override.write_text(
        json.dumps(
            {"models": {"glm-4.7-flash": {"revision": "2"}, "mine:7b": {"context_length": 9}, "qwen3": None}}
        )
    )
    standin.stop()
    server = start_standin(standin.home, env={"OLLAMA_STANDIN_CATALOGUE": str(override)})
    try:
        statuses = [
            json.loads(line)["status"]
            for line in httpx.post(
                server.url + "/api/pull", json={"model": "glm-4.7-flash"}, timeout=30
            ).text.splitlines()
        ]
        assert "removing unused layers" in statuses
        new_digest = httpx.get(server.url + "/api/tags").json()["models"][0]["digest"]
        assert new_digest != old_digest
        added = httpx.post(server.url + "/api/pull", json={"model": "mine:7b", "stream": False}, timeout=30)
        assert added.json() == {"status": "success"}
        removed = httpx.post(server.url + "/api/pull", json={"model": "qwen3", "stream": False}, timeout=30)
        assert removed.json() == {"error": "pull model manifest: file does not exist"}
    finally:
        server.stop()


def test_killed_pull_leaves_no_manifest(tmp_path):
    server = start_standin(tmp_path / "s", env={"OLLAMA_STANDIN_PULL_DELAY": "5"})
    try:
        with httpx.stream("POST", server.url + "/api/pull", json={"model": "qwen3"}, timeout=30) as response:
            lines = response.iter_lines()
            assert json.loads(next(lines))["status"] == "pulling manifest"
            assert "digest" in json.loads(next(lines))
            assert json.loads(next(lines))["completed"] > 0
            os.kill(server.process.pid, signal.SIGKILL)
        server.process.wait()
        assert not (server.models_dir / "manifests/registry.ollama.ai/library/qwen3/latest").exists()
        assert list((server.models_dir / "blobs").glob("*-partial*"))
    finally:
        server.stop()


def test_show_and_its_errors(http):
    pull_lines(http, "qwen3-coder")
    shown = http.post("/api/show", json={"model": "qwen3-coder"}).json()
    assert shown["capabilities"] == ["completion", "tools"]
    assert shown["model_info"]["qwen3moe.context_length"] == 262144
    assert shown["details"]["quantization_level"] == "Q4_K_M"
    assert shown["modelfile"].startswith('# Modelfile generated by "ollama show"')
    missing = http.post("/api/show", json={"model": "llama3.2"})
    assert (missing.status_code, missing.json()) == (404, {"error": "model 'llama3.2:latest' not found"})
    assert http.post("/api/show", json={}).json() == {"error": "model is required"}


def test_delete(http, standin):
    pull_lines(http, "qwen3")
    deleted = http.request("DELETE", "/api/delete", json={"model": "qwen3"})
    assert (deleted.status_code, deleted.content) == (200, b"")
    assert http.get("/api/tags").json() == {"models": []}
    assert list((standin.models_dir / "blobs").iterdir()) == []
    again = http.request("DELETE", "/api/delete", json={"model": "qwen3"})
    assert (again.status_code, again.json()) == (404, {"error": "model 'qwen3' not found"})


def test_ps_lists_models_used_for_inference_with_context_in_effect(http):
    pull_lines(http, "qwen3-coder")
    assert http.get("/api/ps").json() == {"models": []}
    assert messages(http, "qwen3-coder", "hello").status_code == 200
    (running,) = http.get("/api/ps").json()["models"]
    assert running["name"] == "qwen3-coder:latest"
    assert running["context_length"] == 64000
    assert running["size_vram"] == 0


def test_signin_switch_file_flips_api_me(http, standin):
    (standin.home / ".ollama/standin-ollama-com-reachable").touch()
    unauthorized = http.post("/api/me")
    assert unauthorized.status_code == 401
    body = unauthorized.json()
    assert body["error"] == "unauthorized"
    assert body["signin_url"].startswith("https://ollama.com/connect?name=")
    public_key = (standin.home / ".ollama/id_ed25519.pub").read_text()
    assert (
        public_key.startswith("ssh-ed25519 ")
        and oct((standin.home / ".ollama/id_ed25519").stat().st_mode)[-3:] == "600"
    )
    (standin.home / ".ollama/standin-signed-in").touch()
    assert http.post("/api/me").status_code == 200
    assert http.post("/api/signout").status_code == 200
    assert http.post("/api/me").status_code == 401


def test_cloud_model_needs_signin_for_inference(http, standin):
    assert pull_lines(http, "glm-5.2:cloud")[-1] == {"status": "success"}
    (cloud,) = http.get("/api/tags").json()["models"]
    assert cloud["remote_model"] == "glm-5.2"
    (standin.home / ".ollama/standin-ollama-com-reachable").touch()
    refused = messages(http, "glm-5.2:cloud", "hello")
    assert refused.status_code == 401
    assert refused.json()["error"] == "unauthorized" and "signin_url" in refused.json()
    (standin.home / ".ollama/standin-signed-in").touch()
    assert messages(http, "glm-5.2:cloud", "hello").json()["type"] == "message"
    assert pull_lines(http, "glm-5:cloud")[-1] == {"error": "pull model manifest: file does not exist"}


def test_messages_errors_are_anthropic_shaped(http):
    pull_lines(http, "hf.co/bartowski/gemma-2-2b-it-GGUF:Q4_K_M")
    unknown = messages(http, "nonexistent", "hi")
    assert unknown.status_code == 404
    assert unknown.json()["error"] == {"type": "not_found_error", "message": "model 'nonexistent' not found"}
    assert unknown.json()["request_id"].startswith("req_")
    no_tools = messages(
        http, "hf.co/bartowski/gemma-2-2b-it-GGUF:Q4_K_M", "hi", tools=[WRITE_TOOL], stream=True
    )
    assert no_tools.status_code == 400
    assert no_tools.json()["error"] == {
        "type": "invalid_request_error",
        "message": "hf.co/bartowski/gemma-2-2b-it-GGUF:Q4_K_M does not support tools",
    }
    no_max = http.post("/v1/messages", json={"model": "x", "messages": [{"role": "user", "content": "hi"}]})
    assert no_max.json()["error"]["message"] == "max_tokens is required and must be positive"


def test_messages_tool_use_then_end_turn(http):
    pull_lines(http, "glm-4.7-flash")
    prompt = "Create test.txt with content hi"
    system = [{"type": "text", "text": "Env\nPrimary working directory: /work/dir\n"}]
    first = messages(
        http,
        "glm-4.7-flash",
        prompt,
        tools=[WRITE_TOOL],
        system=system,
        thinking={"type": "enabled", "budget_tokens": 100},
        context_management={},
        metadata={},
    )
    assert first.status_code == 200
    body = first.json()
    assert body["stop_reason"] == "tool_use"
    assert [b["type"] for b in body["content"]] == ["thinking", "tool_use"]
    call = body["content"][-1]
    assert call["name"] == "Write" and call["id"].startswith("call_")
    assert call["input"] == {"file_path": "/work/dir/test.txt", "content": "hi"}
    follow_up = [
        {"role": "user", "content": prompt},
        {"role": "assistant", "content": body["content"]},
        {"role": "user", "content": [{"type": "tool_result", "tool_use_id": call["id"], "content": "ok"}]},
    ]
    second = messages(http, "glm-4.7-flash", prompt, tools=[WRITE_TOOL], messages=follow_up).json()
    assert second["stop_reason"] == "end_turn"
    assert second["content"][-1]["type"] == "text"


def test_messages_stream_event_order(http):
    pull_lines(http, "qwen3-coder")
    response = messages(http, "qwen3-coder", "Create a.txt with content x y", tools=[WRITE_TOOL], stream=True)
    assert response.headers["content-type"] == "text/event-stream"
    events = sse_events(response.text)
    assert [e["type"] for e in events] == [
        "message_start",
        "content_block_start",
        "content_block_delta",
        "content_block_stop",
        "message_delta",
        "message_stop",
    ]
    assert events[0]["message"]["content"] == [] and events[0]["message"]["model"] == "qwen3-coder"
    assert events[1]["content_block"]["input"] == {}
    assert json.loads(events[2]["delta"]["partial_json"]) == {"file_path": "a.txt", "content": "x y"}
    assert events[4]["delta"]["stop_reason"] == "tool_use"

    text_events = sse_events(messages(http, "qwen3-coder", "Reply with ok", stream=True).text)
    assert text_events[1]["content_block"] == {"type": "text", "text": ""}
    assert "".join(e["delta"]["text"] for e in text_events if e["type"] == "content_block_delta") == "ok"


def test_short_context_breaks_tool_calls_like_issue_13820(tmp_path):
    server = start_standin(tmp_path / "s")
    try:
        httpx.post(server.url + "/api/pull", json={"model": "glm-4.7-flash", "stream": False}, timeout=30)
        with httpx.Client(base_url=server.url) as client:
            body = messages(
                client, "glm-4.7-flash", "Create test.txt with content hi", tools=[WRITE_TOOL]
            ).json()
        assert body["stop_reason"] == "end_turn"
        assert [b["type"] for b in body["content"]] == ["thinking", "text"]
        assert body["content"][1]["text"].startswith("<tool_call>Write")
        assert "tool call parsing failed" in server.server_log()
    finally:
        server.stop()


def test_request_log_masks_secrets_but_keeps_auth_scheme(http, standin):
    messages(http, "nonexistent", "hi")
    http.get("/api/tags", headers={"x-api-key": "sk-secret"})
    first, second = standin.requests()[-2:]
    assert (
        first["path"] == "/v1/messages" and first["query"] == "beta=true" and first["model"] == "nonexistent"
    )
    assert first["headers"]["authorization"] == "Bearer ***"
    assert second["headers"]["x-api-key"] == "***"
    assert "sk-secret" not in standin.request_log_path.read_text()
    assert first["client"] == "127.0.0.1" and first["method"] == "POST"


def test_v1_models(http):
    assert http.get("/v1/models").json() == {"object": "list", "data": None}
    pull_lines(http, "qwen3")
    (model,) = http.get("/v1/models").json()["data"]
    assert (model["id"], model["object"], model["owned_by"]) == ("qwen3:latest", "model", "library")


def test_keep_alive_zero_unloads_at_once(tmp_path):
    server = start_standin(tmp_path / "s", env={"OLLAMA_KEEP_ALIVE": "0", **TOOL_SAFE_CONTEXT})
    try:
        with httpx.Client(base_url=server.url, timeout=30) as client:
            pull_lines(client, "qwen3")
            assert messages(client, "qwen3", "hello").status_code == 200
            assert client.get("/api/ps").json() == {"models": []}
    finally:
        server.stop()


def test_tags_never_lists_a_manifest_still_being_written(http, standin):
    pull_lines(http, "qwen3")
    manifest_dir = standin.models_dir / "manifests/registry.ollama.ai/library/qwen3"
    (manifest_dir / ".latest.tmp-1").write_text("{")
    assert [m["name"] for m in http.get("/api/tags").json()["models"]] == ["qwen3:latest"]
