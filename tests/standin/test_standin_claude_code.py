"""The real Claude Code CLI (pinned) against the stand-in: the seed's edit test, run as an unprivileged user."""

import os
import pwd
import shutil
import subprocess
import tempfile
from pathlib import Path

import pytest

from ollama_claude.lab.releases import CLAUDE_CODE_VERSION, claude_cli_path
from ollama_claude.lab.standin_server import start_standin

pytestmark = pytest.mark.claude

TEST_USER = "ocstandin"
EDIT_PROMPT = "Create test.txt with content hi"
NO_TOOLS_MODEL = "hf.co/bartowski/gemma-2-2b-it-GGUF:Q4_K_M"
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
    try:
        pwd.getpwnam(TEST_USER)
    except KeyError:
        subprocess.run(["useradd", "-M", "-s", "/usr/sbin/nologin", TEST_USER], check=True)
    return TEST_USER


@pytest.fixture(scope="module")
def claude(test_user):
    """The pinned native binary, hard-linked into a directory the test user can traverse."""
    directory = Path(tempfile.mkdtemp(prefix="ocstandin-bin-"))
    directory.chmod(0o755)
    binary = directory / "claude"
    os.link(claude_cli_path(CLAUDE_CODE_VERSION), binary)
    yield binary
    shutil.rmtree(directory)


@pytest.fixture
def workspace(test_user):
    """A HOME and a project directory owned by the test user (pytest's tmp_path is root-only)."""
    root = Path(tempfile.mkdtemp(prefix="ocstandin-"))
    for sub in ("home", "project"):
        (root / sub).mkdir()
    shutil.chown(root / "home", test_user, test_user)
    shutil.chown(root / "project", test_user, test_user)
    root.chmod(0o755)
    yield root
    shutil.rmtree(root)


def standin_with(tmp_path, models, **env):
    server = start_standin(tmp_path / "standin", env=env)
    for model in models:
        assert server.cli("pull", model).returncode == 0
    return server


def run_claude(claude, workspace, server, model, user=TEST_USER):
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
        claude, "-p", EDIT_PROMPT, "--model", model,
        "--allowedTools", "Read,Edit,Bash", "--dangerously-skip-permissions",
    ]  # fmt: skip
    return subprocess.run(command, cwd=workspace / "project", capture_output=True, text=True, check=False)


def test_edit_test_passes_with_bearer_auth_and_only_the_chosen_model(claude, workspace, tmp_path):
    server = standin_with(tmp_path, ["glm-4.7-flash"], OLLAMA_CONTEXT_LENGTH="64000")
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
