"""Release artifacts and the lab mirror: real archive names and layout, checksums, faults, Range, npm tree."""

import hashlib
import json
import subprocess
import sys
import time
import urllib.error
import urllib.request

import pytest
from mirror_thread import serving

from ollama_claude.lab import mirror, releases
from ollama_claude.lab.standin_server import free_port

VERSIONS = ("0.14.3", "0.16.3")
ARCHIVES = {
    "ollama-linux-amd64.tar.zst",
    "ollama-linux-amd64.tgz",
    "ollama-linux-amd64-rocm.tar.zst",
    "ollama-linux-arm64.tar.zst",
    "ollama-linux-arm64.tgz",
}
AMD64_ZST = "ollama/releases/download/v0.16.3/ollama-linux-amd64.tar.zst"


@pytest.fixture(scope="module")
def root(tmp_path_factory):
    return mirror.build_mirror(tmp_path_factory.mktemp("mirror"), VERSIONS, claude_code_version=None)


@pytest.fixture(scope="module")
def base_url(root):
    with serving(root) as url:
        yield url


@pytest.fixture
def faults(root):
    yield lambda **kinds: mirror.write_faults(root, **kinds)
    mirror.write_faults(root)


def fetch(url, headers=None, method="GET"):
    """(status, headers, body) without raising on HTTP errors."""
    request = urllib.request.Request(url, headers=headers or {}, method=method)
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return response.status, response.headers, response.read()
    except urllib.error.HTTPError as error:
        return error.code, error.headers, error.read()


def sha256sum_check(directory):
    return subprocess.run(
        ["sha256sum", "-c", "sha256sum.txt"], cwd=directory, capture_output=True, text=True, check=False
    )


def archive_members(path):
    listing = subprocess.run(
        f"zstd -dc {path} | tar -t", shell=True, capture_output=True, text=True, check=True
    )
    return listing.stdout.split()


def test_release_layout_and_checksums(root):
    for version in VERSIONS:
        directory = releases.ollama_release_dir(root, version)
        assert {p.name for p in directory.iterdir() if not p.name.startswith(".")} == ARCHIVES | {
            "sha256sum.txt"
        }
        lines = (directory / "sha256sum.txt").read_text().splitlines()
        assert all(line.split("  ")[1].startswith("./ollama-linux-") for line in lines)
        assert len(lines) == len(ARCHIVES)
        assert sha256sum_check(directory).returncode == 0


def test_archives_hold_bin_ollama_with_baked_version_and_runners(root, tmp_path):
    directory = releases.ollama_release_dir(root, "0.14.3")
    members = archive_members(directory / "ollama-linux-amd64.tar.zst")
    assert "./bin/ollama" in members and "./lib/ollama/cuda_v12/libggml-cuda.so" in members
    rocm = archive_members(directory / "ollama-linux-amd64-rocm.tar.zst")
    assert "./bin/ollama" not in rocm and "./lib/ollama/rocm/libggml-hip.so" in rocm
    subprocess.run(["tar", "-xzf", directory / "ollama-linux-arm64.tgz", "-C", tmp_path], check=True)
    version = subprocess.run(
        [tmp_path / "bin/ollama", "-v"],
        env={"OLLAMA_HOST": f"127.0.0.1:{free_port()}"},
        check=True,
        capture_output=True,
        text=True,
    )
    assert version.stdout.splitlines()[-1] == "Warning: client version is 0.14.3"
    assert (tmp_path / "bin/ollama").stat().st_mode & 0o111


def test_rebuild_is_idempotent_and_deterministic(root, tmp_path):
    archive = root / AMD64_ZST
    before = archive.stat().st_mtime_ns
    mirror.build_mirror(root, VERSIONS, claude_code_version=None)
    assert archive.stat().st_mtime_ns == before
    fresh = releases.build_ollama_release(tmp_path, "0.16.3")
    assert (fresh / "sha256sum.txt").read_bytes() == (archive.parent / "sha256sum.txt").read_bytes()


def test_download_verifies_and_a_corrupted_one_does_not(root, base_url, faults, tmp_path):
    release = releases.ollama_release_dir(root, "0.16.3")
    for name in ("sha256sum.txt", "ollama-linux-amd64.tar.zst"):
        status, _, body = fetch(f"{base_url}/{AMD64_ZST.rsplit('/', 1)[0]}/{name}")
        assert status == 200
        (tmp_path / name).write_bytes(body)
    expected = [
        line for line in (tmp_path / "sha256sum.txt").read_text().splitlines() if "amd64.tar.zst" in line
    ]
    (tmp_path / "sha256sum.txt").write_text("\n".join(expected) + "\n")
    assert sha256sum_check(tmp_path).returncode == 0

    faults(corrupt=[AMD64_ZST])
    status, headers, body = fetch(f"{base_url}/{AMD64_ZST}")
    assert (
        status == 200
        and len(body)
        == int(headers["Content-Length"])
        == (release / "ollama-linux-amd64.tar.zst").stat().st_size
    )
    (tmp_path / "ollama-linux-amd64.tar.zst").write_bytes(body)
    check = sha256sum_check(tmp_path)
    assert check.returncode == 1 and "FAILED" in check.stdout

    faults(truncate=[AMD64_ZST])
    assert len(fetch(f"{base_url}/{AMD64_ZST}")[2]) == len(body) // 2
    faults(missing=[AMD64_ZST])
    assert fetch(f"{base_url}/{AMD64_ZST}")[0] == 404
    faults()
    assert hashlib.sha256(fetch(f"{base_url}/{AMD64_ZST}")[2]).hexdigest() in expected[0]


def test_head_range_and_not_found(root, base_url):
    data = (root / AMD64_ZST).read_bytes()
    status, headers, body = fetch(f"{base_url}/{AMD64_ZST}", method="HEAD")
    assert (status, body, int(headers["Content-Length"])) == (200, b"", len(data))
    assert headers["Accept-Ranges"] == "bytes"
    status, headers, body = fetch(f"{base_url}/{AMD64_ZST}", {"Range": "bytes=10-19"})
    assert (status, body, headers["Content-Range"]) == (206, data[10:20], f"bytes 10-19/{len(data)}")
    assert fetch(f"{base_url}/{AMD64_ZST}", {"Range": "bytes=100-"})[2] == data[100:]
    assert fetch(f"{base_url}/{AMD64_ZST}", {"Range": f"bytes={len(data)}-"})[0] == 416
    assert fetch(f"{base_url}/ollama/releases/download/v9.9.9/x.tgz")[0] == 404
    assert fetch(f"{base_url}/.faults.json")[0] == 404
    assert fetch(f"{base_url}/ollama/../.requests.jsonl")[0] == 404


def test_curl_resumes_a_partial_download(root, base_url, tmp_path):
    data = (root / AMD64_ZST).read_bytes()
    partial = tmp_path / "archive"
    partial.write_bytes(data[:1000])
    subprocess.run(["curl", "-fsS", "-C", "-", "-o", partial, f"{base_url}/{AMD64_ZST}"], check=True)
    assert partial.read_bytes() == data


def settled_requests(root, path: str) -> list[dict]:
    """The log's records for path once it stops growing: a request is logged just after its response is sent."""
    seen = -1
    while True:
        logged = [r for r in mirror.requests(root) if r["path"] == path]
        if len(logged) == seen:
            return logged
        seen = len(logged)
        time.sleep(0.2)


def test_request_log_counts_downloads(root, base_url):
    before = len(settled_requests(root, f"/{AMD64_ZST}"))
    fetch(f"{base_url}/{AMD64_ZST}")
    fetch(f"{base_url}/{AMD64_ZST}", method="HEAD")
    logged = settled_requests(root, f"/{AMD64_ZST}")
    assert len(logged) == before + 2
    # Each request is logged once its response is sent, so the two lines may land in either order.
    latest = {r["method"]: r for r in logged[-2:]}
    assert (latest["GET"]["status"], latest["HEAD"]["status"]) == (200, 200)
    assert latest["GET"]["bytes"] == (root / AMD64_ZST).stat().st_size and latest["HEAD"]["bytes"] == 0


def test_cli_serves_only_on_the_given_address(root):
    port = free_port()
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "ollama_claude.lab.mirror",
            "serve",
            "--root",
            root,
            "--no-claude-code",
            "--ollama-version",
            "0.16.3",
            "--bind",
            "127.0.0.1",
            "--port",
            str(port),
        ],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert process.stdout.readline().strip() == f"serving {root} on http://127.0.0.1:{port}/"
        assert fetch(f"http://127.0.0.1:{port}/{AMD64_ZST}", method="HEAD")[0] == 200
        listening = subprocess.run(
            ["ss", "-Htln", f"sport = :{port}"], capture_output=True, text=True, check=True
        ).stdout
        assert listening.split()[3] == f"127.0.0.1:{port}"
    finally:
        process.terminate()
        process.wait()


@pytest.mark.claude
def test_npm_tree_is_usable_by_the_npm_client(tmp_path):
    root = mirror.build_mirror(tmp_path / "mirror", (), claude_code_platforms=("linux-x64",))
    with serving(root) as base:
        package = releases.claude_code_package("linux-x64")
        status, _, body = fetch(f"{base}/npm/{package.replace('/', '%2f')}")
        packument = json.loads(body)
        dist = packument["versions"][releases.CLAUDE_CODE_VERSION]["dist"]
        assert status == 200 and packument["dist-tags"]["latest"] == releases.CLAUDE_CODE_VERSION
        assert dist["tarball"] == f"{base}/npm/{package}/-/claude-code-linux-x64-2.1.197.tgz"
        tarball = releases.claude_code_tarball()
        assert (dist["integrity"], dist["shasum"]) == releases.npm_integrity(tarball.read_bytes())
        packed = subprocess.run(
            [
                "npm",
                "pack",
                f"{package}@{releases.CLAUDE_CODE_VERSION}",
                "--registry",
                f"{base}/npm/",
                "--cache",
                tmp_path / "npm-cache",
                "--pack-destination",
                tmp_path,
                "--json",
            ],
            check=False,
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert packed.returncode == 0, packed.stderr
        assert json.loads(packed.stdout)[0]["integrity"] == dist["integrity"]
        assert any(r["path"].endswith(".tgz") for r in mirror.requests(root)), (
            "npm fetched the tarball from us"
        )



@pytest.mark.claude
def test_claude_cli_path_is_the_pinned_native_binary():
    claude = releases.claude_cli_path()
    version = subprocess.run([claude, "--version"], capture_output=True, text=True, timeout=60, check=True)
    assert version.stdout.startswith(releases.CLAUDE_CODE_VERSION)
