"""
Ollama install, upgrade, overrides, checksum abort and rollback through the real pyinfra CLI on two lab hosts,
with release archives (the stand-in inside) from the lab mirror. The tests run in order and share the hosts.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest
from release_under_test import publish_release

from ollama_claude.lab import network
from ollama_claude.lab.mirror import FAULTS_FILE, build_mirror, write_faults

REPO = Path(__file__).resolve().parents[2]
DEPLOY = "tests/e2e/deploys/install_ollama.py"
HOSTS = ("gpu1", "gpu2")
ROOT = "/usr/local/lib/ollama-claude/ollama"
MIRROR_PORT = 8111
#: A release whose archive and checksum are valid but whose binary exits at start, as a broken build would.
BROKEN_VERSION = "0.31.0"
FLOOR, PIN, OLD = "0.18.0", "0.32.15", "0.16.3"  # the floor, the default pin, a release below the floor
pytestmark = pytest.mark.lab


def _broken_release(mirror_root: Path) -> None:
    script = b'#!/bin/sh\necho "ollama 0.31.0: crashed at start (lab test release)" >&2\nexit 1\n'
    publish_release(mirror_root, BROKEN_VERSION, script)


ZSTD_FROM_THE_HOSTS_OWN_REPOSITORY = """
set -e
dpkg -r zstd >/dev/null
mkdir -p /srv/lab-apt && cp /var/cache/apt/archives/zstd_*.deb /srv/lab-apt/
cd /srv/lab-apt && deb=$(ls zstd_*.deb)
{ dpkg-deb -f "$deb"; echo "Filename: ./$deb"; echo "Size: $(stat -c %s "$deb")"
  echo "SHA256: $(sha256sum "$deb" | cut -d' ' -f1)"; echo; } > Packages
rm -f /etc/apt/sources.list.d/* && echo 'deb [trusted=yes] file:/srv/lab-apt ./' > /etc/apt/sources.list
rm -rf /var/lib/apt/lists/*
"""


@pytest.fixture(scope="module")
def mirror(lab, tmp_path_factory):
    """The release mirror on the lab's bridge address, with 0.16.3, 0.18.0, 0.32.15 and the broken release."""
    root = build_mirror(tmp_path_factory.mktemp("mirror"), claude_code_version=None)
    _broken_release(root)
    gateway = str(network.gateway_address(lab.require_state().subnet).ip)
    argv = [sys.executable, "-m", "ollama_claude.lab.mirror", "serve", "--root", str(root), "--no-claude-code",
            "--bind", gateway, "--port", str(MIRROR_PORT)]
    lab.start_service("ollama-install-mirror", argv)
    base = f"http://{gateway}:{MIRROR_PORT}"
    for _ in range(100):
        try:
            urllib.request.urlopen(f"{base}/ollama/releases/download/v{OLD}/sha256sum.txt", timeout=1)
            break
        except OSError:
            time.sleep(0.1)
    yield root, f"{base}/ollama/releases/download"
    lab.stop_service("ollama-install-mirror")


@pytest.fixture(scope="module")
def deploy(pyinfra_run, mirror):
    def run(**data):
        return pyinfra_run(DEPLOY, data={"ollama_download_url": mirror[1], **data})
    return run


def _on(lab, host: str, command: str) -> str:
    return lab.ssh(host, command, check=True).stdout.strip()


def _version(lab, host):
    return json.loads(_on(lab, host, "curl -fsS 127.0.0.1:11434/api/version"))["version"]


def _pid(lab, host):
    return _on(lab, host, "systemctl show -p MainPID --value ollama.service")


def _models(lab, host):
    return {m["name"] for m in json.loads(_on(lab, host, "curl -fsS 127.0.0.1:11434/api/tags"))["models"]}


def _pull(lab, host, model):
    _on(lab, host, f"curl -fsS 127.0.0.1:11434/api/pull -d '{{\"model\":\"{model}\",\"stream\":false}}'")


def test_fresh_install_runs_the_pinned_version_from_its_own_directory(lab, deploy):
    run = deploy(ollama_version=FLOOR)
    assert run.rc == 0 and run.errors == 0, run
    for host in HOSTS:
        assert _version(lab, host) == FLOOR
        assert _on(lab, host, "readlink /usr/local/bin/ollama") == f"{ROOT}/{FLOOR}/bin/ollama"
        assert _on(lab, host, "systemctl is-enabled ollama.service") == "enabled"
        assert _on(lab, host, "id -nG ollama").split()[0] == "ollama"
        assert "OLLAMA_CONTEXT_LENGTH=64000" in _on(lab, host, "systemctl show -p Environment ollama.service")


def test_rerun_changes_nothing_and_keeps_the_server_process(lab, deploy):
    pids = {host: _pid(lab, host) for host in HOSTS}
    run = deploy(ollama_version=FLOOR)
    assert run.rc == 0 and run.changes == 0, run
    assert {host: _pid(lab, host) for host in HOSTS} == pids


def test_dry_run_shows_the_upgrade_and_changes_nothing(lab, mirror):
    pids = {host: _pid(lab, host) for host in HOSTS}
    # Without -y: pyinfra only diffs (and so only --dry shows changes) when it is not told to go ahead blindly.
    argv = [str(Path(sys.executable).parent / "pyinfra"), "inventories/lab.py", DEPLOY, "--dry",
            "--data", f"ollama_download_url={mirror[1]}", "--data", f"ollama_version={PIN}"]
    run = subprocess.run(argv, cwd=REPO, env=lab.pyinfra_env(), capture_output=True, text=True, timeout=300,
                         check=False)
    assert run.returncode == 0, run.stderr
    proposed = run.stdout + run.stderr
    assert re.search(r"Install Ollama 0\.32\.15\s+2 \(gpu1, gpu2\)", proposed), proposed
    assert re.search(r"Restart Ollama if needed and wait for its version\s+2 \(gpu1, gpu2\)", proposed), proposed
    assert re.search(r"Ollama service overrides\s+-\s", proposed), proposed  # the drop-in stays as it is
    for host in HOSTS:
        assert _version(lab, host) == FLOOR and _pid(lab, host) == pids[host]
        assert _on(lab, host, f"ls {ROOT}") == FLOOR


def test_truncated_archive_fails_every_host_naming_url_and_checksum_and_keeps_the_old_version(lab, deploy, mirror):
    pids = {host: _pid(lab, host) for host in HOSTS}
    archive = f"ollama/releases/download/v{PIN}/ollama-linux-amd64.tar.zst"
    write_faults(mirror[0], truncate=[archive])
    try:
        run = deploy(ollama_version=PIN)
    finally:
        (mirror[0] / FAULTS_FILE).unlink()
    assert run.rc != 0 and run.failed_hosts == set(HOSTS), run
    for host in HOSTS:
        assert f"{host}: sha256 mismatch for {mirror[1]}/v{PIN}/ollama-linux-amd64.tar.zst: expected " in run.output
        assert _version(lab, host) == FLOOR and _pid(lab, host) == pids[host]
        assert _on(lab, host, f"ls -A {ROOT}") == FLOOR


def test_zstd_less_host_fails_up_front_when_told_not_to_install_it_the_other_upgrades(lab, deploy):
    for host in HOSTS:
        _pull(lab, host, "qwen3")
    gpu2_pid = _pid(lab, "gpu2")
    _on(lab, "gpu2", "mv /usr/bin/zstd /usr/bin/zstd.hidden")
    try:
        run = deploy(ollama_version=PIN, ollama_install_zstd=False)
    finally:
        _on(lab, "gpu2", "mv /usr/bin/zstd.hidden /usr/bin/zstd")
    assert run.rc != 0 and run.failed_hosts == {"gpu2"}, run
    assert "gpu2: zstd is missing and ollama_install_zstd is off: Linux releases of Ollama are .tar.zst only" in (
        run.output)
    assert _version(lab, "gpu2") == FLOOR and _pid(lab, "gpu2") == gpu2_pid
    assert _on(lab, "gpu2", f"ls -A {ROOT}") == FLOOR  # nothing downloaded, nothing switched
    assert _version(lab, "gpu1") == PIN and "qwen3:latest" in _models(lab, "gpu1")
    assert _on(lab, "gpu1", f"ls {ROOT}").split() == [FLOOR, PIN]


def test_zstd_less_host_gets_zstd_from_its_package_manager_then_upgrades(lab, deploy):
    """gpu2 as a host whose apt sources hold only the site's own repository, where zstd is published."""
    _on(lab, "gpu2", ZSTD_FROM_THE_HOSTS_OWN_REPOSITORY)
    assert _on(lab, "gpu2", "command -v zstd || echo none") == "none"
    run = deploy(ollama_version=PIN)
    assert run.rc == 0 and run.errors == 0, run
    assert _on(lab, "gpu2", "command -v zstd") == "/usr/bin/zstd"
    assert _version(lab, "gpu2") == PIN and "qwen3:latest" in _models(lab, "gpu2")
    assert deploy(ollama_version=PIN).changes == 0


def test_context_length_change_rewrites_the_drop_in_and_restarts_once(lab, deploy):
    since = _on(lab, "gpu1", "date +%s")
    run = deploy(ollama_context_length=128000)
    assert run.rc == 0, run
    for host in HOSTS:
        drop_in = _on(lab, host, "cat /etc/systemd/system/ollama.service.d/zz-ollama-claude.conf")
        assert 'Environment="OLLAMA_CONTEXT_LENGTH=128000"' in drop_in
        pid = _pid(lab, host)
        assert "OLLAMA_CONTEXT_LENGTH=128000" in _on(lab, host, f"tr '\\0' '\\n' < /proc/{pid}/environ")
        starts = _on(lab, host, f"journalctl -u ollama.service --since @{since} -o cat | grep -c '^Started ollama'")
        assert starts == "1", host
    assert deploy(ollama_context_length=128000).changes == 0


def test_version_failing_its_health_check_is_rolled_back(lab, deploy):
    run = deploy(ollama_version=BROKEN_VERSION, ollama_health_timeout=8, ollama_context_length=128000)
    assert run.rc != 0, run
    assert f"ollama {BROKEN_VERSION} did not report its version" in run.output, run
    assert "crashed at start" in run.output  # the journal tail names the reason
    for host in HOSTS:
        assert f"{host}: ollama {BROKEN_VERSION} did not report" in run.output
        assert _version(lab, host) == PIN
        assert _on(lab, host, "readlink /usr/local/bin/ollama") == f"{ROOT}/{PIN}/bin/ollama"
        assert "qwen3:latest" in _models(lab, host)


def test_install_sh_host_below_the_floor_is_taken_over_and_upgraded(lab, deploy, mirror):
    """gpu2 as install.sh leaves it (the release's own install.sh, 0.16.3), with a model pulled there."""
    _on(lab, "gpu2", f"systemctl disable --now ollama.service; rm -rf {ROOT} /usr/local/bin/ollama "
                     "/etc/systemd/system/ollama.service.d")
    _on(lab, "gpu2", f"curl -fsSL {mirror[1]}/v{OLD}/install.sh | OLLAMA_DOWNLOAD_URL={mirror[1]}/v{OLD} sh; "
                     "for i in $(seq 50); do curl -fsS 127.0.0.1:11434/api/version && break; sleep 0.2; done")
    assert _version(lab, "gpu2") == OLD
    _pull(lab, "gpu2", "gpt-oss:20b")
    run = deploy(ollama_version=PIN)
    assert run.rc == 0 and run.errors == 0, run
    assert _version(lab, "gpu2") == PIN
    assert _on(lab, "gpu2", "readlink /usr/local/bin/ollama") == f"{ROOT}/{PIN}/bin/ollama"
    assert _on(lab, "gpu2", "test -e /usr/local/lib/ollama || echo gone") == "gone"
    assert _on(lab, "gpu2", f"ls {ROOT}").split() == [f"{OLD}+installsh", PIN]
    assert {"gpt-oss:20b", "qwen3:latest"} <= _models(lab, "gpu2")
    assert deploy(ollama_version=PIN).changes == 0


def test_pin_back_to_the_floor_rolls_back_and_keeps_models(lab, deploy):
    run = deploy(ollama_version=FLOOR)
    assert run.rc == 0 and run.errors == 0, run
    for host in HOSTS:
        assert _version(lab, host) == FLOOR and "qwen3:latest" in _models(lab, host)
