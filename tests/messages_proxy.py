"""
A Messages-API proxy for tests: records every request (path, headers, raw body) and forwards it to an upstream
(the Ollama stand-in), or answers 500 without upstream (a capture endpoint).

With ``anthropic=True`` it plays Anthropic's side of the Messages API in front of the stand-in: current Claude
models get ``role: "system"`` messages inside ``messages`` (Claude Code 2.1.332 appends a ``<total_tokens>``
reminder for models with the ``total_tokens_reminder`` capability), which Anthropic reads as system text; the
proxy moves them into ``system`` before the stand-in's scripted model sees the conversation.
"""

from __future__ import annotations

import http.server
import json
import threading
import urllib.error
import urllib.request


class Recorder(http.server.ThreadingHTTPServer):
    """Forwards to ``upstream`` (or answers 500 when None) and keeps every request: path, headers, raw body."""

    def __init__(self, upstream: str | None, anthropic: bool = False, host: str = "127.0.0.1"):
        self.upstream, self.anthropic, self.seen = upstream, anthropic, []
        super().__init__((host, 0), _Forward)
        threading.Thread(target=self.serve_forever, daemon=True).start()

    @property
    def url(self) -> str:
        return f"http://{self.server_address[0]}:{self.server_address[1]}"

    def bodies(self) -> list[dict]:
        return [json.loads(r["body"]) for r in self.seen if r["path"].startswith("/v1/messages") and r["body"]]

    def saw(self, secret: str) -> bool:
        return any(secret in json.dumps(record) for record in self.seen)


class _Forward(http.server.BaseHTTPRequestHandler):
    server: Recorder

    def _handle(self) -> None:
        body = self.rfile.read(int(self.headers.get("content-length") or 0))
        self.server.seen.append({"method": self.command, "path": self.path, "client": self.client_address[0],
                                 "headers": dict(self.headers),
                                 "body": body.decode(errors="replace")})
        if self.server.upstream is None:
            self._reply(500, b'{"type":"error","error":{"type":"api_error","message":"capture only"}}',
                        "application/json")
            return
        if self.server.anthropic and body and self.path.startswith("/v1/messages"):
            body = system_messages_to_system(body)
        request = urllib.request.Request(self.server.upstream + self.path, data=body or None, method=self.command,
                                         headers={k: v for k, v in self.headers.items()
                                                  if k.lower() not in ("host", "content-length")})
        try:
            with urllib.request.urlopen(request, timeout=60) as response:
                self._reply(response.status, response.read(), response.headers.get("content-type", ""))
        except urllib.error.HTTPError as error:
            self._reply(error.code, error.read(), error.headers.get("content-type", ""))

    def _reply(self, status: int, data: bytes, content_type: str) -> None:
        self.send_response(status)
        if content_type:
            self.send_header("content-type", content_type)
        self.send_header("content-length", str(len(data)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(data)

    do_GET = do_POST = do_HEAD = _handle

    def log_message(self, *args) -> None:
        pass



def system_messages_to_system(body: bytes) -> bytes:
    data = json.loads(body)
    system = data.get("system") or []
    if isinstance(system, str):
        system = [{"type": "text", "text": system}]
    messages = []
    for message in data.get("messages") or []:
        if message.get("role") == "system":
            content = message.get("content")
            system += [{"type": "text", "text": content}] if isinstance(content, str) else list(content or [])
        else:
            messages.append(message)
    data["system"], data["messages"] = system, messages
    return json.dumps(data).encode()
