"""
Model fan-out on a 3-host lab: the control machine fetches each model once from the registry stand-in (`mirror
sync --model`), the hosts copy it from the fleet mirror over the LAN, and their servers list it with the
registry's digest and tools; a blob tampered with in transit is refused by its digest and that host pulls the
model from the registry instead.
"""

from __future__ import annotations

import hashlib
import json
import subprocess
import sys
from pathlib import Path

import pytest

from ollama_claude.lab.mirror import write_faults
from ollama_claude.lab.release_mirror import gateway_ip, serve_release_mirror
from ollama_claude.lab.standin_server import baked_standin
from ollama_claude.lab.system import wait_until_serving
from ollama_claude.mirror.server import requests
from ollama_claude.models.operations import REGISTRY_HOST

pytestmark = pytest.mark.lab

FLEET_MIRROR_PORT, REGISTRY_PORT = 8471, 8472
BLOB_SIZE = 8_000_000
DEPLOY = """\
from ollama_claude.models.deploy import manage_models
from ollama_claude.ollama.deploy import install_ollama

install_ollama()
manage_models()
"""
# The whole job: the fanned-out model must pass the real edit test through Claude Code on every host.
FULL_DEPLOY = """\
from ollama_claude.claude.deploy import configure_claude_code
from ollama_claude.models.deploy import manage_models
from ollama_claude.ollama.deploy import install_ollama
from ollama_claude.verify.deploy import verify_host

install_ollama()
manage_models()
configure_claude_code()
verify_host()
"""


@pytest.fixture(scope="module")
def lab(request):
    """Three hosts instead of the usual two: the issue's acceptance case, from the shared lab helper."""
    shared = request.config.pluginmanager.get_plugin(str(Path(__file__).resolve().parents[1] / "conftest.py"))
    yield from shared.disposable_lab(shared.TEST_LAB, shared.TEST_SUBNET, 3)


@pytest.fixture(scope="module")
def fleet(lab, tmp_path_factory):
    """Registry stand-in and fleet mirror (with glm-4.7-flash and qwen3 synced) on the lab gateway."""
    work = tmp_path_factory.mktemp("fanout")
    gateway = gateway_ip(lab)
    upstream = serve_release_mirror(lab)
    registry_bin = work / "ollama"
    registry_bin.write_text(baked_standin("0.32.15"))
    registry_bin.chmod(0o755)
    registry_log = work / "registry.jsonl"
    registry = f"http://{gateway}:{REGISTRY_PORT}"
    lab.start_service("registry", ["env", f"OLLAMA_STANDIN_LOG={registry_log}", f"OLLAMA_STANDIN_BLOB_SIZE={BLOB_SIZE}",
                                   str(registry_bin), "standin-registry", f"{gateway}:{REGISTRY_PORT}"])
    wait_until_serving(f"{registry}/v2/")
    root = work / "mirror"
    synced = subprocess.run(
        [sys.executable, "-m", "ollama_claude.cli", "mirror", "sync", "--dest", str(root), "--no-claude-code",
         "--ollama-url", f"{upstream}/ollama/releases/download", "--model", "glm-4.7-flash", "--model", "qwen3",
         "--model-registry", registry],
        capture_output=True, text=True, check=False, timeout=300,
    )
    assert synced.returncode == 0, synced.stderr
    # served as `mirror serve` serves it, plus the lab's fault controls (the tampered-blob case needs them)
    lab.start_service("fleet-mirror", [sys.executable, "-m", "ollama_claude.lab.mirror", "serve", "--no-build",
                                       "--root", str(root), "--bind", gateway, "--port", str(FLEET_MIRROR_PORT)])
    wait_until_serving(f"http://{gateway}:{FLEET_MIRROR_PORT}/models/")
    yield {"registry": registry, "registry_log": registry_log, "root": root,
           "mirror": f"http://{gateway}:{FLEET_MIRROR_PORT}", "gateway": gateway}
    lab.stop_service("fleet-mirror")
    lab.stop_service("registry")


def registry_blob_fetches(fleet) -> list[dict]:
    lines = fleet["registry_log"].read_text().splitlines()
    return [entry for entry in map(json.loads, lines) if "/blobs/" in entry["path"]]


def listed(lab, host) -> dict[str, str]:
    out = lab.ssh(host, "curl -fsS http://127.0.0.1:11434/api/tags", timeout=30, check=True).stdout
    return {model["name"]: model["digest"] for model in json.loads(out)["models"]}


def synced_digest(root, model: str) -> str:
    return hashlib.sha256((root / "models" / "manifests" / "library" / model / "latest").read_bytes()).hexdigest()


def run_deploy(pyinfra_run, tmp_path, fleet, models, source=DEPLOY):
    deploy = tmp_path / "fanout.py"
    deploy.write_text(source)
    return pyinfra_run(str(deploy), data={
        "ollama_models": models, "ollama_models_mirror": fleet["mirror"],
        "ollama_environment": {"OLLAMA_STANDIN_REGISTRY": fleet["registry"]},
    })


def test_each_model_crosses_the_wan_once_and_every_host_lists_it(lab, fleet, pyinfra_run, tmp_path):
    assert [host.name for host in lab.require_state().hosts] == ["gpu1", "gpu2", "gpu3"]
    synced_fetches = registry_blob_fetches(fleet)
    assert {entry["client"] for entry in synced_fetches} == {fleet["gateway"]}
    done = run_deploy(pyinfra_run, tmp_path, fleet, ["glm-4.7-flash"], FULL_DEPLOY)
    assert done.rc == 0 and done.errors == 0, done  # verify_host fails its host if the edit test fails
    assert registry_blob_fetches(fleet) == synced_fetches, "a host pulled blobs from the registry"
    served = {(e["client"], e["path"]) for e in requests(fleet["root"]) if e["path"].startswith("/models/blobs/")}
    digest = synced_digest(fleet["root"], "glm-4.7-flash")
    for host in lab.require_state().hosts:
        assert any(client == host.address for client, _ in served), served
        assert listed(lab, host.name)["glm-4.7-flash:latest"] == digest
        show = lab.ssh(host.name, "curl -fsS http://127.0.0.1:11434/api/show -d '{\"model\":\"glm-4.7-flash\"}'",
                       timeout=30, check=True).stdout
        assert "tools" in json.loads(show)["capabilities"]
        store = "/usr/share/ollama/.ollama/models"
        owners = lab.ssh(host.name, f"stat -c %U {store} {store}/blobs {store}/manifests/{REGISTRY_HOST}/"
                                    "library/glm-4.7-flash/latest", timeout=30).stdout.split()
        assert owners == ["ollama"] * 3  # the server must still write its own pulls there
    again = run_deploy(pyinfra_run, tmp_path, fleet, ["glm-4.7-flash"])
    assert again.rc == 0 and again.changes == 0, again
    assert registry_blob_fetches(fleet) == synced_fetches


def test_tampered_blob_is_refused_and_the_host_pulls_from_the_registry(lab, fleet, pyinfra_run, tmp_path):
    manifest = json.loads((fleet["root"] / "models/manifests/library/qwen3/latest").read_text())
    weights = next(layer for layer in manifest["layers"] if layer["mediaType"].endswith(".model"))
    write_faults(fleet["root"], corrupt=[f"models/blobs/{weights['digest'].replace(':', '-')}"])
    before = len(registry_blob_fetches(fleet))
    try:
        done = run_deploy(pyinfra_run, tmp_path, fleet, ["glm-4.7-flash", "qwen3"])
    finally:
        write_faults(fleet["root"])
    assert done.rc == 0 and done.errors == 0, done
    # each host got the tampered blob from the mirror, refused it, and fetched the real one from the registry
    blob_path = f"/models/blobs/{weights['digest'].replace(':', '-')}"
    tampered = {e["client"] for e in requests(fleet["root"]) if e["path"] == blob_path and e["status"] == 200}
    assert tampered == {host.address for host in lab.require_state().hosts}
    pulled = {e["client"] for e in registry_blob_fetches(fleet)[before:] if weights["digest"] in e["path"]}
    assert pulled == {host.address for host in lab.require_state().hosts}
    digest = synced_digest(fleet["root"], "qwen3")
    for host in lab.require_state().hosts:
        assert listed(lab, host.name)["qwen3:latest"] == digest
