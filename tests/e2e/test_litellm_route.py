"""
The LiteLLM proxy route on a lab host: the whole deploy with claude_route = litellm installs the pinned proxy
from a wheelhouse the lab's release mirror serves (the host has no pip and no package index), and the checklist's
edit test passes through it: the stand-in's log shows /api/chat from the proxy and no /v1/messages. A re-run
leaves the proxy alone; switching back to direct is a normal re-run that removes it and passes direct. A
wheelhouse directory on the control machine is uploaded instead; uninstall takes the proxy back.

Run with OLLAMA_CLAUDE_TEST_LAB=tllm OLLAMA_CLAUDE_TEST_SUBNET=10.213.30.0/24
OLLAMA_CLAUDE_TEST_SPARE_SUBNET=10.213.31.0/24 OLLAMA_CLAUDE_REQUIRE_LAB=1.
"""

from __future__ import annotations

import json
import secrets
import time
from pathlib import Path

import pytest

from ollama_claude.lab.release_mirror import LAB_USER, mirror_root, serve_release_mirror
from ollama_claude.litellm.deploy import CONFIG_PATH, KEY_PATH, ROOT, UNIT_PATH, UPLOAD_ROOT
from ollama_claude.litellm.wheelhouse import build_wheelhouse
from ollama_claude.settings import Settings

HOST = "gpu1"
VERSION = Settings.model_fields["claude_litellm_version"].default
#: Made up per run, so finding it in any output can only mean it leaked.
MASTER_KEY = f"sk-lab-{secrets.token_urlsafe(24)}"
STANDIN_LOG = "/usr/share/ollama/.ollama/standin-requests.jsonl"
SETTINGS_JSON = f"/home/{LAB_USER}/.claude/settings.json"


@pytest.fixture(scope="module")
def wheelhouse_url(lab):
    """The control machine's cached wheelhouse, served by the lab's release mirror under /wheels/."""
    url = serve_release_mirror(lab)
    wheels = mirror_root(lab) / "wheels"
    wheels.mkdir(exist_ok=True)
    link = wheels / f"litellm-{VERSION}"
    if not link.exists():
        # Resolved for the hosts' Python: the control machine's Debian python3 is the lab hosts' (bookworm).
        link.symlink_to(build_wheelhouse(VERSION, pythons=("/usr/bin/python3",)))
    return f"{url}/wheels/litellm-{VERSION}/"


def requests_since(lab, count: int) -> list[dict]:
    """The stand-in's request log on the host, from line ``count`` on."""
    text = lab.ssh(HOST, f"tail -n +{count + 1} {STANDIN_LOG} 2>/dev/null", check=True).stdout
    return [json.loads(line) for line in text.splitlines() if line]


def log_length(lab) -> int:
    return int(lab.ssh(HOST, f"cat {STANDIN_LOG} 2>/dev/null | wc -l", check=True).stdout.strip() or 0)


def edit_test(report_dir: Path) -> dict:
    report = json.loads((report_dir / "verify.json").read_text())
    return next(r for r in report["records"] if r["host"] == HOST and r["user"] == LAB_USER and r["item"] == 7)


def deploy(pyinfra_run, report_dir: Path, **data):
    started = time.monotonic()
    run = pyinfra_run("deploys/ollama_claude.py", hosts=[HOST], data={"verify_report_dir": str(report_dir), **data})
    return run, time.monotonic() - started


def test_edit_test_through_the_proxy_then_back_to_direct(lab, pyinfra_run, wheelhouse_url, tmp_path):
    route = {"claude_route": "litellm", "claude_litellm_master_key": MASTER_KEY,
             "claude_litellm_wheelhouse": wheelhouse_url}
    assert lab.ssh(HOST, "command -v pip pip3; python3 -c 'import ensurepip'").returncode != 0, \
        "the lab host must have neither pip nor ensurepip, like the real constraint"

    before = log_length(lab)
    run, seconds = deploy(pyinfra_run, tmp_path / "proxy", **route)
    assert run.rc == 0, run
    print(f"deploy with the proxy route: {seconds:.0f}s")
    assert MASTER_KEY not in run.output
    record = edit_test(tmp_path / "proxy")
    assert record["status"] == "pass", record
    arrived = requests_since(lab, before)
    chats = [r for r in arrived if r["path"] == "/api/chat"]
    assert chats, [r["path"] for r in arrived]
    assert all(r["client"] == "127.0.0.1" and r["headers"]["user-agent"].startswith("litellm/") for r in chats)
    assert not [r for r in arrived if r["path"] == "/v1/messages"], "Claude Code reached Ollama directly"

    env = json.loads(lab.ssh(HOST, f"cat {SETTINGS_JSON}", check=True).stdout)["env"]
    assert env["ANTHROPIC_BASE_URL"] == "http://127.0.0.1:4000"
    assert env["ANTHROPIC_AUTH_TOKEN"] == MASTER_KEY
    assert lab.ssh(HOST, f"stat -c '%a %U' {KEY_PATH}", check=True).stdout.split() == ["600", "root"]
    assert MASTER_KEY not in lab.ssh(HOST, f"cat {CONFIG_PATH} {UNIT_PATH}", check=True).stdout
    # Without the master key nothing reaches Ollama (1.106.12 answers 400 "No connected db" for a key it does
    # not know and 500 for none at all: either way a refusal).
    before = log_length(lab)
    body = json.dumps({"model": "glm-4.7-flash:latest", "max_tokens": 8, "messages": [{"role": "user", "content": "hi"}]})
    for auth in ("-H 'Authorization: Bearer sk-not-the-master-key'", ""):
        status = lab.ssh(HOST, f"curl -s -o /dev/null -w '%{{http_code}}' {auth} -H 'content-type: application/json' "
                               f"-d '{body}' http://127.0.0.1:4000/v1/messages").stdout
        assert status not in ("200", "000"), status
    assert requests_since(lab, before) == []

    rerun, _ = deploy(pyinfra_run, tmp_path / "rerun", **route)
    assert rerun.rc == 0, rerun
    proxy_rows = {name: row for name, row in rerun.results().items() if name.startswith("LiteLLM proxy")}
    assert [row["no_change"] for name, row in proxy_rows.items() if "Restart the LiteLLM proxy" in name] == [1], rerun
    assert all(row["success"] == 0 for row in proxy_rows.values()), proxy_rows

    before = log_length(lab)
    direct, seconds = deploy(pyinfra_run, tmp_path / "direct")
    assert direct.rc == 0, direct
    print(f"switch back to direct: {seconds:.0f}s")
    assert edit_test(tmp_path / "direct")["status"] == "pass"
    paths = [r["path"] for r in requests_since(lab, before)]
    assert "/v1/messages" in paths and "/api/chat" not in paths, paths
    env = json.loads(lab.ssh(HOST, f"cat {SETTINGS_JSON}", check=True).stdout)["env"]
    assert env["ANTHROPIC_BASE_URL"] == "http://127.0.0.1:11434"
    assert_proxy_gone(lab)


def test_uploaded_wheelhouse_then_uninstall_removes_the_proxy(lab, pyinfra_run, wheelhouse_url, tmp_path):
    """A control-machine wheelhouse directory is uploaded for the install and removed after; uninstall
    (config scope) takes the proxy back with the rest of Claude Code's configuration."""
    wheelhouse = str(build_wheelhouse(VERSION, pythons=("/usr/bin/python3",)))
    route = {"claude_route": "litellm", "claude_litellm_master_key": MASTER_KEY,
             "claude_litellm_wheelhouse": wheelhouse, "verify_edit_test": False}
    run, seconds = deploy(pyinfra_run, tmp_path / "upload", **route)
    assert run.rc == 0, run
    print(f"deploy uploading the wheelhouse: {seconds:.0f}s")
    listing = lab.ssh(HOST, f"ls /opt/ollama-claude/litellm; ls -d {UPLOAD_ROOT} 2>&1").stdout
    assert listing.startswith(f"{VERSION}\n") and "No such file" in listing, listing
    assert lab.ssh(HOST, "curl -s http://127.0.0.1:4000/health/liveliness").stdout.strip('"') == "I'm alive!"

    removed = pyinfra_run("deploys/uninstall.py", hosts=[HOST], data=route)
    assert removed.rc == 0, removed
    assert_proxy_gone(lab)
    assert lab.ssh(HOST, "ls -d /opt/ollama-claude /etc/ollama-claude 2>&1").stdout.count("No such file") == 2
    again = pyinfra_run("deploys/uninstall.py", hosts=[HOST], data=route)
    assert again.rc == 0 and again.changes == 0, again


def assert_proxy_gone(lab) -> None:
    gone = lab.ssh(HOST, f"ls -d {ROOT} {UNIT_PATH} {CONFIG_PATH} {KEY_PATH} 2>&1; "
                         "curl -s -o /dev/null -w '%{http_code}' http://127.0.0.1:4000/").stdout
    assert gone.count("No such file") == 4 and gone.endswith("000"), gone
