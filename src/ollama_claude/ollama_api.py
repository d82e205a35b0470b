"""
Talk to an Ollama server's HTTP API from the target host, for facts and checks.

The API is the source of truth (not ``ollama list`` tables): facts run ``curl`` on the host, which prints the
body and then the HTTP status on a line of its own; :func:`parse_response` splits them again.
Status ``0`` means the server did not answer at all.
"""

from __future__ import annotations

import json
import shlex
from dataclasses import dataclass
from typing import Any

#: The last line curl prints, after the body, so a fact sees the status even for error bodies.
_STATUS_MARK = "__HTTP_STATUS__"


def api_command(base_url: str, path: str, method: str = "GET", body: dict[str, Any] | None = None,
                timeout: int = 10) -> str:
    """A curl command that always exits 0 and ends its output with the HTTP status (0 if unreachable)."""
    parts = ["curl", "-sS", "--max-time", str(timeout), "-X", method, "-w", f"\\n{_STATUS_MARK}%{{http_code}}\\n"]
    if body is not None:
        parts += ["-H", "Content-Type: application/json", "--data", json.dumps(body, separators=(",", ":"))]
    parts.append(f"{base_url.rstrip('/')}{path}")
    quoted = " ".join(shlex.quote(part) for part in parts)
    return f"{quoted} 2>/dev/null || echo {_STATUS_MARK}000"


@dataclass(frozen=True)
class ApiResponse:
    status: int
    text: str

    @property
    def ok(self) -> bool:
        return 200 <= self.status < 300

    def json(self) -> Any:
        return json.loads(self.text) if self.text.strip() else None

    @property
    def error(self) -> str:
        """The server's ``{"error": ...}`` message, or the raw body."""
        try:
            body = self.json()
        except ValueError:
            return self.text.strip()
        if isinstance(body, dict) and "error" in body:
            error = body["error"]
            return error.get("message", str(error)) if isinstance(error, dict) else str(error)
        return self.text.strip()


def parse_response(output: list[str]) -> ApiResponse:
    """Split curl's output from :func:`api_command` back into status and body."""
    body: list[str] = []
    status = 0
    for line in output:
        if line.startswith(_STATUS_MARK):
            status = int(line[len(_STATUS_MARK):] or 0)
        else:
            body.append(line)
    return ApiResponse(status=status, text="\n".join(body))
