"""
The real pinned Claude Code with the settings.json the toolkit writes (settings_merge.user_settings), against the
stand-in: the KV-cache-friendly prompt, the flat tool list, a long session that stays within Ollama's context,
and the chain's Claude link that never hands the key to anything but its endpoint.

Each property is also shown failing with the configuration the toolkit wrote before issue 17 (``OLD_ENV``), so
the test proves the new keys are what makes the difference. A recording proxy between Claude Code and the
stand-in keeps every request body (the stand-in logs only a summary).
"""

from __future__ import annotations

import json
import secrets
import shutil
import subprocess
from pathlib import Path

import pytest
from pyinfra.api.hiddenvalue import HiddenValue

from ollama_claude.claude.settings_merge import user_settings
from ollama_claude.lab.standin_server import start_standin
from ollama_claude.settings import parse_settings
from ollama_claude.verify.facts import EditTest
from tests.claude_runner import ensure_user, linked_claude, user_workspace
from tests.messages_proxy import Recorder

pytestmark = pytest.mark.claude

USER = "ocsettings"
EDIT_PROMPT = "Create test.txt with content hi"
#: What the toolkit added in issue 17; without them the configuration is the one written before.
NEW_KEYS = ("CLAUDE_CODE_MAX_CONTEXT_TOKENS", "ENABLE_TOOL_SEARCH", "CLAUDE_CODE_ATTRIBUTION_HEADER")
#: A model whose family (deepseek2) turns Ollama's context shift off: from 0.30.9 an over-long prompt is a 400
#: once dropping old messages is not enough; before that, old messages are dropped silently.
LONG_MODEL = "deepseek-coder-v2:16b"


# --- fixtures ---------------------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def user():
    """An unprivileged account with a login shell (the Claude link runs through `runuser -l`)."""
    return ensure_user(USER, shell="/bin/sh", home=True)


@pytest.fixture(scope="module")
def claude(user):
    with linked_claude("ocsettings-bin-") as binary:
        yield binary


@pytest.fixture
def workspace(user):
    with user_workspace(user, "ocsettings-", ("home", "home/.claude", "project")) as root:
        yield root


def standin(tmp_path, models, catalogue=None):
    env = {"OLLAMA_CONTEXT_LENGTH": "64000"}
    if catalogue:
        path = tmp_path / "catalogue.json"
        path.write_text(json.dumps({"models": catalogue}))
        env["OLLAMA_STANDIN_CATALOGUE"] = str(path)
    server = start_standin(tmp_path / "standin", env=env)
    for model in models:
        assert server.cli("pull", model).returncode == 0
    return server


def write_settings(workspace: Path, url: str, model: str, old: bool) -> dict:
    """~/.claude/settings.json as the toolkit's Claude Code step writes it (old: as before issue 17)."""
    settings = parse_settings({"ollama_models": [model], "ollama_base_url": url}, "h")
    document = user_settings(settings)
    if old:
        for key in NEW_KEYS:
            document["env"].pop(key)
        document["env"]["ANTHROPIC_MODEL"] = model
    path = workspace / "home" / ".claude" / "settings.json"
    path.write_text(json.dumps(document))
    shutil.chown(path, USER, USER)
    return document


def run_claude(claude, workspace, prompt, *extra, timeout=120):
    command = ["timeout", str(timeout), "runuser", "-u", USER, "--", "env", f"HOME={workspace / 'home'}",
               "PATH=/usr/bin:/bin", "CLAUDE_CODE_MAX_RETRIES=0", str(claude), *extra, "-p", prompt,
               "--allowedTools", "Read,Edit,Bash,Write", "--dangerously-skip-permissions", "--output-format", "json"]
    return subprocess.run(command, cwd=workspace / "project", capture_output=True, text=True, check=False)


def system_bytes(body: dict) -> str:
    return json.dumps(body.get("system"), ensure_ascii=False)


# --- KV cache and tool list ------------------------------------------------------------------------------------
@pytest.mark.parametrize("old", [False, True], ids=["toolkit", "before-issue-17"])
def test_consecutive_requests_share_the_system_prompt_and_see_the_flat_tool_list(
    claude, workspace, tmp_path, old
):
    """
    Two sessions (the edit test, then another file): with the toolkit's settings every request starts with the
    same system prompt bytes, so Ollama's KV cache can reuse the prefix (system + tools, most of the prompt).
    Before, the first system block is a billing header whose hash follows the session's prompt: a new session
    re-reads everything. Measured with 2.1.332: the hash stays within one session.
    """
    server = standin(tmp_path, ["glm-4.7-flash"])
    proxy = Recorder(server.url)
    try:
        write_settings(workspace, proxy.url, "glm-4.7-flash:latest", old)
        sessions = []
        for prompt in (EDIT_PROMPT, "Create other.txt with content yo"):
            before = len(proxy.bodies())
            result = run_claude(claude, workspace, prompt)
            assert result.returncode == 0, result.stdout + result.stderr
            sessions.append(proxy.bodies()[before:])
        assert (workspace / "project" / "test.txt").read_text().strip() == "hi"
        assert all(len(bodies) >= 2 for bodies in sessions)
        for bodies in sessions:  # within a session: the same bytes either way
            assert len({system_bytes(body) for body in bodies}) == 1
        bodies = sessions[0] + sessions[1]
        systems = {system_bytes(body) for body in bodies}
        tools = [{tool["name"] for tool in body.get("tools") or []} for body in bodies]
        if old:
            assert len(systems) == 2, "each session's first system block differs"
            assert "x-anthropic-billing-header" in bodies[0]["system"][0]["text"]
            assert all("ToolSearch" in names for names in tools), "tools deferred behind ToolSearch"
        else:
            assert len(systems) == 1, "every request starts with the same system prompt bytes"
            assert "x-anthropic-billing-header" not in next(iter(systems))
            stand_in = [r["system"] for r in server.requests() if r["path"] == "/v1/messages"]
            assert len({r["first_block_sha256"] for r in stand_in}) == 1, stand_in
            assert all("ToolSearch" not in names and {"Write", "Edit", "Read", "Bash"} <= names for names in tools)
    finally:
        proxy.shutdown()
        server.stop()


# --- a long session ----------------------------------------------------------------------------------------------
@pytest.mark.parametrize("old", [False, True], ids=["toolkit", "before-issue-17"])
def test_a_session_longer_than_the_context_stays_within_it(claude, workspace, tmp_path, old):
    """
    Six turns of one session (`--continue`), each writing a ~10,000-token file, so the conversation grows far past
    OLLAMA_CONTEXT_LENGTH=64000. Told the window, Claude Code compacts and every request fits; not told, it
    believes 1,000,000 tokens, and Ollama drops the oldest messages the model never sees (or, with nothing
    left to drop, answers 400).
    """
    server = standin(tmp_path, [LONG_MODEL], {LONG_MODEL: {
        "family": "deepseek2", "architecture": "deepseek2", "capabilities": ["completion", "tools"],
        "context_length": 163840}})
    try:
        write_settings(workspace, server.url, LONG_MODEL, old)
        text = "lorem ipsum dolor sit amet consectetur adipiscing elit sed do eiusmod tempor " * 600
        results = []
        for turn in range(6):
            prompt = f"Create part{turn}.txt with content {text[turn * 7:turn * 7 + 40000]}"
            results.append(run_claude(claude, workspace, prompt, *(("--continue",) if turn else ())))
        log = server.server_log()
        dropped = log.count("truncating input messages which exceed context length")
        refused = [r for r in server.requests() if r["path"] == "/v1/messages"]
        compacted = [json.loads(r.stdout) for r in results if '"compact' in r.stderr or "continued from a" in r.stdout]
        if old:
            assert dropped or "prompt is longer than the context" in log, "the server had to cut the conversation"
            return
        assert [r.returncode for r in results] == [0] * 6, [r.stdout + r.stderr for r in results]
        assert all((workspace / "project" / f"part{turn}.txt").exists() for turn in range(6))
        assert dropped == 0 and "prompt is longer than the context" not in log, log[-2000:]
        assert compacted, "Claude Code compacted the session to stay within the window"
        assert len(refused) > 12, "the compaction requests are extra turns"
    finally:
        server.stop()


# --- the Claude link ---------------------------------------------------------------------------------------------
@pytest.mark.skipif(not shutil.which("unshare"), reason="needs unshare (a private /etc for the policy file)")
def test_claude_link_key_reaches_only_its_endpoint_under_managed_settings(claude, workspace, tmp_path, user):
    """
    Managed settings (and the user's settings.json) point at a capture endpoint standing in for Ollama; the
    chain's Claude link must pass its edit test against "Anthropic" (the stand-in speaking the Messages API)
    and the capture endpoint must never see the key. The way the toolkit did it before (--settings) is run too,
    and sends the key to the policy's URL.
    """
    key = f"sk-ant-test-{secrets.token_hex(12)}"
    anthropic = standin(tmp_path, ["claude-haiku-5-5"], {"claude-haiku-5-5:latest": {
        "family": "claude", "capabilities": ["completion", "tools"], "context_length": 200000}})
    capture = Recorder(None)
    shim = Recorder(anthropic.url, anthropic=True)
    try:
        write_settings(workspace, capture.url, "glm-4.7-flash:latest", old=False)
        policy = json.dumps({"env": {"ANTHROPIC_BASE_URL": capture.url}})
        private_etc = (
            "set -e; u=$(mktemp -d); w=$(mktemp -d); chmod 755 $u; mount --make-rprivate /; "
            "mount -t overlay overlay -o lowerdir=/etc,upperdir=$u,workdir=$w /etc; mkdir -p /etc/claude-code; "
            f"printf %s '{policy}' > /etc/claude-code/managed-settings.json; set +e; "
        )
        link = EditTest().command(user=user, model="claude-haiku-5-5", timeout=90, executable=str(claude),
                                  anthropic_base_url=shim.url, api_key=HiddenValue(key, "***"))
        run = subprocess.run(["unshare", "-m", "sh", "-c", private_etc + link.get_raw_value()],
                             capture_output=True, text=True, timeout=150, check=False)
        result = EditTest().process(run.stdout.splitlines())
        assert result.passed, run.stdout + run.stderr
        assert not capture.saw(key), "the capture endpoint standing in for Ollama saw the key"
        sent = [r for r in anthropic.requests() if r["path"] == "/v1/messages"]
        assert sent and {r["model"] for r in sent} == {"claude-haiku-5-5"}
        assert all(r["headers"].get("x-api-key") == "***" and "authorization" not in r["headers"] for r in sent)

        # Before issue 17: --settings with the key, as the user, under the same policy.
        settings_file = workspace / "project" / "link.json"
        settings_file.write_text(json.dumps({"env": {"ANTHROPIC_BASE_URL": shim.url,
                                                     "ANTHROPIC_API_KEY": key, "ANTHROPIC_AUTH_TOKEN": ""}}))
        shutil.chown(settings_file, user, user)
        old = (f"runuser -u {user} -- env HOME={workspace / 'home'} PATH=/usr/bin:/bin CLAUDE_CODE_MAX_RETRIES=0 "
               f"timeout 60 {claude} -p '{EDIT_PROMPT}' --model claude-haiku-5-5 --settings {settings_file} "
               f"--dangerously-skip-permissions --output-format json")
        subprocess.run(["unshare", "-m", "sh", "-c", private_etc + f"cd {workspace / 'project'}; " + old],
                       capture_output=True, text=True, timeout=120, check=False)
        assert capture.saw(key), "the policy's base URL received the --settings key (the old defect)"
    finally:
        capture.shutdown()
        shim.shutdown()
        anthropic.stop()
