"""
The fleet mirror's HTTP server (`ollama-claude mirror serve`; the lab's mirror is this server with faults):
static files with single-range requests, npm documents whose root-relative tarball URLs are made absolute on
the address the client used, and a JSON request log (``.requests.jsonl`` under the root). Dot-files are never
served.
"""

from __future__ import annotations

import datetime
import http.server
import io
import json
import re
import socket
import threading
import urllib.parse
from pathlib import Path

REQUEST_LOG = ".requests.jsonl"
CHUNK = 1 << 20
CONTENT_TYPES = {
    ".json": "application/json",
    ".html": "text/html; charset=utf-8",
    ".txt": "text/plain; charset=utf-8",
    ".tgz": "application/octet-stream",
    ".sh": "text/x-shellscript; charset=utf-8",
}


class FileView:
    """A file as served, streamed in chunks from ``open()``; ``size`` is what the response announces."""

    def __init__(self, path: Path):
        self.path, self.size = path, path.stat().st_size

    def open(self):
        return FileReader(self)


class FileReader:
    def __init__(self, view: FileView):
        self.view, self.file, self.position = view, open(view.path, "rb"), 0  # noqa: SIM115 (closed by __exit__)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.file.close()

    def seek(self, offset: int) -> None:
        self.position = offset
        self.file.seek(offset)

    def read(self, count: int) -> bytes:
        data = self.file.read(max(0, min(count, self.view.size - self.position)))
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
        parts = [p for p in rel.split("/") if p and p != "."]  # `a/./b` is `a/b` (apt asks for flat repos so)
        if any(p.startswith(".") for p in parts):  # dot-files, and `..` out of the root
            return None
        target = self.root.joinpath(*parts)
        # A directory answers with its index: npm documents (index.json) or a pip --find-links page (index.html).
        if target.is_dir():
            target = next((target / name for name in ("index.json", "index.html") if (target / name).is_file()),
                          target)
        return ("/".join(parts), target) if target.is_file() else None

    def serve(self, send_body: bool):
        resolved = self.resolve()
        view = self.view(*resolved) if resolved else None
        if view is None:
            return self.respond(404, b"404 Not Found\n", "text/plain; charset=utf-8", send_body)
        rel, path = resolved
        content_type = CONTENT_TYPES.get(path.suffix, "application/octet-stream")
        if rel.startswith("npm/") and path.name == "index.json":
            return self.respond(200, self.rewritten_npm_document(path), content_type, send_body)
        self.respond_ranged(view, content_type, send_body)

    def view(self, rel: str, path: Path) -> FileView | None:
        """How a file is served (None: as if it were missing); the lab's mirror overrides this with faults."""
        return FileView(path)

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

    def respond_ranged(self, source: bytes | FileView, content_type: str, send_body: bool):
        """200 or 206 (single Range) from in-memory bytes or a file streamed in chunks; 416 when unsatisfiable."""
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


def make_server(root: Path, bind: str = "127.0.0.1", port: int = 0,
                handler: type[MirrorHandler] = MirrorHandler) -> MirrorServer:
    """A mirror bound to exactly this address (port 0 picks a free one); call serve_forever() to run it."""
    MirrorServer.address_family = socket.AF_INET6 if ":" in bind else socket.AF_INET
    bound = type(f"Bound{handler.__name__}", (handler,), {"root": root.resolve()})
    return MirrorServer((bind, port), bound)


def serve(root: Path, bind: str, port: int, handler: type[MirrorHandler] = MirrorHandler) -> None:
    """Serve root until interrupted, announcing the URL first."""
    server = make_server(root, bind, port, handler)
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
