"""
`mirror sync`: download the pinned Ollama release archives and Claude Code platform packages once, verified
against what upstream publishes (sha256sum.txt; the registry's sha512 dist.integrity), into the tree the
deploy reads from a mirror: `<root>/ollama/releases/download/v<ver>/<file>` and `<root>/npm/<package>/...`.
A file already present with the published sum is kept, so a re-run fetches only the small sum documents.

Only the archives the fleet's deploy downloads are fetched (a release is several GB in all): per Linux arch its
`ollama-linux-<arch>.tar.zst`, the amd64 ROCm add-on for AMD GPUs, `Ollama-darwin.zip` for Macs. Linux releases
are .tar.zst only since v0.14.0; the one .tgz of a release is ollama-darwin.tgz, which the deploy never uses.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import tempfile
import urllib.error
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import quote

from ollama_claude.claude.facts import integrity_sha512_hex, platform_package
from ollama_claude.mirror.layout import ollama_release_dir, publish_npm_package

CHUNK = 1 << 20
TIMEOUT = 120
ROCM_ARCHES = ("amd64",)  # upstream publishes the ROCm add-on for amd64 only
DARWIN_ARCHIVE = "Ollama-darwin.zip"  # the app: what the deploy installs on macOS
PLATFORM_OF_ARCH = {"amd64": "linux-x64", "arm64": "linux-arm64"}


class MirrorSyncError(Exception):
    """A file could not be fetched or did not match its published sum; the message names URL and sums."""


@dataclass
class SyncReport:
    fetched: list[str] = field(default_factory=list)
    kept: list[str] = field(default_factory=list)
    bytes_fetched: int = 0


def read_url(url: str, accept: str | None = None) -> bytes:
    request = urllib.request.Request(url, headers={"Accept": accept} if accept else {})
    try:
        with urllib.request.urlopen(request, timeout=TIMEOUT) as response:
            return response.read()
    except (urllib.error.URLError, OSError) as error:
        raise MirrorSyncError(f"cannot fetch {url}: {error}") from None


def file_digest(path: Path, algorithm: str) -> str:
    digest = hashlib.new(algorithm)
    with open(path, "rb") as reader:
        while piece := reader.read(CHUNK):
            digest.update(piece)
    return digest.hexdigest()


def download_verified(url: str, target: Path, algorithm: str, expected: str, report: SyncReport) -> None:
    """Keep target if it already has the expected digest; else stream url beside it, check, then move it in."""
    name = str(target)
    if target.is_file() and file_digest(target, algorithm) == expected:
        report.kept.append(name)
        return
    target.parent.mkdir(parents=True, exist_ok=True)
    digest = hashlib.new(algorithm)
    with tempfile.NamedTemporaryFile(dir=target.parent, prefix=f".{target.name}.", delete=False) as out:
        try:
            with urllib.request.urlopen(url, timeout=TIMEOUT) as response:
                while piece := response.read(CHUNK):
                    digest.update(piece)
                    out.write(piece)
                    report.bytes_fetched += len(piece)
        except (urllib.error.URLError, OSError) as error:
            os.unlink(out.name)
            raise MirrorSyncError(f"cannot fetch {url}: {error}") from None
    if digest.hexdigest() != expected:
        os.unlink(out.name)
        raise MirrorSyncError(
            f"{algorithm} mismatch for {url}: expected {expected}, got {digest.hexdigest()}; "
            "nothing was stored (re-run once upstream serves the published file)"
        )
    os.replace(out.name, target)
    os.chmod(target, 0o644)
    report.fetched.append(name)


def parse_sums(text: str) -> dict[str, str]:
    """sha256sum.txt (`<hex>  ./<file>`) as {file name: sha256}."""
    sums = {}
    for line in text.splitlines():
        parts = line.split()
        if len(parts) == 2 and re.fullmatch(r"[0-9a-f]{64}", parts[0]):
            sums[parts[1].removeprefix("./").lstrip("*")] = parts[0]
    return sums


def wanted_archives(
    sums: dict[str, str], arches: list[str], rocm: bool, sums_url: str, darwin: bool = False
) -> list[str]:
    """The published archives the fleet's hosts download: each arch's .tar.zst (+ ROCm, + the macOS app)."""
    names = [f"ollama-linux-{arch}.tar.zst" for arch in arches]
    names += [f"ollama-linux-{arch}-rocm.tar.zst" for arch in arches if rocm and arch in ROCM_ARCHES]
    names += [DARWIN_ARCHIVE] if darwin else []
    missing = [name for name in names if name not in sums]
    if missing:
        hint = ("; Linux releases before 0.14.0 have only .tgz archives, which the deploy does not install"
                if any(name.endswith(".tar.zst") and name.replace(".tar.zst", ".tgz") in sums for name in missing)
                else "")
        raise MirrorSyncError(
            f"{sums_url} lists no {', '.join(missing)}; check --ollama-version/--arch{hint}"
        )
    return names


def sync_ollama(
    root: Path, base_url: str, version: str, arches: list[str], rocm: bool, report: SyncReport,
    darwin: bool = False,
) -> None:
    release_url = f"{base_url.rstrip('/')}/v{version}"
    sums_url = f"{release_url}/sha256sum.txt"
    sums_text = read_url(sums_url)
    sums = parse_sums(sums_text.decode())
    target_dir = ollama_release_dir(root, version)
    for name in wanted_archives(sums, arches, rocm, sums_url, darwin):
        download_verified(f"{release_url}/{name}", target_dir / name, "sha256", sums[name], report)
    # Written last: a host never sees sums for archives that are not in place yet.
    (target_dir / "sha256sum.txt").write_bytes(sums_text)


def package_version_document(registry: str, package: str, version: str) -> dict:
    """The version document, or the packument's entry for it (as the deploy's fact reads either)."""
    by_version = f"{registry}/{package}/{quote(version)}"
    try:
        return json.loads(read_url(by_version, "application/json"))
    except (MirrorSyncError, ValueError):
        packument_url = f"{registry}/{quote(package, safe='@')}"
        try:
            packument = json.loads(read_url(packument_url, "application/vnd.npm.install-v1+json"))
        except ValueError:
            raise MirrorSyncError(f"{packument_url} is not a JSON packument") from None
        if version not in packument.get("versions", {}):
            raise MirrorSyncError(f"{package}@{version} is not published at {registry}; check --claude-code-version")
        return packument["versions"][version]


def sync_claude_code(root: Path, registry: str, version: str, platform: str, report: SyncReport) -> None:
    registry = registry.rstrip("/")
    package = platform_package(platform)
    dist = package_version_document(registry, package, version).get("dist") or {}
    sha512 = integrity_sha512_hex(dist.get("integrity", ""))
    if not dist.get("tarball") or not sha512:
        raise MirrorSyncError(f"{package}@{version} at {registry} has no dist.tarball with a sha512 integrity")
    tarball = root / "npm" / package / "-" / f"{package.split('/')[-1]}-{version}.tgz"
    download_verified(dist["tarball"], tarball, "sha512", sha512, report)
    publish_npm_package(root, tarball)


def sync(
    root: Path,
    ollama_url: str,
    ollama_versions: list[str],
    arches: list[str],
    rocm: bool,
    registry: str | None,
    claude_code_version: str | None,
    platforms: list[str],
    log: Callable[[str], None] = print,
    darwin: bool = False,
) -> SyncReport:
    """Fetch the Ollama releases and Claude Code packages the fleet's deploy downloads (registry None: no Claude);
    darwin adds the macOS app archive."""
    report = SyncReport()
    for version in ollama_versions:
        sync_ollama(root, ollama_url, version, arches, rocm, report, darwin)
        log(f"ollama {version}: {', '.join(arches)}{' +rocm' if rocm else ''}{' +darwin' if darwin else ''} verified")
    if registry and claude_code_version:
        for platform in platforms:
            sync_claude_code(root, registry, claude_code_version, platform, report)
            log(f"claude code {claude_code_version} {platform}: verified")
    return report
