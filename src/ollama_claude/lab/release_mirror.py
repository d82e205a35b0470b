"""
The lab's release mirror as a lab service: built in the lab's own directory (so fault switches of one lab never
reach another), served on the lab bridge address, and every host's data pointed at it. This is the only place
where the lab tells the deploy where to download from; the deploy itself treats it like any mirror.
"""

from __future__ import annotations

import io
import json
import os
import sys
import tarfile
import tempfile
from pathlib import Path

from ..mirror.layout import cache_dir, publish_npm_package
from .errors import LabError
from .fleet import Lab
from .mirror import build_mirror
from .releases import CLAUDE_CODE_VERSION, claude_code_package, claude_code_tarball, host_platform
from .system import wait_until_serving

MIRROR_PORT = 8470
MIRROR_SERVICE = "release-mirror"
#: The unprivileged account every lab host has; it is the user Claude Code is configured for.
LAB_USER = "dev"


def mirror_root(lab: Lab) -> Path:
    return lab.dir / "mirror"


def gateway_ip(lab: Lab) -> str:
    """The bridge address without its prefix length: where lab services listen."""
    return lab.require_state().gateway.split("/")[0]


def mirror_url(lab: Lab) -> str:
    return f"http://{gateway_ip(lab)}:{MIRROR_PORT}"


def serve_release_mirror(lab: Lab, timeout: float = 20, release_size: int | None = None) -> str:
    """Build (cached) and start the mirror on the bridge address; point the hosts' data at it; return its URL.

    release_size pads the main Linux archives (see build_mirror; None keeps what this lab's mirror has)."""
    root = build_mirror(mirror_root(lab), release_size=release_size)
    for platform_name in DARWIN_PLATFORMS:
        publish_npm_package(root, darwin_claude_code_tarball(platform_name))
    lab.stop_service(MIRROR_SERVICE)
    argv = [sys.executable, "-m", "ollama_claude.lab.mirror", "serve", "--root", str(root),
            "--bind", gateway_ip(lab), "--port", str(MIRROR_PORT)]
    lab.start_service(MIRROR_SERVICE, argv)
    url = mirror_url(lab)
    try:
        wait_until_serving(f"{url}/npm/", timeout)
    except OSError as error:
        raise LabError(f"the lab's release mirror did not answer at {url} within {timeout}s: {error}") from None
    lab.set_host_data(
        ollama_download_url=f"{url}/ollama/releases/download",
        claude_code_registry=f"{url}/npm",
        claude_users=[LAB_USER],
    )
    return url


# -- Claude Code for the Mac-shaped host

#: The darwin packages the deploy installs on a Mac (macos.md "Claude Code on a Mac": native packages
#: @anthropic-ai/claude-code-darwin-arm64 and -darwin-x64 exist for each version).
DARWIN_PLATFORMS = ("darwin-arm64", "darwin-x64")


def darwin_claude_code_tarball(platform_name: str, version: str = CLAUDE_CODE_VERSION) -> Path:
    """The lab's `@anthropic-ai/claude-code-<darwin platform>` package: the pinned Linux package of this machine
    renamed, its package.json saying darwin. THE ONE DOCUMENTED COMPROMISE of the Mac-shaped host: it runs
    Linux, so its Claude Code is the real pinned CLI built for Linux, served under the darwin package's name
    (the deploy fetches, verifies and runs it exactly as it would the Mach-O one). Built once into the cache."""
    target = cache_dir() / "npm" / f"lab-{platform_name}-from-{host_platform()}-{version}.tgz"
    if target.is_file():
        return target
    source = claude_code_tarball(version, host_platform())
    target.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.NamedTemporaryFile(dir=target.parent, suffix=".tmp", delete=False) as scratch:
        pass
    try:
        with tarfile.open(source) as packed, tarfile.open(scratch.name, "w:gz", compresslevel=1) as out:
            for member in packed:
                data = packed.extractfile(member) if member.isfile() else None
                if member.name == "package/package.json":
                    manifest = json.load(data)
                    manifest.update(name=claude_code_package(platform_name), os=["darwin"],
                                    cpu=[platform_name.split("-")[1]],
                                    description=f"Native binary for Claude Code on {platform_name}")
                    manifest.pop("libc", None)
                    body = json.dumps(manifest, indent=2).encode()
                    member.size = len(body)
                    data = io.BytesIO(body)
                out.addfile(member, data)
        os.chmod(scratch.name, 0o644)
        os.replace(scratch.name, target)
    finally:
        Path(scratch.name).unlink(missing_ok=True)
    return target
