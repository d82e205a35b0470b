"""
The fallback chain's Claude link against a local Messages-API endpoint playing Anthropic, and the fleet report
for a host that does not answer.

"Anthropic" is an Ollama stand-in run as a lab service on the bridge address, with its own HOME (request log)
and a catalogue that knows the chain's Claude model; nothing here talks to anything but lab addresses.
Run with OLLAMA_CLAUDE_TEST_LAB=tvc OLLAMA_CLAUDE_TEST_SUBNET=10.213.28.0/24.
"""

from __future__ import annotations

import json
import os
import secrets
import subprocess
from dataclasses import dataclass
from pathlib import Path

import pytest
from junitparser import Error, JUnitXml
from test_verify_fleet import CHOSEN_RECORD, default_model, service_environment

from ollama_claude.lab.release_mirror import LAB_USER, gateway_ip
from ollama_claude.lab.standin_server import baked_standin, free_port
from ollama_claude.lab.system import wait_until_serving
from ollama_claude.settings import Settings
from tests.messages_proxy import Recorder

BROKEN, GOOD = "gpu2", "gpu1"
ANTHROPIC_SERVICE = "anthropic-standin"
OLLAMA_REQUEST_LOG = "/usr/share/ollama/.ollama/standin-requests.jsonl"
ANTHROPIC_MODEL = Settings.model_fields["verify_anthropic_model"].default
#: Made up per run, so finding it anywhere can only mean it leaked from this test's settings.
API_KEY = f"sk-test-{secrets.token_hex(16)}"


@dataclass(frozen=True)
class Endpoint:
    url: str
    home: Path
    proxy: Recorder

    def clients(self) -> set[str]:
        """Who sent Messages requests (the stand-in only sees the proxy in front of it)."""
        return {r["client"] for r in self.proxy.seen if r["path"].startswith("/v1/messages")}

    def requests(self) -> list[dict]:
        log = self.home / ".ollama" / "standin-requests.jsonl"
        return [json.loads(line) for line in log.read_text().splitlines() if line] if log.exists() else []

    def messages(self) -> list[dict]:
        return [request for request in self.requests() if request["path"] == "/v1/messages"]


@pytest.fixture(scope="module")
def anthropic(lab):
    """The stand-in as "Anthropic" on the bridge: its catalogue makes the chain's Claude model a tools model."""
    home = lab.dir / ANTHROPIC_SERVICE
    executable = home / "bin" / "ollama"
    executable.parent.mkdir(parents=True, exist_ok=True)
    executable.write_text(baked_standin("0.32.15"))
    executable.chmod(0o755)
    catalogue = home / "catalogue.json"
    catalogue.write_text(json.dumps({"models": {ANTHROPIC_MODEL: {
        "capabilities": ["completion", "tools"], "context_length": 200000, "family": "claude"}}}))
    address = f"{gateway_ip(lab)}:{free_port(gateway_ip(lab))}"
    env = {"PATH": os.environ["PATH"], "HOME": str(home), "OLLAMA_HOST": address,
           "OLLAMA_CONTEXT_LENGTH": "200000", "OLLAMA_STANDIN_CATALOGUE": str(catalogue)}
    lab.start_service(ANTHROPIC_SERVICE, [str(executable), "serve"], env=env)
    shim = None
    try:
        wait_until_serving(f"http://{address}/")
        subprocess.run([str(executable), "pull", ANTHROPIC_MODEL], env=env, check=True, capture_output=True)
        # Current Claude models get role "system" messages (a <total_tokens> reminder) that Anthropic reads
        # and the stand-in's scripted model does not: the Messages-API shim moves them into ``system``.
        shim = Recorder(f"http://{address}", anthropic=True, host=gateway_ip(lab))
        yield Endpoint(shim.url, home, shim)
    finally:
        if shim is not None:
            shim.shutdown()
        lab.stop_service(ANTHROPIC_SERVICE)


def claude_link(anthropic: Endpoint, report_dir: Path, allow: bool = True) -> dict:
    return {"verify_allow_anthropic": allow, "verify_anthropic_base_url": anthropic.url,
            "claude_users": [{"name": LAB_USER, "anthropic_api_key": API_KEY}],
            "verify_report_dir": str(report_dir)}


def host_line(report: dict, host: str) -> dict:
    return next(line for line in report["hosts"] if line["host"] == host)


def edit_message(report: dict, host: str) -> str:
    return next(r["message"] for r in report["records"] if r["host"] == host and r["item"] == 7)


def test_claude_link_sends_the_api_key_and_is_never_written_as_default(
    provisioned, lab, anthropic, pyinfra_run, tmp_path
):
    """
    Local model broken (context 4096), no cloud model: the full deploy's verify step passes through the Claude
    link with x-api-key, keeps the key out of its -vvv output (commands and their output) and the reports, and leaves the default alone.
    """
    with service_environment(lab, BROKEN, OLLAMA_CONTEXT_LENGTH="4096"):
        run = pyinfra_run("deploys/ollama_claude.py", "-vvv", data=claude_link(anthropic, tmp_path))
        settings_model = default_model(lab, BROKEN)
        record = lab.ssh(BROKEN, f"test -e {CHOSEN_RECORD}")
    report = json.loads((tmp_path / "verify.json").read_text())
    broken = host_line(report, BROKEN)
    assert run.rc == 0, run
    assert (broken["link"], broken["model"], broken["status"]) == ("claude", ANTHROPIC_MODEL, "pass"), report
    assert "local: " in edit_message(report, BROKEN) and "claude " in edit_message(report, BROKEN)
    assert host_line(report, GOOD)["link"] == "local"

    sent = anthropic.messages()
    assert sent and {request["model"] for request in sent} == {ANTHROPIC_MODEL}, anthropic.requests()
    assert anthropic.clients() == {lab.require_state().host(BROKEN).address}
    for request in sent:
        assert request["headers"].get("x-api-key") == "***", request
        assert "authorization" not in request["headers"], request

    files = [(tmp_path / name).read_text() for name in ("verify.json", "verify-junit.xml")]
    assert ".anthropic-key" in run.output, "-vvv shows the edit test's command (masked)"
    assert API_KEY not in run.output and not any(API_KEY in text for text in files)
    assert settings_model == ("glm-4.7-flash:latest",) * 3 and record.returncode != 0
    assert "the Claude link is not written as a default" in run.output


def test_claude_link_under_managed_settings_sends_the_key_only_to_its_endpoint(
    provisioned, lab, anthropic, pyinfra_run, tmp_path
):
    """
    claude_managed_settings on: /etc/claude-code/managed-settings.json points every Claude Code run at the host's
    Ollama, and beats --settings. Local model broken: the Claude link still passes against "Anthropic", and the
    host's Ollama (its request log) never receives an x-api-key; before issue 17 the link's key went there.
    """
    before = len(anthropic.messages())
    lab.ssh(BROKEN, f": > {OLLAMA_REQUEST_LOG}", check=True)
    with service_environment(lab, BROKEN, OLLAMA_CONTEXT_LENGTH="4096"):
        run = pyinfra_run("deploys/ollama_claude.py",
                          data={**claude_link(anthropic, tmp_path), "claude_managed_settings": True})
        policy = json.loads(lab.ssh(BROKEN, "cat /etc/claude-code/managed-settings.json", check=True).stdout)
        ollama_log = lab.ssh(BROKEN, f"cat {OLLAMA_REQUEST_LOG}", check=True).stdout
    report = json.loads((tmp_path / "verify.json").read_text())
    assert policy["env"]["ANTHROPIC_BASE_URL"] == "http://127.0.0.1:11434"
    assert run.rc == 0, run
    broken = host_line(report, BROKEN)
    assert (broken["link"], broken["model"], broken["status"]) == ("claude", ANTHROPIC_MODEL, "pass"), report
    sent = anthropic.messages()[before:]
    assert sent and all(request["headers"].get("x-api-key") == "***" for request in sent), sent
    requests = [json.loads(line) for line in ollama_log.splitlines() if line]
    assert requests, "verify asked the host's Ollama (tags, show)"
    assert not [r for r in requests if "x-api-key" in r["headers"]], "the key reached Ollama"
    assert API_KEY not in run.output and API_KEY not in ollama_log


def test_policy_off_fails_the_host_with_the_chains_reasons(provisioned, lab, anthropic, pyinfra_run, tmp_path):
    before = len(anthropic.messages())
    with service_environment(lab, BROKEN, OLLAMA_CONTEXT_LENGTH="4096"):
        run = pyinfra_run("deploys/verify.py", data=claude_link(anthropic, tmp_path, allow=False))
    report = json.loads((tmp_path / "verify.json").read_text())
    assert run.rc != 0 and BROKEN in run.failed_hosts and GOOD not in run.failed_hosts, run
    edit = edit_message(report, BROKEN)
    assert "local: " in edit and "OLLAMA_CONTEXT_LENGTH=4096" in edit, edit
    assert "cloud: no model in ollama_cloud_models" in edit
    assert "claude: verify_allow_anthropic is off (policy)" in edit
    assert len(anthropic.messages()) == before
    assert API_KEY not in run.output


def test_unreachable_host_is_reported_and_limit_leaves_it_out(provisioned, lab, pyinfra_run, tmp_path):
    """Last in the module: gpu2 stays down (the module's lab is torn down after it)."""
    lab.kill_host(BROKEN)
    whole = pyinfra_run("deploys/verify.py", data={"verify_report_dir": str(tmp_path / "all")})
    report = json.loads((tmp_path / "all" / "verify.json").read_text())
    assert whole.rc != 0, whole
    assert host_line(report, GOOD)["status"] == "pass" and host_line(report, BROKEN)["status"] == "unreachable"
    assert report["failed"] is True
    terminal = next(line for line in whole.output.splitlines() if f" {BROKEN} " in line and "unreachable" in line)
    assert terminal.startswith("✗"), whole
    assert "verify: 1 passed, 0 failed, 1 unreachable, 0 not verified, of 2 hosts" in whole.output
    suites = {suite.name: suite for suite in JUnitXml.fromfile(str(tmp_path / "all" / "verify-junit.xml"))}
    (case,) = suites[f"{BROKEN}/-"]
    assert isinstance(case.result[0], Error) and case.result[0].message.startswith("unreachable")

    limited = pyinfra_run("deploys/verify.py", data={"verify_report_dir": str(tmp_path / "limit")}, hosts=[GOOD])
    report = json.loads((tmp_path / "limit" / "verify.json").read_text())
    assert limited.rc == 0, limited
    assert [line["host"] for line in report["hosts"]] == [GOOD] and report["failed"] is False
    assert "verify: 1 passed, 0 failed, 0 unreachable, 0 not verified, of 1 hosts" in limited.output
