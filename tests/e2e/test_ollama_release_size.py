"""
Release-sized archives (the mirror's padding option): the disk space check before the download names the path,
the bytes needed and the bytes free and changes nothing; with room, the large archive downloads, verifies,
unpacks and the server comes up within the health timeout.
"""

from __future__ import annotations

import json
import re

import pytest

from ollama_claude.lab.release_mirror import serve_release_mirror

SIZE = 96 * 1024 * 1024  # compressed; real bundles are over 1 GB (`lab up --release-size 1.2G` builds those)
ROOT = "/usr/local/lib/ollama-claude"
DEPLOY = "tests/e2e/deploys/install_ollama.py"
pytestmark = pytest.mark.lab


@pytest.fixture(scope="module")
def mirror(lab):
    yield serve_release_mirror(lab, release_size=SIZE)
    serve_release_mirror(lab, release_size=0)  # the lab's mirror remembers its size: back to small archives


def test_a_disk_too_small_fails_before_the_download_naming_path_and_bytes(lab, mirror, pyinfra_run):
    lab.ssh("gpu1", f"mkdir -p {ROOT} && mount -t tmpfs -o size=128m tmpfs {ROOT}", check=True)
    try:
        run = pyinfra_run(DEPLOY, hosts=["gpu1"])
        listing = lab.ssh("gpu1", f"ls -A {ROOT}", check=True).stdout.strip()
    finally:
        lab.ssh("gpu1", f"umount {ROOT}", check=True)
    assert run.rc != 0, run
    found = re.search(rf"gpu1: not enough disk space for Ollama under {ROOT}/ollama: the download and unpacked "
                      rf"release need about (\d+) bytes, (\d+) bytes are free on {ROOT}", run.output)
    assert found, run
    needed, free = map(int, found.groups())
    assert needed >= 4 * SIZE and free <= 128 * 1024 * 1024
    assert listing == ""  # nothing downloaded or unpacked there


def test_with_room_the_release_sized_archive_installs_and_serves(lab, mirror, pyinfra_run):
    run = pyinfra_run(DEPLOY, hosts=["gpu1"])
    assert run.rc == 0 and run.errors == 0, run
    version = json.loads(lab.ssh("gpu1", "curl -fsS 127.0.0.1:11434/api/version", check=True).stdout)["version"]
    assert version == "0.32.15"
    size = int(lab.ssh("gpu1", f"du -sb {ROOT}/ollama/0.32.15 | cut -f1", check=True).stdout)
    assert size >= SIZE  # the padding arrived whole and unpacked
