"""
Air-gapped fleet: `mirror sync` on the control machine from an upstream (the lab's release mirror), the
upstream switched off, `mirror serve` of the synced directory on the lab bridge, and the fleet installs Ollama
and Claude Code from it alone: every archive and package the hosts fetch comes from the synced copy.
"""

from __future__ import annotations

import subprocess
import sys
import urllib.error
import urllib.request

import pytest

from ollama_claude.lab.release_mirror import MIRROR_SERVICE, gateway_ip, serve_release_mirror
from ollama_claude.lab.system import wait_until_serving
from ollama_claude.mirror.server import requests
from ollama_claude.settings import Settings

#: What the deploy installs by default: the pins the mirror must serve.
OLLAMA_PIN = Settings.model_fields["ollama_version"].default
CLAUDE_CODE_PIN = Settings.model_fields["claude_code_version"].default

pytestmark = pytest.mark.lab

FLEET_MIRROR_PORT = 8471
DEPLOY = """\
from ollama_claude.claude.deploy import configure_claude_code
from ollama_claude.ollama.deploy import install_ollama

install_ollama()
configure_claude_code()
"""


@pytest.fixture(scope="module")
def synced_fleet_mirror(lab, tmp_path_factory):
    """(URL, root) of the synced mirror served on the bridge, with the upstream already stopped."""
    upstream = serve_release_mirror(lab)
    root = tmp_path_factory.mktemp("fleet-mirror")
    synced = subprocess.run(
        [sys.executable, "-m", "ollama_claude.cli", "mirror", "sync", "--dest", str(root),
         "--ollama-url", f"{upstream}/ollama/releases/download", "--registry", f"{upstream}/npm"],
        capture_output=True, text=True, check=False, timeout=300,
    )
    assert synced.returncode == 0, synced.stderr
    lab.stop_service(MIRROR_SERVICE)
    url = f"http://{gateway_ip(lab)}:{FLEET_MIRROR_PORT}"
    lab.start_service("fleet-mirror", [sys.executable, "-m", "ollama_claude.cli", "mirror", "serve",
                                       "--root", str(root), "--bind", gateway_ip(lab),
                                       "--port", str(FLEET_MIRROR_PORT)])
    wait_until_serving(f"{url}/npm/")
    yield url, root
    lab.stop_service("fleet-mirror")


def test_fleet_deploys_from_the_synced_mirror_with_upstream_gone(lab, synced_fleet_mirror, pyinfra_run, tmp_path):
    url, root = synced_fleet_mirror
    deploy = tmp_path / "airgap.py"
    deploy.write_text(DEPLOY)
    data = {"ollama_download_url": f"{url}/ollama/releases/download", "claude_code_registry": f"{url}/npm"}
    with pytest.raises(OSError):
        urllib.request.urlopen(f"http://{gateway_ip(lab)}:8470/npm/", timeout=3)

    first = pyinfra_run(str(deploy), data=data)
    assert first.rc == 0 and first.errors == 0, first

    served = {(entry["client"], entry["path"]) for entry in requests(root) if entry["status"] in (200, 206)}
    for host in lab.require_state().hosts:
        paths = {path for client, path in served if client == host.address}
        assert any(path.endswith(f"/v{OLLAMA_PIN}/ollama-linux-amd64.tar.zst") for path in paths), paths
        assert any(path.endswith(f"claude-code-linux-x64-{CLAUDE_CODE_PIN}.tgz") for path in paths), paths
        version = lab.ssh(host.name, "ollama --version; claude --version",
                          timeout=60)
        assert OLLAMA_PIN in version.stdout and CLAUDE_CODE_PIN in version.stdout, version.stdout + version.stderr

    again = pyinfra_run(str(deploy), data=data)
    assert again.rc == 0 and again.changes == 0, again
