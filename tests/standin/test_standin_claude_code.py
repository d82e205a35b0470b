"""The real Claude Code CLI (pinned) against the stand-in: the seed's edit test, run as an unprivileged user."""

import json
import subprocess

import pytest

from ollama_claude.lab.releases import CLAUDE_CODE_VERSION
from ollama_claude.lab.standin_server import start_standin
from tests.claude_runner import ensure_user, linked_claude, user_workspace

pytestmark = pytest.mark.claude

TEST_USER = "ocstandin"
EDIT_PROMPT = "Create test.txt with content hi"
NO_TOOLS_MODEL = "hf.co/bartowski/gemma-2-2b-it-GGUF:Q4_K_M"
#: What Claude Code writes into its transcript when a stream breaks its content-block bookkeeping (its
#: StreamMalformedEventError, "Content block not found" for a stop of an index never started).
STREAM_BROKEN = "API Error: Part of the response never arrived"
QUIET_CLAUDE = {
    "CLAUDE_CODE_MAX_RETRIES": "0",
    "DISABLE_TELEMETRY": "1",
    "DISABLE_ERROR_REPORTING": "1",
    "CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC": "1",
    "DISABLE_AUTOUPDATER": "1",
}


@pytest.fixture(scope="module")
def test_user():
    """An unprivileged account: Claude Code refuses --dangerously-skip-permissions as root."""
    return ensure_user(TEST_USER)


@pytest.fixture(scope="module")
def claude(test_user):
    with linked_claude("ocstandin-bin-") as binary:
        yield binary


@pytest.fixture
def workspace(test_user):
    with user_workspace(test_user, "ocstandin-") as root:
        yield root


def standin_with(tmp_path, models, version="0.32.15", **env):
    server = start_standin(tmp_path / "standin", version=version, env=env)
    for model in models:
        assert server.cli("pull", model).returncode == 0
    return server


def run_claude(claude, workspace, server, model, user=TEST_USER, extra=()):
    env = {
        "HOME": str(workspace / "home"),
        "PATH": "/usr/bin:/bin",
        "ANTHROPIC_BASE_URL": server.url,
        "ANTHROPIC_AUTH_TOKEN": "ollama",
        "ANTHROPIC_API_KEY": "",
        **QUIET_CLAUDE,
    }
    command = [
        "timeout", "90", "runuser", "-u", user, "--", "env", *(f"{k}={v}" for k, v in env.items()),
        claude, "-p", EDIT_PROMPT, "--model", model, *extra,
        "--allowedTools", "Read,Edit,Bash", "--dangerously-skip-permissions",
    ]  # fmt: skip
    return subprocess.run(command, cwd=workspace / "project", capture_output=True, text=True, check=False)


@pytest.mark.parametrize("version", ["0.18.0", "0.32.15"])
def test_edit_test_passes_with_bearer_auth_and_only_the_chosen_model(claude, workspace, tmp_path, version):
    server = standin_with(tmp_path, ["glm-4.7-flash"], version, OLLAMA_CONTEXT_LENGTH="64000")
    try:
        result = run_claude(claude, workspace, server, "glm-4.7-flash")
        assert result.returncode == 0, result.stdout + result.stderr
        assert (workspace / "project" / "test.txt").read_text().strip() == "hi"
        inference = [r for r in server.requests() if r["path"] == "/v1/messages"]
        assert len(inference) >= 2, "a tool_use turn, then the turn after the tool_result"
        assert {r["headers"]["authorization"] for r in inference} == {"Bearer ***"}
        assert {r["model"] for r in inference} == {"glm-4.7-flash"}
        assert not [
            r for r in server.requests() if any(x in (r["model"] or "") for x in ("haiku", "sonnet", "opus"))
        ]
        assert all(
            r["headers"]["user-agent"].startswith(f"claude-cli/{CLAUDE_CODE_VERSION}") for r in inference
        )
    finally:
        server.stop()


@pytest.mark.parametrize(("version", "broken"), [("0.16.3", True), ("0.18.0", False), ("0.32.15", False)])
def test_thinking_then_tool_use_stream_breaks_claude_code_before_0_18(claude, workspace, tmp_path, version, broken):
    """
    0.16.3 streams glm-4.7-flash's tool_use at the open thinking block's index, then stops an index never started
    (anthropic/anthropic.go@v0.16.3:850-956, fixed by f3f31a8 in 0.18.0). The pinned Claude Code has already run
    the tool when the bad stop arrives: it records an API error in the transcript, but the file is written and
    `claude -p` exits 0, so only the transcript (stream-json) shows the break.
    """
    server = standin_with(tmp_path, ["glm-4.7-flash"], version, OLLAMA_CONTEXT_LENGTH="64000")
    try:
        result = run_claude(
            claude, workspace, server, "glm-4.7-flash", extra=("--output-format", "stream-json", "--verbose")
        )
        transcript = [json.loads(line) for line in result.stdout.splitlines() if line.startswith("{")]
        texts = [
            block.get("text", "")
            for event in transcript
            if event.get("type") == "assistant"
            for block in event["message"]["content"]
        ]
        assert any(STREAM_BROKEN in text for text in texts) is broken, texts
        assert "thinking" in {b["type"] for e in transcript if e.get("type") == "assistant"
                              for b in e["message"]["content"]}, "glm-4.7-flash thinks before its tool call"
        assert result.returncode == 0, result.stdout + result.stderr
        assert (workspace / "project" / "test.txt").read_text().strip() == "hi"
    finally:
        server.stop()


def test_model_without_tools_fails_with_the_documented_error(claude, workspace, tmp_path):
    server = standin_with(tmp_path, [NO_TOOLS_MODEL], OLLAMA_CONTEXT_LENGTH="64000")
    try:
        result = run_claude(claude, workspace, server, NO_TOOLS_MODEL)
        assert result.returncode == 1
        assert f"{NO_TOOLS_MODEL} does not support tools" in result.stdout + result.stderr
        assert not (workspace / "project" / "test.txt").exists()
    finally:
        server.stop()


def test_short_context_makes_the_edit_test_fail_observably(claude, workspace, tmp_path):
    server = standin_with(tmp_path, ["glm-4.7-flash"])
    try:
        result = run_claude(claude, workspace, server, "glm-4.7-flash")
        assert not (workspace / "project" / "test.txt").exists()
        assert "<tool_call>Write" in result.stdout
        assert "tool call parsing failed" in server.server_log()
    finally:
        server.stop()
