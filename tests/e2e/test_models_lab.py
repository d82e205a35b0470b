"""
Models on two lab hosts through the pyinfra CLI, with the Ollama stand-in as server and registry: what is
pulled (its request log), what is kept or pruned, and how a bad model or a missing sign-in fails one host only.

The tests run in order, each building on the hosts the previous one left.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from standin_registry import listed, upstream_digest

from ollama_claude.lab.release_mirror import serve_release_mirror

DEPLOY = "tests/e2e/deploys/models.py"
URL = "http://127.0.0.1:11434"
HOSTS = ("gpu1", "gpu2")
SERVER_HOME = "/usr/share/ollama/.ollama"
REQUEST_LOG = f"{SERVER_HOME}/standin-requests.jsonl"
CATALOGUE = "/etc/ollama-standin/catalogue.json"
#: Kept the same in every run, so the server's drop-in (and so the server) never changes between runs.
SERVER_ENV = {"ollama_environment": {"OLLAMA_STANDIN_CATALOGUE": CATALOGUE}}


def data(*models: str, **extra: object) -> dict:
    return {**SERVER_ENV, "ollama_models": list(models), **extra}


def on_host(lab, host: str, command: str) -> str:
    return lab.ssh(host, command, check=True).stdout


def models_on(lab, host: str) -> dict[str, str]:
    return listed(URL, run=lambda command: on_host(lab, host, command))


def pulls(lab, host: str) -> list[str]:
    """Models named by /api/pull requests in the stand-in's log, oldest first."""
    lines = on_host(lab, host, f"cat {REQUEST_LOG} 2>/dev/null || true").splitlines()
    return [record["model"] for record in map(json.loads, lines) if record["path"] == "/api/pull"]


def publish(lab, host: str, catalogue: dict) -> None:
    """Change what the host's registry serves (the stand-in re-reads the override on every lookup)."""
    text = json.dumps({"models": catalogue})
    on_host(lab, host, f"mkdir -p {Path(CATALOGUE).parent} && printf '%s' '{text}' > {CATALOGUE}")


def start_clean(lab, host: str) -> None:
    """No models, no request log, not signed in: whatever earlier tests on the session lab left behind."""
    publish(lab, host, {})
    on_host(lab, host, f"rm -f {REQUEST_LOG} {SERVER_HOME}/standin-signed-in {SERVER_HOME}/standin-ollama-com-reachable")
    if lab.ssh(host, f"curl -sf {URL}/api/version").returncode == 0:
        for model in models_on(lab, host):
            on_host(lab, host, f"curl -sf -X DELETE {URL}/api/delete -d '{{\"model\":\"{model}\"}}'")
        on_host(lab, host, f"rm -f {REQUEST_LOG}")


@pytest.fixture(scope="module")
def first_run(lab, pyinfra_run):
    serve_release_mirror(lab)
    for host in HOSTS:
        start_clean(lab, host)
    return pyinfra_run(DEPLOY, data=data("glm-4.7-flash", "qwen3"))


def test_fresh_hosts_end_with_the_declared_models(lab, first_run):
    assert first_run.rc == 0, first_run
    for host in HOSTS:
        assert set(models_on(lab, host)) == {"glm-4.7-flash:latest", "qwen3:latest"}
        assert sorted(pulls(lab, host)) == ["glm-4.7-flash:latest", "qwen3:latest"]


def test_second_run_changes_nothing_and_pulls_nothing(lab, pyinfra_run, first_run):
    second = pyinfra_run(DEPLOY, data=data("glm-4.7-flash", "qwen3"))
    assert second.rc == 0, second
    assert second.changes == 0, second
    for host in HOSTS:
        assert len(pulls(lab, host)) == 2


def test_an_added_model_is_the_only_one_pulled(lab, pyinfra_run, first_run):
    before = {host: len(pulls(lab, host)) for host in HOSTS}
    run = pyinfra_run(DEPLOY, data=data("glm-4.7-flash", "qwen3", "gpt-oss:20b"))
    assert run.rc == 0, run
    for host in HOSTS:
        assert pulls(lab, host)[before[host]:] == ["gpt-oss:20b"]


def test_a_pinned_digest_that_differs_is_pulled_again(lab, pyinfra_run, first_run, tmp_path):
    catalogue = {"qwen3:latest": {"revision": "2"}}
    new = upstream_digest(tmp_path, "qwen3:latest", catalogue)
    old = models_on(lab, "gpu1")["qwen3:latest"]
    assert new != old
    publish(lab, "gpu1", catalogue)
    publish(lab, "gpu2", catalogue)
    before = {host: len(pulls(lab, host)) for host in HOSTS}
    run = pyinfra_run(DEPLOY, data=data("glm-4.7-flash", f"qwen3@sha256:{new}", "gpt-oss:20b"))
    assert run.rc == 0, run
    for host in HOSTS:
        assert pulls(lab, host)[before[host]:] == ["qwen3:latest"]
        assert models_on(lab, host)["qwen3:latest"] == new


def test_prune_off_keeps_undeclared_models(lab, pyinfra_run, first_run):
    run = pyinfra_run(DEPLOY, data=data("glm-4.7-flash"))
    assert run.rc == 0, run
    assert run.changes == 0, run
    for host in HOSTS:
        assert set(models_on(lab, host)) == {"glm-4.7-flash:latest", "qwen3:latest", "gpt-oss:20b"}


def test_prune_dry_run_removes_nothing(lab, pyinfra_run, first_run):
    run = pyinfra_run(DEPLOY, data=data("glm-4.7-flash", "qwen3", ollama_prune=True), dry=True)
    assert run.rc == 0, run
    for host in HOSTS:
        assert "gpt-oss:20b" in models_on(lab, host)


def test_prune_on_removes_exactly_the_undeclared(lab, pyinfra_run, first_run):
    run = pyinfra_run(DEPLOY, data=data("glm-4.7-flash", "qwen3", ollama_prune=True))
    assert run.rc == 0, run
    for host in HOSTS:
        assert set(models_on(lab, host)) == {"glm-4.7-flash:latest", "qwen3:latest"}
    rerun = pyinfra_run(DEPLOY, data=data("glm-4.7-flash", "qwen3", ollama_prune=True))
    assert rerun.changes == 0, rerun


def fails_gpu1_only(run, message: str) -> None:
    assert run.rc != 0, run
    assert message in run.output, run
    assert run.failed_hosts == {"gpu1"}, run


def test_a_model_without_tools_fails_its_host_only(lab, pyinfra_run, first_run):
    publish(lab, "gpu1", {"smollm2:360m": {"capabilities": ["completion"]}})
    publish(lab, "gpu2", {"smollm2:360m": {"capabilities": ["completion", "tools"]}})
    run = pyinfra_run(DEPLOY, data=data("glm-4.7-flash", "qwen3", "smollm2:360m", claude_model="smollm2:360m"))
    fails_gpu1_only(run, f"gpu1: claude_model/claude_role_models: smollm2:360m on {URL} does not list the "
                         "tools capability")
    assert "not a Hugging Face GGUF import" in run.output
    for host in HOSTS:  # pulled on both; the check after the pull is what fails gpu1
        assert "smollm2:360m" in models_on(lab, host)


def test_an_unknown_model_fails_its_host_with_the_registry_message(lab, pyinfra_run, first_run):
    publish(lab, "gpu1", {})
    publish(lab, "gpu2", {"mystery-coder:latest": {}})
    before = len(pulls(lab, "gpu1"))
    run = pyinfra_run(DEPLOY, data=data("glm-4.7-flash", "qwen3", "mystery-coder"))
    fails_gpu1_only(run, f"gpu1: ollama_models: pulling mystery-coder:latest from {URL} failed: pull model "
                         "manifest: file does not exist; fix: check the model name")
    assert pulls(lab, "gpu1")[before:] == ["mystery-coder:latest"]  # permanent: not retried
    assert "mystery-coder:latest" in models_on(lab, "gpu2")


def test_a_cloud_model_without_signin_fails_its_host_with_the_signin_url(lab, pyinfra_run, first_run):
    on_host(lab, "gpu2", f"touch {SERVER_HOME}/standin-signed-in")
    on_host(lab, "gpu1", f"touch {SERVER_HOME}/standin-ollama-com-reachable")  # reachable, but not signed in
    run = pyinfra_run(DEPLOY, data=data("glm-4.7-flash", "qwen3", ollama_cloud_models=["glm-5.2:cloud"]))
    fails_gpu1_only(run, "gpu1: ollama_cloud_models: the Ollama server at http://127.0.0.1:11434 is not signed in "
                         "to ollama.com; fix: run `ollama signin` as ollama on gpu1 and open "
                         "https://ollama.com/connect?name=")
    assert f"{SERVER_HOME}/id_ed25519.pub" in run.output
    assert "glm-5.2:cloud" not in models_on(lab, "gpu1")
    assert "glm-5.2:cloud" in models_on(lab, "gpu2")


def test_ollama_com_unreachable_is_reported_as_such_not_as_a_missing_signin(lab, pyinfra_run, first_run):
    """The lab's default: the server cannot reach ollama.com, so /api/me answers 503 (0.23.2+), not 401."""
    on_host(lab, "gpu1", f"rm -f {SERVER_HOME}/standin-signed-in {SERVER_HOME}/standin-ollama-com-reachable")
    on_host(lab, "gpu2", f"touch {SERVER_HOME}/standin-signed-in")
    run = pyinfra_run(DEPLOY, data=data("glm-4.7-flash", ollama_cloud_models=["glm-5.2:cloud"]))
    fails_gpu1_only(run, "gpu1: ollama_cloud_models: ollama.com unreachable from gpu1: the Ollama server at "
                         "http://127.0.0.1:11434 cannot reach ollama.com")
    assert "ollama signin" not in run.output.split("ollama.com unreachable from gpu1", 1)[1].split("\n", 1)[0]
