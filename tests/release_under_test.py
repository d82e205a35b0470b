"""A release that exists only for a test, published into a lab mirror the way the real ones are laid out:
one `ollama-linux-amd64.tar.zst` holding `bin/ollama`, and a `sha256sum.txt` naming it."""

from __future__ import annotations

import hashlib
import io
import subprocess
import tarfile
from pathlib import Path

from ollama_claude.mirror.layout import ollama_release_dir


def publish_release(root: Path, version: str, binary: bytes) -> Path:
    """Publish ``binary`` as release ``version``'s `bin/ollama` under the mirror ``root``; returns its dir."""
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as tar:
        info = tarfile.TarInfo("bin/ollama")
        info.size, info.mode = len(binary), 0o755
        tar.addfile(info, io.BytesIO(binary))
    archive = subprocess.run(["zstd", "-q", "-c"], input=buffer.getvalue(), capture_output=True, check=True).stdout
    target = ollama_release_dir(root, version)
    target.mkdir(parents=True, exist_ok=True)
    (target / "ollama-linux-amd64.tar.zst").write_bytes(archive)
    (target / "sha256sum.txt").write_text(f"{hashlib.sha256(archive).hexdigest()}  ./ollama-linux-amd64.tar.zst\n")
    return target
