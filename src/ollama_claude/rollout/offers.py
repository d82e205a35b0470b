"""
Which Ollama and Claude Code releases newer than the pins a mirror (or upstream, where reachable) offers.

Ollama: the release directory listing at ``ollama_download_url`` (``v<version>/`` entries, as a static server's
autoindex or an index.html shows them); a release counts only if it has a ``sha256sum.txt`` (what the deploy
verifies against). Claude Code: the npm packument at ``claude_code_registry`` (versions published).
"""

from __future__ import annotations

import json
import re
import urllib.error
import urllib.request
from typing import Any
from urllib.parse import quote

from packaging.version import InvalidVersion, Version

CLAUDE_PACKAGES = ("@anthropic-ai/claude-code", "@anthropic-ai/claude-code-linux-x64")
_RELEASE_DIR = re.compile(r"""href=["']?(?:\./)?v(\d+\.\d+\.\d+)/?["'>]""")


def _get(url: str, timeout: float) -> bytes:
    with urllib.request.urlopen(url, timeout=timeout) as response:
        return response.read()


def _newer(versions: list[str], than: str) -> list[str]:
    try:
        floor = Version(than)
    except InvalidVersion:
        return []
    out = []
    for version in versions:
        try:
            if Version(version) > floor and not Version(version).is_prerelease:
                out.append(version)
        except InvalidVersion:
            continue
    return sorted(set(out), key=Version)


def ollama_releases(download_url: str, timeout: float = 5) -> tuple[list[str] | None, str | None]:
    """(versions the listing shows with a sha256sum.txt, None) or (None, why it could not be read)."""
    base = download_url.rstrip("/")
    try:
        listing = _get(f"{base}/", timeout).decode(errors="replace")
    except (urllib.error.URLError, OSError, ValueError) as error:
        return None, f"{base}/ has no listing ({getattr(error, 'reason', error)})"
    versions = []
    for version in sorted(set(_RELEASE_DIR.findall(listing)), key=Version):
        try:
            _get(f"{base}/v{version}/sha256sum.txt", timeout)
        except (urllib.error.URLError, OSError):
            continue
        versions.append(version)
    return versions, None


def claude_code_releases(registry: str, timeout: float = 5) -> tuple[list[str] | None, str | None]:
    base = registry.rstrip("/")
    problems = []
    for package in CLAUDE_PACKAGES:
        try:
            document = json.loads(_get(f"{base}/{quote(package, safe='@')}", timeout))
        except (urllib.error.URLError, OSError, ValueError) as error:
            problems.append(f"{package}: {getattr(error, 'reason', error)}")
            continue
        return sorted(document.get("versions") or {}, key=lambda v: Version(v) if _valid(v) else Version("0")), None
    return None, f"{base}: no packument ({'; '.join(problems)})"


def _valid(version: str) -> bool:
    try:
        Version(version)
        return True
    except InvalidVersion:
        return False


def offers(hosts: list[dict[str, Any]], default_registry: str = "https://registry.npmjs.org") -> dict[str, Any]:
    """Per host: newer Ollama / Claude Code than its pins, each source read once."""
    ollama_cache: dict[str, tuple] = {}
    claude_cache: dict[str, tuple] = {}
    out: dict[str, Any] = {}
    for entry in hosts:
        if not entry.get("reachable"):
            continue
        pins = entry["pins"]
        url = entry.get("ollama_download_url") or ""
        registry = entry.get("claude_code_registry") or default_registry
        if url not in ollama_cache:
            ollama_cache[url] = ollama_releases(url)
        if registry not in claude_cache:
            claude_cache[registry] = claude_code_releases(registry)
        ollama, ollama_problem = ollama_cache[url]
        claude, claude_problem = claude_cache[registry]
        out[entry["host"]] = {
            "ollama": _newer(ollama, pins["ollama_version"]) if ollama is not None else None,
            "ollama_source": url, "ollama_problem": ollama_problem,
            "claude_code": _newer(claude, pins["claude_code_version"]) if claude is not None else None,
            "claude_code_source": registry, "claude_code_problem": claude_problem,
        }
    return out
