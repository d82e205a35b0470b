"""What a host has of Claude Code now: the platform package it needs, pinned binary and link, registry."""

from __future__ import annotations

import base64
import json
import shlex
from typing import Any
from urllib.parse import quote

from pyinfra.api import FactBase

#: The npm scope whose per-platform packages each hold one native ``claude`` executable (2.1.x).
PACKAGE_PREFIX = "@anthropic-ai/claude-code"
_ARCHES = {"x86_64": "x64", "amd64": "x64", "aarch64": "arm64", "arm64": "arm64"}
_FETCH_FAILED = "__OLLAMA_CLAUDE_FETCH_FAILED__"


def platform_package(platform: str) -> str:
    return f"{PACKAGE_PREFIX}-{platform}"


class ClaudePlatform(FactBase[str | None]):
    """
    The platform suffix of Claude Code's native package (``linux-x64``, ``linux-arm64-musl``,
    ``darwin-arm64``); None when Anthropic ships no binary for this kernel/CPU.
    """

    def command(self) -> str:
        return (
            "libc=gnu; if ls /lib/ld-musl-* >/dev/null 2>&1 || ldd --version 2>&1 | grep -qi musl; "
            'then libc=musl; fi; echo "$(uname -s) $(uname -m) $libc"'
        )

    def process(self, output: list[str]) -> str | None:
        kernel, machine, libc = (output[0].split() + ["", "", ""])[:3] if output else ("", "", "")
        arch = _ARCHES.get(machine)
        system = {"Linux": "linux", "Darwin": "darwin"}.get(kernel)
        if not arch or not system:
            return None
        return f"{system}-{arch}" + ("-musl" if system == "linux" and libc == "musl" else "")


class ClaudeCodeInstall(FactBase[dict[str, Any]]):
    """
    The stable link and the pinned binary: ``link`` (symlink target, None when absent), ``link_is_file`` (a
    regular file someone else put there), ``pinned`` (what ``<dir>/<version>/claude --version`` reports, or
    None).
    """

    @staticmethod
    def default() -> dict[str, Any]:
        return {"link": None, "link_is_file": False, "pinned": None}

    def command(self, link: str, binary: str) -> str:
        qlink, qbin = shlex.quote(link), shlex.quote(binary)
        return (
            f'if [ -L {qlink} ]; then echo "link $(readlink {qlink})"; '
            f"elif [ -e {qlink} ]; then echo file; fi; "
            f'if [ -x {qbin} ]; then echo "pinned $({qbin} --version 2>/dev/null | head -n1)"; fi; true'
        )

    def process(self, output: list[str]) -> dict[str, Any]:
        facts = self.default()
        for line in output:
            kind, _, value = line.partition(" ")
            if kind == "link":
                facts["link"] = value
            elif kind == "file":
                facts["link_is_file"] = True
            elif kind == "pinned":
                facts["pinned"] = value.split(" ", 1)[0] or None
        return facts


def integrity_sha512_hex(integrity: str) -> str | None:
    """npm's ``dist.integrity`` (``sha512-<base64>``, possibly several space-separated) as a hex digest."""
    for item in integrity.split():
        algorithm, _, digest = item.partition("-")
        if algorithm == "sha512":
            try:
                return base64.b64decode(digest, validate=True).hex()
            except ValueError:
                return None
    return None


class ClaudeNativePackage(FactBase[dict[str, str]]):
    """
    The pinned platform package as the registry publishes it, fetched from the host (which must reach the
    tarball anyway): ``tarball`` and ``sha512`` (hex, from ``dist.integrity``), or ``error``. Tries the
    version
    document first, then the abbreviated packument, so plain registries, proxies and mirrors all answer.
    """

    @staticmethod
    def default() -> dict[str, str]:
        return {"error": "the registry answered with an empty document"}

    def requires_command(self, registry: str, platform: str, version: str) -> str:
        return "curl"

    def command(self, registry: str, platform: str, version: str) -> str:
        self.version = version
        self.where = f"{platform_package(platform)}@{version} from {registry}"
        name = platform_package(platform)
        by_version = f"{registry}/{name}/{quote(version)}"
        packument = f"{registry}/{quote(name, safe='@')}"
        return (
            f"curl -fsSL --max-time 60 -H 'Accept: application/json' {shlex.quote(by_version)} 2>/dev/null"
            f" || curl -fsSL --max-time 120 -H 'Accept: application/vnd.npm.install-v1+json' "
            f"{shlex.quote(packument)} 2>/dev/null || echo {_FETCH_FAILED}"
        )

    def process(self, output: list[str]) -> dict[str, str]:
        text = "\n".join(output)
        if text.strip() == _FETCH_FAILED or not text.strip():
            return {"error": f"cannot fetch {self.where}; check claude_code_registry and the host's network"}
        try:
            document = json.loads(text)
        except ValueError:
            return {"error": f"the registry's answer for {self.where} is not JSON"}
        if "versions" in document:
            document = document["versions"].get(self.version) or {}
        dist = document.get("dist") or {}
        if not dist.get("tarball"):
            return {"error": f"{self.where}: version not published; pick a published claude_code_version"}
        sha512 = integrity_sha512_hex(dist.get("integrity", ""))
        if not sha512:
            return {"error": f"{self.where}: no sha512 dist.integrity to verify the download against"}
        return {"tarball": dist["tarball"], "sha512": sha512}
