"""
The fleet mirror's layout, shared by `ollama-claude mirror sync|serve` and the lab's mirror: Ollama releases
under the GitHub-shaped path, Claude Code's platform packages laid out like the npm registry, and the control
machine's download cache.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import tarfile
from pathlib import Path


def cache_dir() -> Path:
    return Path(os.environ.get("OLLAMA_CLAUDE_CACHE") or Path.home() / ".cache" / "ollama-claude")


def ollama_release_dir(root: Path, version: str) -> Path:
    """Where the GitHub-shaped URL `<mirror>/ollama/releases/download/v<version>/` is served from."""
    return root / "ollama" / "releases" / "download" / f"v{version}"


def write_atomically(path: Path, data: bytes) -> None:
    """Write beside, then rename: a reader (or a crashed run) never sees half a file."""
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_bytes(data)
    os.replace(tmp, path)


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
        write_atomically(target_tgz, data)
    write_atomically(package_dir / version / "index.json", json.dumps(version_doc, indent=2).encode())
    packument_path = package_dir / "index.json"
    packument = json.loads(packument_path.read_text()) if packument_path.is_file() else {"versions": {}}
    packument["versions"][version] = version_doc
    newest = max(packument["versions"], key=lambda v: tuple(int(p) for p in v.split(".")[:3]))
    packument.update({"_id": name, "name": name, "dist-tags": {"latest": newest}})
    write_atomically(packument_path, json.dumps(packument, indent=2).encode())
    return package_dir
