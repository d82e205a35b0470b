"""`mirror sync` against a local upstream (the lab mirror on 127.0.0.1): layout, verification, idempotence,
a corrupted upstream file refused with URL and both sums, and `mirror serve` answering like the upstream."""

import hashlib
import json
import re
import subprocess
import sys
import urllib.request

import pytest
from mirror_thread import serving

from ollama_claude.claude.facts import integrity_sha512_hex
from ollama_claude.lab import mirror, releases
from ollama_claude.lab.standin_server import free_port
from ollama_claude.mirror import server as mirror_server
from ollama_claude.mirror.sync import MirrorSyncError, sync, wanted_archives

VERSION = "0.32.15"
RELEASE = f"ollama/releases/download/v{VERSION}"
X64_TGZ = f"npm/@anthropic-ai/claude-code-linux-x64/-/claude-code-linux-x64-{releases.CLAUDE_CODE_VERSION}.tgz"


@pytest.fixture(scope="module")
def upstream_root(tmp_path_factory):
    return mirror.build_mirror(tmp_path_factory.mktemp("upstream"), (VERSION,), claude_code_platforms=("linux-x64",))


@pytest.fixture(scope="module")
def upstream(upstream_root):
    with serving(upstream_root) as url:
        yield url


@pytest.fixture
def faults(upstream_root):
    yield lambda **kinds: mirror.write_faults(upstream_root, **kinds)
    mirror.write_faults(upstream_root)


def run_sync(dest, upstream, arches=("amd64",), rocm=False, darwin=False):
    return sync(dest, f"{upstream}/ollama/releases/download", [VERSION], list(arches), rocm,
                f"{upstream}/npm", releases.CLAUDE_CODE_VERSION, ["linux-x64"], log=lambda _: None, darwin=darwin)


def test_sync_fetches_the_fleets_files_verified_into_the_mirror_layout(tmp_path, upstream, upstream_root):
    report = run_sync(tmp_path, upstream, rocm=True)
    release = tmp_path / RELEASE
    assert sorted(p.name for p in release.iterdir()) == [
        "ollama-linux-amd64-rocm.tar.zst", "ollama-linux-amd64.tar.zst", "sha256sum.txt",
    ]
    assert subprocess.run(["sha256sum", "-c", "--ignore-missing", "sha256sum.txt"], cwd=release,
                          capture_output=True, check=False).returncode == 0
    assert (tmp_path / X64_TGZ).read_bytes() == (upstream_root / X64_TGZ).read_bytes()
    assert len(report.fetched) == 3 and report.bytes_fetched > 0


def test_sync_takes_only_what_each_arch_and_gpu_needs(tmp_path, upstream, upstream_root):
    run_sync(tmp_path, upstream, arches=("amd64", "arm64"), darwin=True)
    release = tmp_path / RELEASE
    assert sorted(p.name for p in release.iterdir()) == [
        "Ollama-darwin.zip", "ollama-linux-amd64.tar.zst", "ollama-linux-arm64.tar.zst", "sha256sum.txt",
    ]
    for name in ("Ollama-darwin.zip", "ollama-linux-arm64.tar.zst"):
        assert (release / name).read_bytes() == (upstream_root / RELEASE / name).read_bytes()
    # the upstream's sums file as published, so a host checks its archive against upstream's own line
    assert (release / "sha256sum.txt").read_bytes() == (upstream_root / RELEASE / "sha256sum.txt").read_bytes()
    fetched = {entry["path"].rsplit("/", 1)[1] for entry in mirror_server.requests(upstream_root)}
    assert not any(name.endswith(".tgz") and name.startswith("ollama-") for name in fetched), fetched


def test_a_release_with_only_linux_tgz_names_the_reason():
    sums = {"ollama-linux-amd64.tgz": "a" * 64, "ollama-darwin.tgz": "b" * 64}
    with pytest.raises(MirrorSyncError, match=r"lists no ollama-linux-amd64\.tar\.zst; .*before 0\.14\.0"):
        wanted_archives(sums, ["amd64"], False, "http://up/v0.13.5/sha256sum.txt")
    with pytest.raises(MirrorSyncError, match=r"lists no Ollama-darwin\.zip; check"):
        wanted_archives({"ollama-linux-amd64.tar.zst": "c" * 64}, ["amd64"], False, "u", darwin=True)


def test_resync_fetches_no_archive_again(tmp_path, upstream, upstream_root):
    run_sync(tmp_path, upstream)
    before = len(mirror_server.requests(upstream_root))
    report = run_sync(tmp_path, upstream)
    assert report.fetched == [] and report.bytes_fetched == 0 and len(report.kept) == 2
    fetched_paths = {entry["path"] for entry in mirror_server.requests(upstream_root)[before:]}
    assert not any(path.endswith((".tgz", ".tar.zst")) for path in fetched_paths), fetched_paths


def test_corrupted_upstream_archive_is_refused_naming_url_and_sums(tmp_path, upstream, upstream_root, faults):
    faults(corrupt=[f"{RELEASE}/ollama-linux-amd64.tar.zst"])
    expected = hashlib.sha256((upstream_root / RELEASE / "ollama-linux-amd64.tar.zst").read_bytes()).hexdigest()
    with pytest.raises(MirrorSyncError) as error:
        run_sync(tmp_path, upstream)
    message = str(error.value)
    assert f"{upstream}/{RELEASE}/ollama-linux-amd64.tar.zst" in message
    assert f"expected {expected}, got " in message
    assert not (tmp_path / RELEASE / "ollama-linux-amd64.tar.zst").exists()
    assert not any(p.name.startswith(".") for p in (tmp_path / RELEASE).iterdir())


def test_corrupted_claude_code_tarball_is_refused_by_its_sha512(tmp_path, upstream, faults):
    faults(corrupt=[X64_TGZ])
    with pytest.raises(MirrorSyncError, match=r"sha512 mismatch for .*claude-code-linux-x64-" + re.escape(releases.CLAUDE_CODE_VERSION) + r"\.tgz"):
        run_sync(tmp_path, upstream)
    assert not (tmp_path / X64_TGZ).exists()


def test_tampered_local_file_is_fetched_again(tmp_path, upstream, upstream_root):
    run_sync(tmp_path, upstream)
    local = tmp_path / RELEASE / "ollama-linux-amd64.tar.zst"
    local.write_bytes(b"tampered")
    report = run_sync(tmp_path, upstream)
    assert report.fetched == [str(local)]
    assert local.read_bytes() == (upstream_root / RELEASE / "ollama-linux-amd64.tar.zst").read_bytes()


def test_unpublished_arch_names_the_sums_url(tmp_path, upstream_root):
    only_amd64 = releases.build_ollama_release(tmp_path / "up", "0.18.0", arches=("amd64",))
    with serving(tmp_path / "up") as url:
        base = f"{url}/ollama/releases/download"
        with pytest.raises(MirrorSyncError,
                           match=r"v0\.18\.0/sha256sum\.txt lists no ollama-linux-arm64\.tar\.zst; check"):
            sync(tmp_path / "dest", base, ["0.18.0"], ["arm64"], False, None, None, [], log=lambda _: None)
    assert only_amd64.is_dir()


def test_cli_sync_then_serve_answers_like_upstream(tmp_path, upstream, upstream_root):
    cli = [sys.executable, "-m", "ollama_claude.cli", "mirror"]
    synced = subprocess.run([*cli, "sync", "--dest", str(tmp_path), "--ollama-version", VERSION,
                             "--ollama-url", f"{upstream}/ollama/releases/download",
                             "--registry", f"{upstream}/npm"], capture_output=True, text=True, check=False)
    assert synced.returncode == 0, synced.stderr
    port = free_port()
    server = subprocess.Popen([*cli, "serve", "--root", str(tmp_path), "--port", str(port)],
                              stdout=subprocess.PIPE, text=True)
    try:
        assert server.stdout.readline().startswith(f"serving {tmp_path} on http://127.0.0.1:{port}/")
        base = f"http://127.0.0.1:{port}"
        with urllib.request.urlopen(f"{base}/{RELEASE}/sha256sum.txt", timeout=10) as response:
            assert response.read() == (upstream_root / RELEASE / "sha256sum.txt").read_bytes()
        with urllib.request.urlopen(f"{base}/npm/@anthropic-ai/claude-code-linux-x64/{releases.CLAUDE_CODE_VERSION}", timeout=10) as r:
            dist = json.load(r)["dist"]
        assert dist["tarball"] == f"{base}/{X64_TGZ}"
        with urllib.request.urlopen(dist["tarball"], timeout=10) as response:
            assert hashlib.sha512(response.read()).hexdigest() == integrity_sha512_hex(dist["integrity"])
    finally:
        server.terminate()
        server.wait(timeout=10)


def test_cli_sync_failure_is_one_line_on_stderr(tmp_path):
    port = free_port()
    done = subprocess.run([sys.executable, "-m", "ollama_claude.cli", "mirror", "sync", "--dest", str(tmp_path),
                           "--ollama-url", f"http://127.0.0.1:{port}", "--no-claude-code"],
                          capture_output=True, text=True, check=False, timeout=60)
    assert done.returncode == 1
    assert done.stderr.startswith(f"ollama-claude mirror sync: cannot fetch http://127.0.0.1:{port}/v")
