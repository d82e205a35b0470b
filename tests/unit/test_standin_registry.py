"""The stand-in's registry over HTTP: pulls through OLLAMA_STANDIN_REGISTRY land the same manifest and blobs
as catalogue pulls, every blob crosses the network once (the registry's log), unknown models fail as before."""

import json
import subprocess
import time
import urllib.request

import pytest

from ollama_claude.lab.standin_server import baked_standin, free_port, start_standin

BLOB_SIZE = "300000"


@pytest.fixture
def registry(tmp_path):
    executable = tmp_path / "registry-bin" / "ollama"
    executable.parent.mkdir()
    executable.write_text(baked_standin("0.16.3"))
    executable.chmod(0o755)
    port, log = free_port(), tmp_path / "registry.jsonl"
    process = subprocess.Popen([str(executable), "standin-registry", f"127.0.0.1:{port}"],
                               env={"PATH": "/usr/bin:/bin", "HOME": str(tmp_path),
                                    "OLLAMA_STANDIN_LOG": str(log), "OLLAMA_STANDIN_BLOB_SIZE": BLOB_SIZE})
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 10
    while True:
        try:
            urllib.request.urlopen(f"{url}/v2/library/qwen3/manifests/latest", timeout=1).close()
            break
        except OSError:
            assert time.monotonic() < deadline, "registry did not start"
            time.sleep(0.05)
    while not log.exists():  # the probe's log line is written just after its response
        time.sleep(0.02)
    log.unlink()
    yield url, log
    process.terminate()
    process.wait(timeout=5)


def pulled(server, model):
    done = server.cli("pull", model, timeout=60)
    assert done.returncode == 0, done.stderr
    return {m["name"]: m["digest"] for m in json.load(urllib.request.urlopen(f"{server.url}/api/tags"))["models"]}


def test_pull_through_the_registry_matches_a_catalogue_pull(tmp_path, registry):
    url, log = registry
    remote = start_standin(tmp_path / "remote", env={"OLLAMA_STANDIN_REGISTRY": url})
    local = start_standin(tmp_path / "local", env={"OLLAMA_STANDIN_BLOB_SIZE": BLOB_SIZE})
    try:
        via_registry = pulled(remote, "glm-4.7-flash")
        assert via_registry == pulled(local, "glm-4.7-flash")
        entries = [json.loads(line) for line in log.read_text().splitlines()]
        # Each response is logged after it is sent, so a blob's line can land before the manifest's.
        (manifest,) = [e for e in entries if "/manifests/" in e["path"]]
        blobs = [e for e in entries if "/blobs/" in e["path"]]
        assert sum(e["bytes"] for e in blobs) > int(BLOB_SIZE)
        assert {e["status"] for e in entries} == {200}
        again = remote.cli("pull", "glm-4.7-flash", timeout=60)
        assert again.returncode == 0
        assert [json.loads(line) for line in log.read_text().splitlines()][len(entries):] == [
            {"path": "/v2/library/glm-4.7-flash/manifests/latest", "status": 200,
             "bytes": manifest["bytes"], "client": "127.0.0.1"}
        ]
    finally:
        remote.stop()
        local.stop()


def test_unknown_model_through_the_registry_fails_like_the_catalogue(tmp_path, registry):
    server = start_standin(tmp_path / "remote", env={"OLLAMA_STANDIN_REGISTRY": registry[0]})
    try:
        done = server.cli("pull", "no-such-model", timeout=30)
        assert done.returncode == 1
        assert "file does not exist" in done.stderr
    finally:
        server.stop()
