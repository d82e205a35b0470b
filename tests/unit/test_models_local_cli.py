"""
The models operations through the real pyinfra CLI (@local) against the Ollama stand-in on loopback: both of
pyinfra's passes (plan, then execute with facts read again), the pull script and the request log. No hosts.
"""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from standin_registry import listed, upstream_digest

from ollama_claude.lab.standin_server import StandinServer, start_standin

PYINFRA = Path(sys.executable).parent / "pyinfra"

# The models step without the parts that need root (script under /usr/local) or settings for a whole host.
DEPLOY = """
from pyinfra import host
from pyinfra.operations import files
from ollama_claude.models.operations import PULL_SCRIPT_SOURCE, models_pruned, models_pulled, tools_capable

files.put(name="pull script", src=str(PULL_SCRIPT_SOURCE), dest=host.data.script, mode="755")
models_pulled(name="pull", models=host.data.models, base_url=host.data.url, script=host.data.script,
              retries=0)
tools_capable(name="tools", models=host.data.claude_models, base_url=host.data.url)
if host.data.get("prune"):
    models_pruned(name="prune", declared=host.data.models, base_url=host.data.url)
"""


#: The stand-in's registry plus a library model that cannot call tools (as smollm2:360m really cannot).
CATALOGUE = {"smollm2:360m": {"capabilities": ["completion"]}}


@pytest.fixture
def standin(tmp_path: Path) -> Iterator[StandinServer]:
    catalogue = tmp_path / "catalogue.json"
    catalogue.write_text(json.dumps({"models": CATALOGUE}))
    server = start_standin(tmp_path / "server", env={"OLLAMA_STANDIN_CATALOGUE": str(catalogue)})
    yield server
    server.stop()


def publish(standin: StandinServer, model: str, revision: str) -> str:
    """Publish a new upstream version of a model to this server's registry; return its manifest digest."""
    catalogue = {**CATALOGUE, model: {"revision": revision}}
    Path(standin.env["OLLAMA_STANDIN_CATALOGUE"]).write_text(json.dumps({"models": catalogue}))
    return upstream_digest(standin.home.parent / f"reference-{revision}", model, catalogue)


def deploy(
    tmp_path: Path,
    standin: StandinServer,
    models: list[str],
    claude_models: list[str] | None = None,
    prune: bool = False,
) -> subprocess.CompletedProcess[str]:
    deploy_file = tmp_path / "models_deploy.py"
    deploy_file.write_text(DEPLOY)
    data = {
        "url": standin.url,
        "script": str(tmp_path / "ollama-pull"),
        "models": models,
        "claude_models": claude_models or models[:1],
        "prune": prune,
    }
    args = [arg for key, value in data.items() for arg in ("--data", f"{key}={json.dumps(value)}")]
    return subprocess.run(
        [str(PYINFRA), "-y", "-vvv", "@local", str(deploy_file), *args],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def pulls(standin: StandinServer) -> list[str]:
    return [request["model"] for request in standin.requests() if request["path"] == "/api/pull"]


def test_first_run_pulls_second_run_changes_nothing(tmp_path: Path, standin: StandinServer) -> None:
    first = deploy(tmp_path, standin, ["glm-4.7-flash", "qwen3:latest"])
    assert first.returncode == 0, first.stderr
    assert "glm-4.7-flash:latest pulled" in first.stdout + first.stderr
    assert sorted(pulls(standin)) == ["glm-4.7-flash:latest", "qwen3:latest"]
    second = deploy(tmp_path, standin, ["glm-4.7-flash", "qwen3:latest"])
    assert second.returncode == 0, second.stderr
    assert "No changes" in second.stdout + second.stderr
    assert len(pulls(standin)) == 2


def test_model_without_tools_fails_after_its_pull(tmp_path: Path, standin: StandinServer) -> None:
    result = deploy(tmp_path, standin, ["smollm2:360m"])
    assert result.returncode != 0
    assert "smollm2:360m on" in result.stderr and "does not list the tools capability" in result.stderr
    assert pulls(standin) == ["smollm2:360m"]


def test_unknown_model_fails_with_the_registry_message(tmp_path: Path, standin: StandinServer) -> None:
    result = deploy(tmp_path, standin, ["no-such-model"])
    assert result.returncode != 0
    assert "pull model manifest: file does not exist" in result.stderr


def test_prune_removes_only_the_undeclared(tmp_path: Path, standin: StandinServer) -> None:
    assert deploy(tmp_path, standin, ["glm-4.7-flash", "qwen3"]).returncode == 0
    result = deploy(tmp_path, standin, ["qwen3"], prune=True)
    assert result.returncode == 0, result.stderr
    assert list(listed(standin.url)) == ["qwen3:latest"]
    assert "removed undeclared model glm-4.7-flash:latest" in result.stderr


def test_pinned_digest_mismatch_repulls_and_an_unservable_pin_fails(
    tmp_path: Path, standin: StandinServer
) -> None:
    assert deploy(tmp_path, standin, ["qwen3"]).returncode == 0
    old = listed(standin.url)["qwen3:latest"]
    new = publish(standin, "qwen3:latest", revision="2")
    assert new != old
    assert deploy(tmp_path, standin, [f"qwen3@sha256:{old}"]).returncode == 0
    assert pulls(standin) == ["qwen3:latest"]
    repinned = deploy(tmp_path, standin, [f"qwen3@sha256:{new}"])
    assert repinned.returncode == 0, repinned.stderr
    assert listed(standin.url)["qwen3:latest"] == new
    assert pulls(standin) == ["qwen3:latest", "qwen3:latest"]
    unservable = deploy(tmp_path, standin, [f"qwen3@sha256:{old}"])
    assert unservable.returncode != 0
    assert f"qwen3:latest@sha256:{old} is pinned but the server lists sha256:{new} after the pull" in (
        unservable.stderr
    )
