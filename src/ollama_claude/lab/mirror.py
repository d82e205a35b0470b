"""The lab's release mirror: a small static HTTP server for Ollama release archives and Claude Code's npm
package, able to misbehave on purpose so the deploy's checksum and retry paths can be proven.

Controls, all under the served root and re-read per request:
  .faults.json     {"corrupt": [rel paths], "truncate": [...], "missing": [...]}: corrupt flips bytes
                   (same size), truncate serves the first half as if the file were short, missing answers 404
                   (both streamed from the file, so a release padded to a realistic size is never read whole)
  .requests.jsonl  one JSON line per request (method, path, range, status, bytes sent, client, user agent)
  .release-size    the size the main Linux archives were padded to (kept for the next build of this root)
Dot-files are never served.
"""

from __future__ import annotations

import argparse
import json
import os
from pathlib import Path

from ollama_claude.lab.releases import (
    CLAUDE_CODE_PLATFORMS,
    CLAUDE_CODE_VERSION,
    OLLAMA_VERSIONS,
    RELEASE_SIZE_ENV,
    build_ollama_release,
    claude_code_tarball,
    parse_size,
)
from ollama_claude.mirror import server as mirror_server
from ollama_claude.mirror.layout import publish_npm_package
from ollama_claude.mirror.server import (
    FileReader,
    FileView,
    MirrorHandler,
    MirrorServer,
)

FAULTS_FILE = ".faults.json"
RELEASE_SIZE_FILE = ".release-size"


def build_mirror(
    root: Path,
    ollama_versions: tuple[str, ...] = OLLAMA_VERSIONS,
    claude_code_version: str | None = CLAUDE_CODE_VERSION,
    claude_code_platforms: tuple[str, ...] = CLAUDE_CODE_PLATFORMS,
    release_size: int | None = None,
) -> Path:
    """Populate root with Ollama releases and the Claude Code platform packages; cheap when already built.

    release_size pads the main Linux archives to that many bytes (0: small); None takes $OLLAMA_CLAUDE_RELEASE_SIZE,
    else what this root was last built with, so a later build (a test serving the lab's mirror) keeps the size
    `lab up --release-size` chose."""
    root.mkdir(parents=True, exist_ok=True)
    size = release_size_for(root, release_size)
    for version in ollama_versions:
        build_ollama_release(root, version, release_size=size)
    if claude_code_version:
        for platform_name in claude_code_platforms:
            publish_npm_package(root, claude_code_tarball(claude_code_version, platform_name))
    return root


def release_size_for(root: Path, explicit: int | None = None) -> int:
    """The padding size to build root with (see build_mirror), remembered in root for the next build."""
    remembered = root / RELEASE_SIZE_FILE
    if explicit is not None:
        size = explicit
    elif os.environ.get(RELEASE_SIZE_ENV):
        size = parse_size(os.environ[RELEASE_SIZE_ENV])
    else:
        size = int(remembered.read_text()) if remembered.is_file() else 0
    remembered.write_text(f"{size}\n")
    return size


def read_faults(root: Path) -> dict[str, set[str]]:
    path = root / FAULTS_FILE
    if not path.is_file():
        return {}
    return {kind: set(paths) for kind, paths in json.loads(path.read_text()).items()}


def write_faults(root: Path, **faults: list[str]) -> None:
    """Set the fault lists (e.g. corrupt=[...]) a running mirror applies from its next request on."""
    (root / FAULTS_FILE).write_text(json.dumps(faults))


class FaultyFile(FileView):
    """A file as served, read in pieces: whole, truncated to its first half, or corrupted (the 16 bytes at its
    middle flipped: same length, different bytes, only a checksum can tell), never read whole into memory."""

    def __init__(self, path: Path, truncate: bool = False, corrupt: bool = False):
        super().__init__(path)
        self.flip = self.size // 2 if corrupt else None
        if truncate:
            self.size //= 2

    def open(self):
        return FaultyReader(self)


class FaultyReader(FileReader):
    def read(self, count: int) -> bytes:
        start = self.position
        data = super().read(count)
        flip = self.view.flip
        if flip is not None and start < flip + 16 and flip < start + len(data):
            buffer = bytearray(data)
            for index in range(max(flip, start), min(flip + 16, start + len(data))):
                buffer[index - start] ^= 0xFF
            data = bytes(buffer)
        return data


class LabMirrorHandler(MirrorHandler):
    """The fleet mirror's handler with the lab's faults applied, re-read per request."""

    def view(self, rel: str, path: Path) -> FileView | None:
        faults = read_faults(self.root)
        if rel in faults.get("missing", ()):
            return None
        corrupt, truncate = rel in faults.get("corrupt", ()), rel in faults.get("truncate", ())
        return FaultyFile(path, truncate, corrupt) if corrupt or truncate else FileView(path)


def make_server(root: Path, bind: str = "127.0.0.1", port: int = 0) -> MirrorServer:
    """The lab mirror bound to exactly this address (port 0 picks a free one)."""
    return mirror_server.make_server(root, bind, port, LabMirrorHandler)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        prog="python -m ollama_claude.lab.mirror", description=__doc__.splitlines()[0]
    )
    commands = parser.add_subparsers(dest="command", required=True)
    build = commands.add_parser("build", help="build release artifacts and the npm tree into --root")
    serve_command = commands.add_parser("serve", help="serve --root (built first if needed)")
    for command in (build, serve_command):
        command.add_argument("--root", type=Path, required=True)
        command.add_argument("--ollama-version", action="append", dest="ollama_versions")
        command.add_argument("--claude-code-version", default=CLAUDE_CODE_VERSION)
        command.add_argument("--no-claude-code", action="store_true", help="skip the npm packages")
        command.add_argument(
            "--release-size", type=parse_size, default=None, metavar="BYTES",
            help=f"pad the main Linux archives to this size, e.g. 1.2G (default ${RELEASE_SIZE_ENV}, else small)",
        )
    serve_command.add_argument("--bind", default="127.0.0.1")
    serve_command.add_argument("--port", type=int, default=8080)
    serve_command.add_argument("--no-build", action="store_true",
                               help="serve --root as it is (e.g. a fleet mirror from `mirror sync`), with the faults")
    args = parser.parse_args(argv)
    if args.command == "serve" and args.no_build:
        return mirror_server.serve(args.root, args.bind, args.port, LabMirrorHandler)
    build_mirror(
        args.root,
        tuple(args.ollama_versions or OLLAMA_VERSIONS),
        None if args.no_claude_code else args.claude_code_version,
        release_size=args.release_size,
    )
    if args.command == "build":
        print(args.root)
        return
    mirror_server.serve(args.root, args.bind, args.port, LabMirrorHandler)


if __name__ == "__main__":
    main()
