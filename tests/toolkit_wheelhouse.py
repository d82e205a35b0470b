"""
The toolkit and its dependencies as wheels, for a lab host (no package index) to `pip install` into a venv: the
toolkit's own wheel built from this checkout (PEP 517, isolated, its build backend from a local find-links
directory when pip has no index), every runtime dependency re-packed from this venv's installed files (same
Python minor and architecture as the lab's Debian 12 python3), and pip itself (hosts have neither pip nor
ensurepip: `python3 <pip wheel>/pip install ...`).
"""

from __future__ import annotations

import base64
import hashlib
import os
import subprocess
import sys
import zipfile
from importlib.metadata import Distribution, PackageNotFoundError, distribution
from pathlib import Path

from packaging.requirements import Requirement
from pyinfra_cli_run import REPO

#: The toolkit's runtime requirements (pyproject's dependencies) are resolved from these, transitively.
ROOTS = ("pyinfra", "pydantic", "jinja2", "pyyaml", "paramiko", "packaging")
#: Where this machine keeps wheels for offline builds (setuptools for the isolated build), if anywhere.
FIND_LINKS = tuple(p for p in (os.environ.get("OLLAMA_CLAUDE_FIND_LINKS", ""), "/opt/pypi/files") if p and Path(p).is_dir())


def closure(roots: tuple[str, ...] = ROOTS) -> list[Distribution]:
    found: dict[str, Distribution] = {}
    todo = [*roots, "pip"]
    while todo:
        name = todo.pop()
        try:
            dist = distribution(name)
        except PackageNotFoundError:
            continue
        key = dist.metadata["Name"].lower().replace("_", "-")
        if key in found:
            continue
        found[key] = dist
        for text in dist.requires or []:
            requirement = Requirement(text)
            if not requirement.marker or requirement.marker.evaluate({"extra": ""}):
                todo.append(requirement.name)
    return list(found.values())


def _record_line(name: str, data: bytes) -> str:
    digest = base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()
    return f"{name},sha256={digest},{len(data)}"


def repack(dist: Distribution, dest: Path) -> Path:
    """An installed distribution back into a wheel: its files inside site-packages, a fresh RECORD."""
    info = next(p for p in dist.files if p.parent.name.endswith(".dist-info")).parent
    tags = [line.split(":", 1)[1].strip() for line in dist.read_text("WHEEL").splitlines() if line.startswith("Tag:")]
    parts = [sorted({tag.split("-")[i] for tag in tags}) for i in range(3)]  # py2.py3-none-any
    name = dist.metadata["Name"].replace("-", "_").replace(".", "_")
    wheel = dest / f"{name}-{dist.version}-{'-'.join('.'.join(p) for p in parts)}.whl"
    record_name = f"{info}/RECORD"
    lines = []
    with zipfile.ZipFile(wheel, "w", zipfile.ZIP_DEFLATED) as archive:
        for file in dist.files:
            text = str(file)
            if text.startswith("..") or "__pycache__" in text or text == record_name or text.endswith(".pyc"):
                continue
            path = Path(dist.locate_file(file))
            if not path.is_file():
                continue
            data = path.read_bytes()
            archive.writestr(text, data)
            lines.append(_record_line(text, data))
        lines.append(f"{record_name},,")
        archive.writestr(record_name, "\n".join(lines) + "\n")
    return wheel


def build(dest: Path) -> Path:
    """dest filled with ollama_claude's wheel, its dependencies' and pip's; returns dest."""
    dest.mkdir(parents=True, exist_ok=True)
    links = [item for path in FIND_LINKS for item in ("--find-links", path)]
    subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "-q", "-w", str(dest),
                    *(["--no-index", *links] if links else []), str(REPO)], check=True, capture_output=True, text=True)
    for dist in closure():
        repack(dist, dest)
    return dest
