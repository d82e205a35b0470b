"""
Issue 14's acceptance on the lab, with the real Claude Code CLI and the stand-in packaged as each release:
the floor (0.18.0) and the default pin (0.32.15) deploy and pass the edit test; a host that install.sh put on
0.16.3 fails verify — the real edit test breaks on that release's thinking -> tool_use stream — with the cause
and the fix named, and the deploy then upgrades it to the pin, models kept, and verify goes green.
"""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest

from ollama_claude.lab.release_mirror import serve_release_mirror
from ollama_claude.settings import MIN_OLLAMA_VERSION, Settings

FLOOR, PIN, OLD = str(MIN_OLLAMA_VERSION), Settings.model_fields["ollama_version"].default, "0.16.3"
USER = "dev"
DEPLOY, VERIFY = "deploys/ollama_claude.py", "deploys/verify.py"
#: Claude Code and its settings alone: the user's own Ollama is left as it is.
CLAUDE_ONLY = "from ollama_claude.claude.deploy import configure_claude_code\n\nconfigure_claude_code()\n"
pytestmark = pytest.mark.lab


@pytest.fixture(scope="module")
def mirror(lab):
    return serve_release_mirror(lab)


def _on(lab, host: str, command: str) -> str:
    return lab.ssh(host, command, check=True, timeout=120).stdout.strip()


def _version(lab, host: str) -> str:
    return json.loads(_on(lab, host, "curl -fsS 127.0.0.1:11434/api/version"))["version"]


def _records(report_dir: Path, host: str) -> dict[int, dict]:
    report = json.loads((report_dir / "verify.json").read_text())
    return {r["item"]: r for r in report["records"] if r["host"] == host and r["user"] in (USER, None)}


def _timed(run, *args, **kwargs):
    started = time.monotonic()
    result = run(*args, **kwargs)
    print(f"{args[0]} {kwargs.get('data', {})} on {kwargs.get('hosts')}: {time.monotonic() - started:.1f} s")
    return result


def test_the_floor_deploys_and_passes_the_edit_test(lab, mirror, pyinfra_run, tmp_path):
    run = _timed(pyinfra_run, DEPLOY, data={"ollama_version": FLOOR, "verify_report_dir": str(tmp_path)},
                 hosts=["gpu2"])
    assert run.rc == 0 and run.errors == 0, run
    assert _version(lab, "gpu2") == FLOOR
    records = _records(tmp_path, "gpu2")
    assert all(r["status"] == "pass" for r in records.values()), records
    assert records[7]["status"] == "pass" and "local glm-4.7-flash:latest" in records[7]["message"]


def test_install_sh_host_on_016_fails_verify_with_cause_and_fix_then_the_deploy_makes_it_green(
        lab, mirror, pyinfra_run, tmp_path):
    releases = f"{mirror}/ollama/releases/download"
    _on(lab, "gpu1", f"curl -fsSL {releases}/v{OLD}/install.sh | OLLAMA_DOWNLOAD_URL={releases}/v{OLD} sh; "
                     "for i in $(seq 50); do curl -fsS 127.0.0.1:11434/api/version && break; sleep 0.2; done")
    _on(lab, "gpu1", "mkdir -p /etc/systemd/system/ollama.service.d && printf '[Service]\\n"
                     "Environment=\"OLLAMA_CONTEXT_LENGTH=64000\"\\n' > /etc/systemd/system/ollama.service.d/"
                     "override.conf && systemctl daemon-reload && systemctl restart ollama && sleep 1")
    _on(lab, "gpu1", "ollama pull glm-4.7-flash >/dev/null")
    # loaded, so verify (which does not manage this server) sees the context it runs with in /api/ps
    _on(lab, "gpu1", "curl -fsS 127.0.0.1:11434/api/chat -d '{\"model\": \"glm-4.7-flash\", \"stream\": false, "
                     "\"messages\": [{\"role\": \"user\", \"content\": \"hi\"}]}' >/dev/null")
    assert _version(lab, "gpu1") == OLD
    # Claude Code and its settings only: the user's Ollama is left as install.sh made it.
    claude_only = tmp_path / "claude_only.py"
    claude_only.write_text(CLAUDE_ONLY)
    existing = {"ollama_enabled": False, "ollama_base_url": "http://127.0.0.1:11434"}
    configured = _timed(pyinfra_run, str(claude_only), data=existing, hosts=["gpu1"])
    assert configured.rc == 0, configured

    before = _timed(pyinfra_run, VERIFY, data={**existing, "verify_report_dir": str(tmp_path)}, hosts=["gpu1"])
    assert before.rc != 0, before
    records = _records(tmp_path, "gpu1")
    assert records[1]["status"] == "fail"
    assert f"Ollama {OLD} is below {FLOOR}: its tool calls after thinking are malformed" in records[1]["message"]
    assert f"ollama_version >= {FLOOR}" in records[1]["fix"]
    assert records[7]["status"] == "fail", records[7]  # the real CLI reports 0.16.3's stream as broken
    assert "API Error" in records[7]["message"], records[7]

    upgrade = _timed(pyinfra_run, DEPLOY, data={"verify_report_dir": str(tmp_path)}, hosts=["gpu1"])
    assert upgrade.rc == 0 and upgrade.errors == 0, upgrade
    assert _version(lab, "gpu1") == PIN
    assert "glm-4.7-flash:latest" in _on(lab, "gpu1", "ollama list")
    after = _records(tmp_path, "gpu1")
    assert all(r["status"] == "pass" for r in after.values()), after
