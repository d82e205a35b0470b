"""Release artifacts and the lab mirror: real archive names and layout, checksums, faults, Range, npm tree."""

import hashlib
import io
import json
import os
import re
import shutil
import subprocess
import sys
import tarfile
import time
import urllib.error
import urllib.request
import zipfile

import pytest
from mirror_thread import serving

from ollama_claude.lab import mirror, releases
from ollama_claude.lab.standin_server import baked_standin, free_port
from ollama_claude.mirror import layout
from ollama_claude.mirror import server as mirror_server

VERSIONS = releases.OLLAMA_VERSIONS
AMD64_ZST = "ollama/releases/download/v0.16.3/ollama-linux-amd64.tar.zst"
COMMON = {
    "ollama-linux-amd64.tar.zst",
    "ollama-linux-arm64.tar.zst",
    "ollama-linux-amd64-rocm.tar.zst",
    "ollama-linux-arm64-jetpack5.tar.zst",
    "ollama-linux-arm64-jetpack6.tar.zst",
    "Ollama-darwin.zip",
    "ollama-darwin.tgz",
    "Ollama.dmg",
    "OllamaSetup.exe",
    "install.ps1",
    "install.sh",
    "ollama-windows-amd64.zip",
    "ollama-windows-amd64-rocm.zip",
    "ollama-windows-arm64.zip",
}
# What each real release publishes (besides sha256sum.txt), written out rather than derived from the tables.
EXPECTED = {
    "0.16.3": COMMON,
    "0.18.0": COMMON | {"ollama-windows-amd64-mlx.zip"},
    "0.32.15": COMMON | {"ollama-windows-amd64-mlx.zip", "ollama-linux-amd64-mlx.tar.zst"},
}
SUM_LINE = re.compile(r"[0-9a-f]{64}  \./[A-Za-z0-9._-]+")


@pytest.fixture(scope="module")
def root(tmp_path_factory):
    return mirror.build_mirror(tmp_path_factory.mktemp("mirror"), VERSIONS, claude_code_version=None, release_size=0)


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


def tar_zst_members(path) -> list[tarfile.TarInfo]:
    data = subprocess.run(["zstd", "-dc", path], capture_output=True, check=True).stdout
    with tarfile.open(fileobj=io.BytesIO(data)) as tar:
        return tar.getmembers()


def archive_members(path):
    return [m.name + ("/" if m.isdir() else "") for m in tar_zst_members(path)]


def release(root, version):
    return layout.ollama_release_dir(root, version)


@pytest.mark.parametrize("version", VERSIONS)
def test_release_publishes_exactly_the_real_files_each_in_sha256sum(root, version):
    directory = release(root, version)
    assert {p.name for p in directory.iterdir() if not p.name.startswith(".")} == EXPECTED[version] | {
        "sha256sum.txt"
    }
    assert set(releases.release_artifact_names(version)) == EXPECTED[version]
    assert not [p for p in directory.iterdir() if p.name.startswith("ollama-linux-") and p.name.endswith(".tgz")]
    lines = (directory / "sha256sum.txt").read_text().splitlines()
    assert all(SUM_LINE.fullmatch(line) for line in lines), lines
    sums = {line.split("  ./")[1]: line.split()[0] for line in lines}
    assert set(sums) == EXPECTED[version]
    for name, digest in sums.items():
        assert hashlib.sha256((directory / name).read_bytes()).hexdigest() == digest, name
    assert sha256sum_check(directory).returncode == 0


@pytest.mark.parametrize("version", VERSIONS)
def test_linux_members_are_bare_paths_owned_by_root(root, version):
    for archive in release(root, version).glob("ollama-linux-*.tar.zst"):
        members = tar_zst_members(archive)
        assert members, archive
        for member in members:
            assert not member.name.startswith(("./", "/")), (archive.name, member.name)
            assert (member.uid, member.gid, member.uname, member.gname) == (0, 0, "root", "root")
            assert member.name.startswith(("bin/ollama", "lib/ollama/")), member.name
        # tar -T lists components, so the parents bin/, lib/ and lib/ollama/ get no entries of their own
        assert not {"bin", "lib", "lib/ollama"} & {m.name for m in members}


def test_main_archive_contents_by_version(root):
    main = {v: archive_members(release(root, v) / "ollama-linux-amd64.tar.zst") for v in VERSIONS}
    for version, members in main.items():
        assert members[0] == "bin/ollama"
        assert {"lib/ollama/cuda_v12/libggml-cuda.so", "lib/ollama/cuda_v13/libggml-cuda.so",
                "lib/ollama/vulkan/libggml-vulkan.so", "lib/ollama/libggml-base.so"} <= set(members)
        new_in_030 = {"lib/ollama/llama-server", "lib/ollama/llama-quantize", "lib/ollama/libllama.so",
                      "lib/ollama/libmtmd.so"}
        assert (new_in_030 <= set(members)) == (version == "0.32.15"), version
        assert not new_in_030 & set(members) or version == "0.32.15"
        # MLX sits in the main archive until it gets its own from 0.23.1
        assert ("lib/ollama/mlx_cuda_v13/libmlx.so" in members) == (version != "0.32.15")
    arm64 = archive_members(release(root, "0.32.15") / "ollama-linux-arm64.tar.zst")
    assert "lib/ollama/llama-server" in arm64 and not [m for m in arm64 if "vulkan" in m or "mlx" in m]
    mlx = archive_members(release(root, "0.32.15") / "ollama-linux-amd64-mlx.tar.zst")
    assert "lib/ollama/mlx_cuda_v13/libmlx.so" in mlx and "lib/ollama/include/" in mlx
    assert "bin/ollama" not in mlx


def test_rocm_runners_move_to_rocm_v7_2_in_030(root):
    for version, directory in (("0.16.3", "rocm"), ("0.18.0", "rocm"), ("0.32.15", "rocm_v7_2")):
        members = archive_members(release(root, version) / "ollama-linux-amd64-rocm.tar.zst")
        assert members[0] == f"lib/ollama/{directory}/"
        assert all(m.startswith(f"lib/ollama/{directory}/") for m in members), members
        assert f"lib/ollama/{directory}/libggml-hip.so" in members
    for jetpack in ("5", "6"):
        members = archive_members(release(root, "0.18.0") / f"ollama-linux-arm64-jetpack{jetpack}.tar.zst")
        assert members == [f"lib/ollama/cuda_jetpack{jetpack}/", f"lib/ollama/cuda_jetpack{jetpack}/libggml-cuda.so"]


def test_linux_archive_runs_the_baked_standin(root, tmp_path):
    directory = release(root, "0.16.3")
    subprocess.run(f"zstd -dc {directory / 'ollama-linux-arm64.tar.zst'} | tar -xf - -C {tmp_path}", shell=True,
                   check=True)
    version = subprocess.run(
        [tmp_path / "bin/ollama", "-v"],
        env={"OLLAMA_HOST": f"127.0.0.1:{free_port()}"},
        check=True,
        capture_output=True,
        text=True,
    )
    assert version.stdout.splitlines()[-1] == "Warning: client version is 0.16.3"
    assert (tmp_path / "bin/ollama").stat().st_mode & 0o111


@pytest.mark.parametrize("version", VERSIONS)
def test_darwin_zip_is_the_app_as_ditto_keeps_its_parent(root, version, tmp_path):
    path = release(root, version) / "Ollama-darwin.zip"
    with zipfile.ZipFile(path) as archive:
        names = archive.namelist()
        assert names[0] == "Ollama.app/" and all(n.startswith("Ollama.app/") for n in names)
        resources = "Ollama.app/Contents/Resources/"
        assert archive.read(resources + "ollama").decode() == baked_standin(version)
        assert (archive.getinfo(resources + "ollama").external_attr >> 16) & 0o111
        assert f"<string>{version}</string>" in archive.read("Ollama.app/Contents/Info.plist").decode()
        since_030 = {resources + "llama-server", resources + "llama-quantize", resources + "mlx_metal_v3/"}
        assert (since_030 <= set(names)) == (version == "0.32.15")
    subprocess.run(["unzip", "-q", path, "-d", tmp_path], check=True)
    assert os.access(tmp_path / "Ollama.app/Contents/Resources/ollama", os.X_OK)
    with tarfile.open(release(root, version) / "ollama-darwin.tgz") as tar:
        members = tar.getnames()
        assert members[0] == "ollama" and tar.extractfile("ollama").read().decode() == baked_standin(version)
        assert ("llama-server" in members and "mlx_metal_v3/mlx.metallib" in members) == (version == "0.32.15")


def test_install_sh_is_ours_models_the_real_one_and_installs_the_tar_zst(root):
    script = (release(root, "0.32.15") / "install.sh").read_text()
    assert script == (release(root, "0.16.3") / "install.sh").read_text()  # the real one is unchanged too
    assert subprocess.run(["sh", "-n"], input=script, text=True, check=False).returncode == 0
    assert "NOT Ollama's script" in script and "scripts/install.sh@v0.32.15" in script
    assert "ollama-linux-${ARCH}.tar.zst" in script and ".tgz" not in script.split("main() {")[1]
    assert "useradd -r -s /bin/false -U -m -d /usr/share/ollama ollama" in script
    assert "ExecStart=$BINDIR/ollama serve" in script and "systemctl enable ollama" in script
    assert "github.com" not in script


def test_install_sh_needs_zstd_and_a_download_url(root, tmp_path):
    script = release(root, "0.32.15") / "install.sh"
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    for tool in ("sh", "uname", "id", "curl", "tar", "dirname", "grep", "echo"):
        found = shutil.which(tool)
        if found:
            (bin_dir / tool).symlink_to(found)
    env = {"PATH": str(bin_dir)}
    missing_url = subprocess.run(["sh", script], env=env, capture_output=True, text=True, check=False)
    assert missing_url.returncode != 0 and "OLLAMA_DOWNLOAD_URL" in missing_url.stderr
    if subprocess.run(["id", "-u"], capture_output=True, text=True, check=True).stdout.strip() == "0":
        no_zstd = subprocess.run(["sh", script], env={**env, "OLLAMA_DOWNLOAD_URL": "http://127.0.0.1:9/x"},
                                 capture_output=True, text=True, check=False)
        assert no_zstd.returncode == 1 and "requires zstd" in no_zstd.stdout


def test_rebuild_is_idempotent_and_deterministic(root, tmp_path):
    archive = root / AMD64_ZST
    before = archive.stat().st_mtime_ns
    mirror.build_mirror(root, VERSIONS, claude_code_version=None)
    assert archive.stat().st_mtime_ns == before
    fresh = releases.build_ollama_release(tmp_path, "0.16.3")
    assert (fresh / "sha256sum.txt").read_bytes() == (archive.parent / "sha256sum.txt").read_bytes()


def test_download_verifies_and_a_corrupted_one_does_not(root, base_url, faults, tmp_path):
    release = layout.ollama_release_dir(root, "0.16.3")
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

    data = (release / "ollama-linux-amd64.tar.zst").read_bytes()
    middle = len(data) // 2
    assert body[:middle] == data[:middle] and body[middle + 16 :] == data[middle + 16 :]
    assert body[middle : middle + 16] == bytes(b ^ 0xFF for b in data[middle : middle + 16])
    ranged = fetch(f"{base_url}/{AMD64_ZST}", {"Range": f"bytes={middle - 3}-{middle + 3}"})[2]
    assert ranged == body[middle - 3 : middle + 4]

    faults(truncate=[AMD64_ZST])
    assert fetch(f"{base_url}/{AMD64_ZST}")[2] == data[: len(data) // 2]
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


@pytest.fixture
def cache(tmp_path, monkeypatch):
    monkeypatch.setenv("OLLAMA_CLAUDE_CACHE", str(tmp_path / "cache"))
    monkeypatch.delenv(releases.RELEASE_SIZE_ENV, raising=False)
    return tmp_path / "cache"


def test_padding_makes_the_main_archives_exactly_the_size_asked_and_valid(cache, tmp_path):
    size = 3_000_000
    directory = releases.build_ollama_release(tmp_path / "mirror", "0.32.15", release_size=size)
    for arch in releases.OLLAMA_ARCHES:
        archive = directory / f"ollama-linux-{arch}.tar.zst"
        assert archive.stat().st_size == size
        assert subprocess.run(["zstd", "-tq", archive], check=False).returncode == 0
        members = {m.name: m for m in tar_zst_members(archive)}
        padded = members[releases.PADDED_MEMBER]
        assert padded.size > size - 40_000 and padded.uid == 0  # the rest: the other members, at -19
        assert members["bin/ollama"].size == len(baked_standin("0.32.15").encode())
        assert archive.stat().st_nlink == 2  # linked from the cache, where it is built once
    assert (directory / "ollama-linux-amd64-rocm.tar.zst").stat().st_size < 10_000  # add-ons stay small
    assert sha256sum_check(directory).returncode == 0
    # The padding does not compress: it is random, not zeros.
    assert len(_zstd_fast(tar_member_bytes(directory / "ollama-linux-amd64.tar.zst"))) > size * 0.99
    built = sorted(cache.glob("ollama-releases/*.tar.zst"))
    stamps = [p.stat().st_mtime_ns for p in built]
    again = releases.build_ollama_release(tmp_path / "other", "0.32.15", release_size=size)
    assert [p.stat().st_mtime_ns for p in built] == stamps
    assert (again / "sha256sum.txt").read_text() == (directory / "sha256sum.txt").read_text()


def test_padding_is_deterministic_and_a_too_small_size_keeps_the_natural_archive(cache, tmp_path):
    first = releases.padded_archive("0.18.0", "arm64", 2_000_001)
    digest = first[1]
    shutil.rmtree(cache)
    assert releases.padded_archive("0.18.0", "arm64", 2_000_001)[1] == digest
    assert releases.padded_archive("0.18.0", "arm64", 1000) is None
    small = releases.build_ollama_release(tmp_path, "0.18.0", release_size=1000)
    assert (small / "ollama-linux-arm64.tar.zst").read_bytes() == releases.linux_archive("0.18.0", "arm64")


def test_mirror_remembers_its_release_size(cache, tmp_path, monkeypatch):
    root = tmp_path / "mirror"
    mirror.build_mirror(root, ("0.18.0",), claude_code_version=None, release_size=2_500_000)
    archive = layout.ollama_release_dir(root, "0.18.0") / "ollama-linux-amd64.tar.zst"
    assert archive.stat().st_size == 2_500_000
    mirror.build_mirror(root, ("0.18.0",), claude_code_version=None)  # a later plain build keeps the size
    assert archive.stat().st_size == 2_500_000
    monkeypatch.setenv(releases.RELEASE_SIZE_ENV, "0")
    mirror.build_mirror(root, ("0.18.0",), claude_code_version=None)
    assert archive.stat().st_size < 100_000


@pytest.mark.parametrize(
    ("text", "size"),
    [("1200000000", 1_200_000_000), ("1.2G", 1_200_000_000), ("800M", 800_000_000), ("512Ki", 524_288),
     ("1GiB", 1 << 30), ("", 0)],
)
def test_parse_size(text, size):
    assert releases.parse_size(text) == size


def test_parse_size_refuses_nonsense():
    with pytest.raises(ValueError, match="not a size"):
        releases.parse_size("big")


def tar_member_bytes(archive) -> bytes:
    data = subprocess.run(["zstd", "-dc", archive], capture_output=True, check=True).stdout
    with tarfile.open(fileobj=io.BytesIO(data)) as tar:
        return tar.extractfile(releases.PADDED_MEMBER).read()


def _zstd_fast(data: bytes) -> bytes:
    return subprocess.run(["zstd", "-q", "-c", "-3"], input=data, capture_output=True, check=True).stdout


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
        logged = [r for r in mirror_server.requests(root) if r["path"] == path]
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
        assert dist["tarball"] == f"{base}/npm/{package}/-/claude-code-linux-x64-{releases.CLAUDE_CODE_VERSION}.tgz"
        tarball = releases.claude_code_tarball()
        assert (dist["integrity"], dist["shasum"]) == layout.npm_integrity(tarball.read_bytes())
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
        assert any(r["path"].endswith(".tgz") for r in mirror_server.requests(root)), (
            "npm fetched the tarball from us"
        )



@pytest.mark.claude
def test_claude_cli_path_is_the_pinned_native_binary():
    claude = releases.claude_cli_path()
    version = subprocess.run([claude, "--version"], capture_output=True, text=True, timeout=60, check=True)
    assert version.stdout.startswith(releases.CLAUDE_CODE_VERSION)
