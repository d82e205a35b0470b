"""
The shell the models operations run on a host (pull script, tools/sign-in checks, delete), run here with
/bin/sh (dash), curl and mawk against a scripted Ollama-shaped server on loopback.
"""

from __future__ import annotations

import json
import os
import subprocess
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from harness import run_operation

from ollama_claude.models import operations

MODEL = "glm-4.7-flash:latest"
DIGEST = "d" * 64
LAYER = "sha256:" + "1" * 64


def ndjson(*lines: dict) -> tuple[int, str, str]:
    compact = (json.dumps(line, separators=(",", ":")) for line in lines)  # as Go writes them
    return 200, "application/x-ndjson", "".join(f"{line}\n" for line in compact)


def success_stream(total: int = 64_000_000) -> tuple[int, str, str]:
    return ndjson(
        {"status": "pulling manifest"},
        {"status": f"pulling {LAYER[7:19]}", "digest": LAYER, "total": total},
        {"status": f"pulling {LAYER[7:19]}", "digest": LAYER, "total": total, "completed": total // 2},
        {"status": f"pulling {LAYER[7:19]}", "digest": LAYER, "total": total, "completed": total},
        {"status": "verifying sha256 digest"},
        {"status": "writing manifest"},
        {"status": "success"},
    )


def tags(digest: str = DIGEST) -> tuple[int, str, str]:
    body = {"models": [{"name": MODEL, "model": MODEL, "size": 1, "digest": digest, "details": {"format": "gguf"}}]}
    return 200, "application/json", json.dumps(body)


class ScriptedOllama:
    """Answers each path from a queue of responses (the last one repeats) and records the requests."""

    def __init__(self) -> None:
        self.responses: dict[str, list[tuple[int, str, str]]] = {}
        self.requests: list[tuple[str, str, str]] = []
        server = self

        class Handler(BaseHTTPRequestHandler):
            def _answer(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                server.requests.append((self.command, self.path, self.rfile.read(length).decode()))
                queue = server.responses.get(self.path) or [(404, "text/plain", "404 page not found")]
                status, content_type, body = queue.pop(0) if len(queue) > 1 else queue[0]
                self.send_response(status)
                self.send_header("Content-Type", content_type)
                self.send_header("Content-Length", str(len(body.encode())))
                self.end_headers()
                self.wfile.write(body.encode())

            do_GET = do_POST = do_DELETE = _answer

            def log_message(self, *args: object) -> None:
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_port}"

    def paths(self, path: str) -> int:
        return sum(1 for _, requested, _ in self.requests if requested == path)


@pytest.fixture
def ollama() -> Iterator[ScriptedOllama]:
    server = ScriptedOllama()
    thread = threading.Thread(target=server.httpd.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    yield server
    server.httpd.shutdown()
    server.httpd.server_close()


def sh(command: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "OLLAMA_CLAUDE_PULL_DELAY": "0"}
    return subprocess.run(["/bin/sh", "-c", command], check=False, capture_output=True, text=True, timeout=60,
                          env=env)


def pull(url: str, retries: int = 3, pin: str = "") -> subprocess.CompletedProcess[str]:
    script = str(operations.PULL_SCRIPT_SOURCE)
    return sh(f"sh {script} gpu1 {url} {MODEL} {retries} {pin}")


def test_pull_prints_progress_lines_prefixed_with_the_model(ollama: ScriptedOllama) -> None:
    ollama.responses["/api/pull"] = [success_stream()]
    result = pull(ollama.url)
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[0] == f"{MODEL} pulling manifest"
    assert f"{MODEL} pulling 111111111111 0% (0 kB of 64 MB)" in lines
    assert f"{MODEL} pulling 111111111111 100% (64 MB of 64 MB)" in lines
    assert lines[-1] == f"{MODEL} pulled"
    assert json.loads(ollama.requests[0][2]) == {"model": MODEL, "stream": True}


def test_pull_prints_a_layer_once_per_few_seconds_not_per_update(ollama: ScriptedOllama) -> None:
    updates = [{"status": "pulling 111111111111", "total": 100, "completed": n} for n in range(1, 101)]
    ollama.responses["/api/pull"] = [ndjson(*updates, {"status": "success"})]
    result = pull(ollama.url)
    assert result.returncode == 0, result.stderr
    assert len([line for line in result.stdout.splitlines() if "%" in line]) <= 3  # start, end, maybe one


def test_unknown_model_fails_at_once_with_the_registry_message(ollama: ScriptedOllama) -> None:
    ollama.responses["/api/pull"] = [
        ndjson({"status": "pulling manifest"}, {"error": "pull model manifest: file does not exist"})
    ]
    result = pull(ollama.url)
    assert result.returncode == 1
    assert ollama.paths("/api/pull") == 1
    assert result.stderr.strip() == (
        f"gpu1: ollama_models: pulling {MODEL} from {ollama.url} failed: pull model manifest: file does not "
        "exist; fix: check the model name in ollama_models against ollama.com/library"
    )


def test_server_error_is_retried_then_succeeds(ollama: ScriptedOllama) -> None:
    ollama.responses["/api/pull"] = [(500, "application/json", '{"error":"boom"}'), success_stream()]
    result = pull(ollama.url)
    assert result.returncode == 0, result.stderr
    assert ollama.paths("/api/pull") == 2
    assert f"{MODEL}: boom; retry 1/3 in 0s" in result.stdout


def test_registry_outage_in_the_stream_is_retried_boundedly(ollama: ScriptedOllama) -> None:
    ollama.responses["/api/pull"] = [
        ndjson({"status": "pulling manifest"}, {"error": "pull model manifest: 503: Service Unavailable"})
    ]
    result = pull(ollama.url, retries=2)
    assert result.returncode == 1
    assert ollama.paths("/api/pull") == 3
    assert "503: Service Unavailable (after 3 attempts)" in result.stderr
    assert "reaches its registry" in result.stderr


def test_stream_cut_before_success_is_retried(ollama: ScriptedOllama) -> None:
    ollama.responses["/api/pull"] = [ndjson({"status": "pulling manifest"}), success_stream()]
    result = pull(ollama.url)
    assert result.returncode == 0, result.stderr
    assert ollama.paths("/api/pull") == 2


def test_unreachable_server_is_retried_then_fails_its_host() -> None:
    result = pull("http://127.0.0.1:9", retries=1)
    assert result.returncode == 1
    assert result.stdout.count("retry") == 1
    assert "(after 2 attempts)" in result.stderr


def test_pinned_digest_is_verified_after_the_pull(ollama: ScriptedOllama) -> None:
    ollama.responses["/api/pull"] = [success_stream()]
    ollama.responses["/api/tags"] = [tags(DIGEST)]
    assert pull(ollama.url, pin=DIGEST).returncode == 0
    mismatch = pull(ollama.url, pin="e" * 64)
    assert mismatch.returncode == 1
    assert f"is pinned but the server lists sha256:{DIGEST} after the pull" in mismatch.stderr
    assert "recorded on Ollama 0.18 or older" in mismatch.stderr
    assert f"re-pin to {MODEL}@sha256:{DIGEST}" in mismatch.stderr


def test_a_newer_ollama_needed_is_permanent_and_says_raise_the_version(ollama: ScriptedOllama) -> None:
    # The registry's 412 body is JSON, quoted inside the stream's error string (server/images.go@v0.32.15:1346).
    body = '{"errors":[{"code":"PRECONDITION","message":"requires a newer version of Ollama \u003e= 0.33"}]}'
    ollama.responses["/api/pull"] = [ndjson({"status": "pulling manifest"},
                                            {"error": f"pull model manifest: 412: {body}"})]
    result = pull(ollama.url)
    assert result.returncode == 1 and ollama.paths("/api/pull") == 1  # not retried as transient
    assert f"failed: pull model manifest: 412: {body.replace(chr(92) + 'u003e', '>')}; fix: raise ollama_version" in (
        result.stderr
    )


def test_an_mlx_model_without_the_runtime_is_permanent(ollama: ScriptedOllama) -> None:
    text = "this model requires MLX support, but the MLX runtime is not available"
    ollama.responses["/api/pull"] = [ndjson({"status": "pulling manifest"}, {"error": text})]
    result = pull(ollama.url)
    assert result.returncode == 1 and ollama.paths("/api/pull") == 1
    assert f"failed: {text}; fix: raise ollama_version" in result.stderr


def test_error_text_with_escaped_quotes_is_kept_whole(ollama: ScriptedOllama) -> None:
    ollama.responses["/api/pull"] = [ndjson({"error": 'pull model manifest: 403: {"errors":[{"message":"denied"}]}'})]
    result = pull(ollama.url)
    assert result.returncode == 1
    assert 'failed: pull model manifest: 403: {"errors":[{"message":"denied"}]}; fix:' in result.stderr


def host_command(operation: object, facts: dict, **kwargs: object) -> str:
    commands, _ = run_operation(operation, facts, **kwargs)
    assert len(commands) == 1, commands
    return commands[0]


@pytest.mark.parametrize(
    ("capabilities", "passes"), [(["completion", "tools"], True), (["completion"], False), (None, False)]
)
def test_tools_check_on_the_host(ollama: ScriptedOllama, capabilities: list[str] | None, passes: bool) -> None:
    if capabilities is not None:
        ollama.responses["/api/show"] = [(200, "application/json", json.dumps({"capabilities": capabilities}))]
    command = host_command(operations.tools_capable, {"ModelCapabilities": None}, models=[MODEL], base_url=ollama.url)
    result = sh(command)
    assert (result.returncode == 0) is passes
    assert ("does not list the tools capability" in result.stderr) is not passes


def test_signin_check_on_the_host_reports_the_servers_signin_url(ollama: ScriptedOllama) -> None:
    link = "https://ollama.com/connect?name=gpu1&key=c3NoLWVkMjU1MTk"
    ollama.responses["/api/me"] = [(401, "application/json", json.dumps({"error": "unauthorized", "signin_url": link}))]
    command = host_command(operations.cloud_signed_in, {"OllamaSignin": {"signed_in": None, "unreachable": False}},
                           base_url=ollama.url)
    result = sh(command)
    assert result.returncode == 1
    assert f"run `ollama signin` as ollama on testhost and open {link} (it links" in result.stderr
    ollama.responses["/api/me"] = [(200, "application/json", '{"name":"dev"}')]
    assert sh(command).returncode == 0


@pytest.mark.parametrize(("status", "body"), [(200, "null"), (503, '{"error":"account unavailable"}'),
                                              (200, '{"name":""}')])
def test_signin_check_on_the_host_tells_unreachable_from_signed_out(ollama: ScriptedOllama, status: int,
                                                                     body: str) -> None:
    """0.15-0.23.1 answer 200 null, 0.23.2+ 503, when ollama.com cannot be reached: neither is signed in."""
    ollama.responses["/api/me"] = [(status, "application/json", body)]
    command = host_command(operations.cloud_signed_in, {"OllamaSignin": {"signed_in": None, "unreachable": False}},
                           base_url=ollama.url)
    result = sh(command)
    assert result.returncode == 1
    assert "ollama.com unreachable from testhost" in result.stderr and "ollama signin" not in result.stderr


def test_prune_deletes_through_the_api_and_names_the_model(ollama: ScriptedOllama) -> None:
    ollama.responses["/api/delete"] = [(200, "text/plain", "")]
    command = host_command(operations.models_pruned, {"OllamaModels": {"qwen3:8b": DIGEST}}, declared=[MODEL],
                           base_url=ollama.url)
    result = sh(command)
    assert result.returncode == 0
    assert result.stdout.strip() == "removed undeclared model qwen3:8b"
    assert ollama.requests == [("DELETE", "/api/delete", '{"model":"qwen3:8b"}')]
    ollama.responses["/api/delete"] = [(404, "application/json", '{"error":"model \'qwen3:8b\' not found"}')]
    assert "removing qwen3:8b" in sh(command).stderr
