"""What a host has of Ollama now: install layout and version, running server, GPU vendor, published sums."""

from __future__ import annotations

import re
import shlex
from typing import Any

from pyinfra.api import FactBase

from ..ollama_api import api_command, parse_response

#: Our versioned install root: one directory per release, ``<version>[+<variant>]/`` with the archive inside.
INSTALL_ROOT = "/usr/local/lib/ollama-claude/ollama"
#: The stable path every unit, plist and user calls; a symlink into INSTALL_ROOT once we manage it.
BIN_LINK = "/usr/local/bin/ollama"
#: install.sh unpacks its runners here (bin/ollama + lib/ollama under /usr/local).
LEGACY_LIB = "/usr/local/lib/ollama"

_VERSION_RE = re.compile(r"(\d+\.\d+\.\d+(?:[-.+][0-9A-Za-z.]+)?)")
_FETCH_FAILED = "__OLLAMA_CLAUDE_FETCH_FAILED__"


def release_dir_version(name: str) -> str:
    """``0.16.3+rocm`` -> ``0.16.3``: the release a versioned directory holds."""
    return name.split("+", 1)[0]


class OllamaInstall(FactBase[dict[str, Any]]):
    """
    How Ollama is installed: ``layout`` is ``managed`` (BIN_LINK links into our root), ``installsh`` (a regular
    file, as Ollama's install.sh leaves it), ``foreign`` (a symlink elsewhere, e.g. Homebrew) or ``none``;
    ``current`` is the release directory in use, ``releases`` every complete one under our root.
    """

    def default(self) -> dict[str, Any]:
        return self.process([])

    def command(self, binary: str = "bin/ollama") -> str:
        link, root, legacy = shlex.quote(BIN_LINK), shlex.quote(INSTALL_ROOT), shlex.quote(LEGACY_LIB)
        return (
            f'if [ -L {link} ]; then echo "link $(readlink {link})"; '
            f"elif [ -f {link} ]; then echo file; {link} -v 2>/dev/null | sed 's/^/binary /'; fi; "
            f"[ -d {legacy} ] && echo legacy-lib; "
            f"for d in {root}/*/; do [ -x \"$d\"{shlex.quote(binary)} ] && echo \"release $(basename \"$d\")\"; done; "
            "true"
        )

    def process(self, output: list[str]) -> dict[str, Any]:
        facts: dict[str, Any] = {
            "layout": "none", "version": None, "current": None, "link": None,
            "releases": [], "legacy_lib": False,
        }
        binary_lines = []
        for line in output:
            kind, _, value = line.partition(" ")
            if kind == "link":
                facts["link"] = value
                inside = value.removeprefix(INSTALL_ROOT + "/")
                if inside != value:
                    facts.update(layout="managed", current=inside.split("/", 1)[0])
                    facts["version"] = release_dir_version(facts["current"])
                else:
                    facts["layout"] = "foreign"
            elif kind == "file":
                facts["layout"] = "installsh"
            elif kind == "binary":
                binary_lines.append(value)
            elif kind == "legacy-lib":
                facts["legacy_lib"] = True
            elif kind == "release":
                facts["releases"].append(value)
        if facts["layout"] == "installsh":
            facts["version"] = _client_version(binary_lines)
        facts["releases"].sort()
        return facts


def _client_version(lines: list[str]) -> str | None:
    """The binary's own version from ``ollama -v``: 'client version is Y' wins over the server's answer."""
    for marker in ("client version is", "ollama version is"):
        for line in lines:
            if marker in line:
                found = _VERSION_RE.search(line.split(marker, 1)[1])
                if found:
                    return found.group(1)
    return None


class OllamaServerVersion(FactBase[str | None]):
    """The version the running server reports on ``/api/version``; None when nothing answers."""

    def requires_command(self, base_url: str) -> str:
        return "curl"

    def command(self, base_url: str) -> str:
        return api_command(base_url, "/api/version", timeout=5)

    def process(self, output: list[str]) -> str | None:
        response = parse_response(output)
        if not response.ok:
            return None
        try:
            body = response.json()
        except ValueError:
            return None
        return body.get("version") if isinstance(body, dict) else None


class GpuVendor(FactBase[str]):
    """
    ``nvidia``, ``amd`` or ``none``, decided like Ollama's install.sh: nvidia-smi, else PCI display devices of
    vendor 10de (NVIDIA) or 1002 (AMD), read from lspci or, without it, /sys/bus/pci/devices.
    """

    def default(self) -> str:
        return "none"

    def command(self) -> str:
        return (
            "command -v nvidia-smi >/dev/null 2>&1 && echo nvidia-smi; "
            "if command -v lspci >/dev/null 2>&1; then lspci -n | awk '{print \"pci \" $3 \" \" $2}'; "
            "else for d in /sys/bus/pci/devices/*; do [ -r \"$d/vendor\" ] && "
            "echo \"pci $(cat \"$d/vendor\") $(cat \"$d/class\")\"; done; fi; true"
        )

    def process(self, output: list[str]) -> str:
        if "nvidia-smi" in output:
            return "nvidia"
        found = set()
        for line in output:
            parts = line.split()
            if len(parts) < 3 or parts[0] != "pci":
                continue
            vendor = parts[1].split(":")[0].lower().removeprefix("0x")
            device_class = parts[2].rstrip(":").lower().removeprefix("0x")
            if device_class.startswith("03"):  # display controllers (VGA, 3D, other)
                found.add({"10de": "nvidia", "1002": "amd"}.get(vendor, "other"))
        for vendor in ("nvidia", "amd"):
            if vendor in found:
                return vendor
        return "none"


class OllamaReleaseSums(FactBase[dict[str, Any]]):
    """
    The release's published ``sha256sum.txt``, fetched by the host itself (it downloads the archive too):
    ``{"sums": {file name: sha256}}``, or ``{"error": "<url>: <curl's reason>"}`` when it cannot be read.
    """

    def default(self) -> dict[str, Any]:
        return {"sums": {}}

    def requires_command(self, url: str) -> str:
        return "curl"

    def command(self, url: str) -> str:
        quoted = shlex.quote(url)
        return (
            f"if out=$(curl -fsSL --retry 2 --max-time 60 {quoted} 2>&1); then printf '%s\\n' \"$out\"; "
            f"else echo {_FETCH_FAILED} {quoted}: \"$out\" | tr '\\n' ' '; echo; fi"
        )

    def process(self, output: list[str]) -> dict[str, Any]:
        if output and output[0].startswith(_FETCH_FAILED):
            return {"error": output[0].removeprefix(_FETCH_FAILED).strip()}
        sums = {}
        for line in output:
            parts = line.split()
            if len(parts) == 2 and re.fullmatch(r"[0-9a-f]{64}", parts[0]):
                sums[parts[1].lstrip("*").removeprefix("./")] = parts[0]
        return {"sums": sums}


class UnifiedCgroups(FactBase[bool]):
    """Whether /sys/fs/cgroup is cgroup v2: systemd's per-unit IP firewall (IPAddressAllow=) needs it."""

    def command(self) -> str:
        return "stat -fc %T /sys/fs/cgroup 2>/dev/null || true"

    def process(self, output: list[str]) -> bool:
        return output == ["cgroup2fs"]
