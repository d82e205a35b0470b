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
import datetime
import http.server
import io
import json
import os
import re
import socket
import threading
import urllib.parse
from pathlib import Path

from ollama_claude.lab.releases import (
    CLAUDE_CODE_PLATFORMS,
    CLAUDE_CODE_VERSION,
    OLLAMA_VERSIONS,
    RELEASE_SIZE_ENV,
    build_ollama_release,
    claude_code_tarball,
    parse_size,
    publish_npm_package,
)

FAULTS_FILE = ".faults.json"
REQUEST_LOG = ".requests.jsonl"
RELEASE_SIZE_FILE = ".release-size"
CHUNK = 1 << 20
CONTENT_TYPES = {
    ".json": "application/json",
    ".html": "text/html; charset=utf-8",
    ".txt": "text/plain; charset=utf-8",
    ".tgz": "application/octet-stream",
    ".sh": "text/x-shellscript; charset=utf-8",
}


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


class FaultyFile:
    """A file as served, read in pieces: whole, truncated to its first half, or corrupted (the 16 bytes at its
    middle flipped: same length, different bytes, only a checksum can tell), never read whole into memory."""

    def __init__(self, path: Path, truncate: bool = False, corrupt: bool = False):
        self.path, self.size = path, path.stat().st_size
        self.flip = self.size // 2 if corrupt else None
        if truncate:
            self.size //= 2

    def open(self):
        return FaultyReader(self)


class FaultyReader:
    def __init__(self, view: FaultyFile):
        self.view, self.file, self.position = view, open(view.path, "rb"), 0  # noqa: SIM115 (closed by __exit__)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.file.close()

    def seek(self, offset: int) -> None:
        self.position = offset
        self.file.seek(offset)

    def read(self, count: int) -> bytes:
        count = max(0, min(count, self.view.size - self.position))
        data = self.file.read(count)
        flip, start = self.view.flip, self.position
        if flip is not None and start < flip + 16 and flip < start + len(data):
            buffer = bytearray(data)
            for index in range(max(flip, start), min(flip + 16, start + len(data))):
                buffer[index - start] ^= 0xFF
            data = bytes(buffer)
        self.position += len(data)
        return data


def parse_range(header: str | None, size: int) -> tuple[int, int] | None:
    """(first, last) byte of a single `bytes=` range; None when absent; ValueError when unsatisfiable."""
    if not header:
        return None
    match = re.fullmatch(r"bytes=(\d*)-(\d*)", header.strip())
    if not match or match.groups() == ("", ""):
        raise ValueError(header)
    first_text, last_text = match.groups()
    if first_text == "":
        first, last = max(0, size - int(last_text)), size - 1
    else:
        first, last = int(first_text), min(int(last_text), size - 1) if last_text else size - 1
    if first >= size or first > last:
        raise ValueError(header)
    return first, last


class MirrorHandler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    root: Path
    log_lock = threading.Lock()

    def log_message(self, fmt, *args):
        """The JSON request log replaces the default stderr lines."""

    def do_GET(self):
        self.serve(send_body=True)

    def do_HEAD(self):
        self.serve(send_body=False)

    def resolve(self) -> tuple[str, Path] | None:
        """(relative path, file) for the request, or None for anything outside root or hidden."""
        rel = urllib.parse.unquote(urllib.parse.urlsplit(self.path).path).lstrip("/")
        parts = [p for p in rel.split("/") if p]
        if any(p.startswith(".") for p in parts):
            return None
        target = self.root.joinpath(*parts)
        # A directory answers with its index: npm documents (index.json) or a pip --find-links page (index.html).
        if target.is_dir():
            target = next((target / name for name in ("index.json", "index.html") if (target / name).is_file()),
                          target)
        return ("/".join(parts), target) if target.is_file() else None

    def serve(self, send_body: bool):
        resolved = self.resolve()
        faults = read_faults(self.root)
        if resolved is None or resolved[0] in faults.get("missing", ()):
            return self.respond(404, b"404 Not Found\n", "text/plain; charset=utf-8", send_body)
        rel, path = resolved
        content_type = CONTENT_TYPES.get(path.suffix, "application/octet-stream")
        if rel.startswith("npm/") and path.name == "index.json":
            return self.respond(200, self.rewritten_npm_document(path), content_type, send_body)
        corrupt, truncate = rel in faults.get("corrupt", ()), rel in faults.get("truncate", ())
        if corrupt or truncate:
            return self.respond_ranged(FaultyFile(path, truncate, corrupt), content_type, send_body)
        self.respond_ranged(path, content_type, send_body)

    def rewritten_npm_document(self, path: Path) -> bytes:
        """Root-relative tarball URLs become absolute on the address the client used (its Host header)."""
        document = json.loads(path.read_text())
        host, port = self.server.server_address[:2]
        base = f"http://{self.headers.get('Host') or f'{host}:{port}'}"
        for version_doc in document.get("versions", {}).values() or [document]:
            tarball = version_doc.get("dist", {}).get("tarball", "")
            if tarball.startswith("/"):
                version_doc["dist"]["tarball"] = base + tarball
        return json.dumps(document).encode()

    def respond_ranged(self, source: bytes | Path | FaultyFile, content_type: str, send_body: bool):
        """200 or 206 (single Range) from in-memory bytes or a file streamed in chunks; 416 when unsatisfiable."""
        if isinstance(source, Path):
            source = FaultyFile(source)
        size = len(source) if isinstance(source, bytes) else source.size
        try:
            byte_range = parse_range(self.headers.get("Range"), size)
        except ValueError:
            return self.respond(416, b"", content_type, send_body, [("Content-Range", f"bytes */{size}")])
        first, last = byte_range or (0, size - 1)
        count = last - first + 1
        headers = [("Accept-Ranges", "bytes")]
        if byte_range:
            headers.append(("Content-Range", f"bytes {first}-{last}/{size}"))
        status = 206 if byte_range else 200
        self.send_head(status, count, content_type, headers)
        sent = 0
        if send_body:
            with io.BytesIO(source) if isinstance(source, bytes) else source.open() as reader:
                reader.seek(first)
                while sent < count:
                    piece = reader.read(min(CHUNK, count - sent))
                    if not piece:
                        break
                    self.wfile.write(piece)
                    sent += len(piece)
        self.record(status, sent)

    def send_head(self, status, length, content_type, headers=()):
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(length))
        for name, value in headers:
            self.send_header(name, value)
        self.end_headers()

    def respond(self, status, body: bytes, content_type, send_body, headers=()):
        self.send_head(status, len(body), content_type, headers)
        if send_body:
            self.wfile.write(body)
        self.record(status, len(body) if send_body else 0)

    def record(self, status: int, sent: int):
        entry = {
            "time": datetime.datetime.now().astimezone().isoformat(),
            "method": self.command,
            "path": urllib.parse.unquote(urllib.parse.urlsplit(self.path).path),
            "range": self.headers.get("Range"),
            "status": status,
            "bytes": sent,
            "client": self.client_address[0],
            "user_agent": self.headers.get("User-Agent"),
        }
        with self.log_lock, open(self.root / REQUEST_LOG, "a") as log:
            log.write(json.dumps(entry) + "\n")


class MirrorServer(http.server.ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True


def make_server(root: Path, bind: str = "127.0.0.1", port: int = 0) -> MirrorServer:
    """A mirror bound to exactly this address (port 0 picks a free one); call serve_forever() to run it."""
    MirrorServer.address_family = socket.AF_INET6 if ":" in bind else socket.AF_INET
    handler = type("BoundMirrorHandler", (MirrorHandler,), {"root": root.resolve()})
    return MirrorServer((bind, port), handler)


def serve(root: Path, bind: str, port: int) -> None:
    """Serve root until interrupted, announcing the URL first (`ollama-claude mirror serve` uses it too)."""
    server = make_server(root, bind, port)
    host, bound_port = server.server_address[:2]
    print(f"serving {root} on http://{host}:{bound_port}/", flush=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()


def requests(root: Path) -> list[dict]:
    """The mirror's request log, oldest first."""
    log = root / REQUEST_LOG
    return [json.loads(line) for line in log.read_text().splitlines()] if log.is_file() else []


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
    args = parser.parse_args(argv)
    build_mirror(
        args.root,
        tuple(args.ollama_versions or OLLAMA_VERSIONS),
        None if args.no_claude_code else args.claude_code_version,
        release_size=args.release_size,
    )
    if args.command == "build":
        print(args.root)
        return
    serve(args.root, args.bind, args.port)


if __name__ == "__main__":
    main()
