"""Release-shaped artifacts for the lab mirror: Ollama archives carrying the stand-in, and Claude Code's
native package laid out like the npm registry, so the real deploy runs offline against them unchanged."""

from __future__ import annotations

import base64
import gzip
import hashlib
import io
import json
import os
import platform
import shutil
import subprocess
import tarfile
import tempfile
from pathlib import Path

from ollama_claude.lab.standin_server import baked_standin

OLLAMA_VERSIONS = ("0.14.3", "0.15.2", "0.16.3")
OLLAMA_ARCHES = ("amd64", "arm64")
CLAUDE_CODE_VERSION = "2.1.197"
CLAUDE_CODE_PLATFORMS = ("linux-x64", "linux-arm64")
CLAUDE_CODE_SCOPE = "@anthropic-ai"

# Runner libraries the real archives carry (names from the release job), as placeholders.
RUNNER_FILES = {
    "amd64": (
        "lib/ollama/libggml-base.so",
        "lib/ollama/libggml-cpu-haswell.so",
        "lib/ollama/libggml-cpu-skylakex.so",
        "lib/ollama/libggml-cpu-x64.so",
        "lib/ollama/cuda_v12/libggml-cuda.so",
        "lib/ollama/cuda_v13/libggml-cuda.so",
        "lib/ollama/vulkan/libggml-vulkan.so",
    ),
    "arm64": (
        "lib/ollama/libggml-base.so",
        "lib/ollama/libggml-cpu-armv8.0_1.so",
        "lib/ollama/cuda_v12/libggml-cuda.so",
    ),
    "rocm": (
        "lib/ollama/rocm/libggml-hip.so",
        "lib/ollama/rocm/libhipblas.so.2",
        "lib/ollama/rocm/librocblas.so.4",
    ),
}
ARCHIVE_MTIME = 1_700_000_000  # fixed, so rebuilt archives are byte-identical


def cache_dir() -> Path:
    return Path(os.environ.get("OLLAMA_CLAUDE_CACHE") or Path.home() / ".cache" / "ollama-claude")


def ollama_release_dir(root: Path, version: str) -> Path:
    """Where the GitHub-shaped URL `<mirror>/ollama/releases/download/v<version>/` is served from."""
    return root / "ollama" / "releases" / "download" / f"v{version}"


# ----------------------------------------------------------------------------------------------- Ollama


def _tar_bytes(files: dict[str, tuple[bytes, int]]) -> bytes:
    """An uncompressed tar of `./`-relative entries (as `tar -C dist/linux-<arch> .` writes), deterministic."""
    buffer = io.BytesIO()
    directories = sorted(
        {"/".join(path.split("/")[:depth]) for path in files for depth in range(1, path.count("/") + 1)}
    )
    with tarfile.open(fileobj=buffer, mode="w", format=tarfile.GNU_FORMAT) as tar:
        for name in ["", *directories]:
            info = tarfile.TarInfo(f"./{name}/" if name else "./")
            info.type, info.mode, info.mtime = tarfile.DIRTYPE, 0o755, ARCHIVE_MTIME
            tar.addfile(info)
        for name in sorted(files):
            data, mode = files[name]
            info = tarfile.TarInfo(f"./{name}")
            info.size, info.mode, info.mtime = len(data), mode, ARCHIVE_MTIME
            tar.addfile(info, io.BytesIO(data))
    return buffer.getvalue()


def _zstd(data: bytes) -> bytes:
    return subprocess.run(["zstd", "-q", "-c", "-19"], input=data, capture_output=True, check=True).stdout


def _gzip(data: bytes) -> bytes:
    return gzip.compress(data, mtime=0)


def _archive_contents(version: str, arch: str, flavour: str) -> dict[str, tuple[bytes, int]]:
    """bin/ollama (the stand-in with VERSION baked) plus placeholder runners; the rocm add-on has only runners."""
    runners = RUNNER_FILES["rocm" if flavour == "rocm" else arch]
    files = {
        path: (f"placeholder {Path(path).name} for ollama {version} linux-{arch}\n".encode(), 0o755)
        for path in runners
    }
    if flavour != "rocm":
        files["bin/ollama"] = (baked_standin(version).encode(), 0o755)
    return files


def release_artifacts(version: str, arches: tuple[str, ...] = OLLAMA_ARCHES) -> dict[str, bytes]:
    """Archive file name -> bytes for one release: tar.zst and tgz per arch, and the amd64 rocm add-on."""
    artifacts = {}
    for arch in arches:
        flavours = ("main", "rocm") if arch == "amd64" else ("main",)
        for flavour in flavours:
            tar = _tar_bytes(_archive_contents(version, arch, flavour))
            stem = f"ollama-linux-{arch}" + ("-rocm" if flavour == "rocm" else "")
            artifacts[f"{stem}.tar.zst"] = _zstd(tar)
            if flavour == "main":
                artifacts[f"{stem}.tgz"] = _gzip(tar)
    return artifacts


def sha256sum_text(artifacts: dict[str, bytes]) -> str:
    """sha256sum.txt as the release job writes it (`find . -type f | xargs sha256sum`), sorted for stability."""
    return "".join(
        f"{hashlib.sha256(data).hexdigest()}  ./{name}\n" for name, data in sorted(artifacts.items())
    )


def build_ollama_release(root: Path, version: str, arches: tuple[str, ...] = OLLAMA_ARCHES) -> Path:
    """Write one release under root (skipped when the same stand-in was already packaged there)."""
    target = ollama_release_dir(root, version)
    stamp = target / ".standin-sha256"
    fingerprint = hashlib.sha256(f"{baked_standin(version)}|{arches}|{RUNNER_FILES}".encode()).hexdigest()
    if stamp.is_file() and stamp.read_text() == fingerprint:
        return target
    artifacts = release_artifacts(version, arches)
    target.mkdir(parents=True, exist_ok=True)
    for name, data in artifacts.items():
        _write_atomically(target / name, data)
    _write_atomically(target / "sha256sum.txt", sha256sum_text(artifacts).encode())
    stamp.write_text(fingerprint)
    return target


def _write_atomically(path: Path, data: bytes) -> None:
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_bytes(data)
    os.replace(tmp, path)


# ----------------------------------------------------------------------------------------------- Claude Code


def claude_code_package(platform_name: str) -> str:
    return f"{CLAUDE_CODE_SCOPE}/claude-code-{platform_name}"


def claude_code_tarball(version: str = CLAUDE_CODE_VERSION, platform_name: str = "linux-x64") -> Path:
    """The pinned platform package from `npm pack`, fetched once into the cache."""
    target = cache_dir() / "npm" / f"anthropic-ai-claude-code-{platform_name}-{version}.tgz"
    if target.is_file():
        return target
    target.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=target.parent) as scratch:
        subprocess.run(
            ["npm", "pack", f"{claude_code_package(platform_name)}@{version}", "--pack-destination", scratch],
            check=True,
            capture_output=True,
        )
        (packed,) = Path(scratch).glob("*.tgz")
        os.replace(packed, target)
    return target


def host_platform() -> str:
    """Claude Code's platform name for this machine."""
    return {"x86_64": "linux-x64", "aarch64": "linux-arm64", "arm64": "linux-arm64"}[platform.machine()]


def claude_cli_path(version: str = CLAUDE_CODE_VERSION) -> Path:
    """The native `claude` executable of the pinned version for this machine, unpacked once from the cache."""
    target = cache_dir() / "claude-code" / version / host_platform() / "claude"
    if target.is_file():
        return target
    target.parent.mkdir(parents=True, exist_ok=True)
    with tarfile.open(claude_code_tarball(version, host_platform())) as tar:
        member = tar.extractfile("package/claude")
        tmp = target.with_name(".claude.tmp")
        with open(tmp, "wb") as out:
            shutil.copyfileobj(member, out)
    tmp.chmod(0o755)
    os.replace(tmp, target)
    return target


def npm_integrity(data: bytes) -> tuple[str, str]:
    """(integrity, shasum) as npm records them: sha512 in SRI base64 form, sha1 hex."""
    return "sha512-" + base64.b64encode(hashlib.sha512(data).digest()).decode(), hashlib.sha1(
        data
    ).hexdigest()


def publish_npm_package(root: Path, tarball: Path) -> Path:
    """Lay one package version out like the registry: packument, version document, tarball.

    A path cannot be both the packument and the directory holding `-/`, so documents are stored as
    `index.json` inside the package (and version) directories; the mirror serves a directory by its
    index.json and rewrites the root-relative `dist.tarball` to its own base URL.
    """
    data = tarball.read_bytes()
    with tarfile.open(tarball) as tar:
        manifest = json.load(tar.extractfile("package/package.json"))
    name, version = manifest["name"], manifest["version"]
    unscoped = name.split("/")[-1]
    package_dir = root / "npm" / name
    tarball_rel = f"{name}/-/{unscoped}-{version}.tgz"
    integrity, shasum = npm_integrity(data)
    version_doc = {
        **manifest,
        "_id": f"{name}@{version}",
        "dist": {"tarball": f"/npm/{tarball_rel}", "integrity": integrity, "shasum": shasum},
    }
    (package_dir / "-").mkdir(parents=True, exist_ok=True)
    (package_dir / version).mkdir(exist_ok=True)
    target_tgz = root / "npm" / tarball_rel
    if not target_tgz.is_file() or target_tgz.stat().st_size != len(data):
        _write_atomically(target_tgz, data)
    _write_atomically(package_dir / version / "index.json", json.dumps(version_doc, indent=2).encode())
    packument_path = package_dir / "index.json"
    packument = json.loads(packument_path.read_text()) if packument_path.is_file() else {"versions": {}}
    packument["versions"][version] = version_doc
    newest = max(packument["versions"], key=lambda v: tuple(int(p) for p in v.split(".")[:3]))
    packument.update({"_id": name, "name": name, "dist-tags": {"latest": newest}})
    _write_atomically(packument_path, json.dumps(packument, indent=2).encode())
    return package_dir
