"""
What the host's Ollama server holds, read from its HTTP API (never from ``ollama list`` tables).

Every fact answers "unknown" instead of failing while the server is not up yet: at prepare time the install
step may not have run, and pyinfra reads the facts again at execution time, after it has.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from pyinfra.api import FactBase

from ..ollama_api import ApiResponse, api_command, parse_response

#: ``num_ctx`` in /api/show's "parameters" text (one "name value" pair per line, as a Modelfile's PARAMETER).
_NUM_CTX = re.compile(r"^num_ctx\s+(\d+)\s*$", re.MULTILINE)


class OllamaModels(FactBase[dict[str, str] | None]):
    """
    Models the server lists, as ``{"name:tag": digest}`` (the manifest's sha256); ``None`` if it does not answer.
    """

    def requires_command(self, base_url: str) -> str:
        return "curl"

    def command(self, base_url: str) -> str:
        return api_command(base_url, "/api/tags")

    def process(self, output: list[str]) -> dict[str, str] | None:
        response = parse_response(output)
        if not response.ok:
            return None
        return {item["name"]: item["digest"] for item in _json_object(response).get("models") or []}


@dataclass(frozen=True)
class ShownModel:
    """What ``/api/show`` says of a model that decides whether Claude Code's tools work with it."""

    capabilities: list[str]
    num_ctx: int | None  # the model's own PARAMETER num_ctx: it overrides OLLAMA_CONTEXT_LENGTH
    trained_context: int | None  # model_info "<arch>.context_length": Ollama caps num_ctx there

    def context_in_effect(self, server_default: int) -> int:
        """The context a request gets (server/routes.go@v0.32.15:129-143 and 2336-2345): the model's num_ctx
        over the server's OLLAMA_CONTEXT_LENGTH, capped at the trained context."""
        wanted = self.num_ctx or server_default
        return min(wanted, self.trained_context) if self.trained_context else wanted


class ModelShow(FactBase[ShownModel | None]):
    """A model as ``/api/show`` describes it; ``None`` if the server does not have it or does not answer."""

    def requires_command(self, base_url: str, model: str) -> str:
        return "curl"

    def command(self, base_url: str, model: str) -> str:
        return api_command(base_url, "/api/show", "POST", {"model": model})

    def process(self, output: list[str]) -> ShownModel | None:
        response = parse_response(output)
        if not response.ok:
            return None
        body = _json_object(response)
        info = body.get("model_info") or {}
        architecture = info.get("general.architecture")
        trained = info.get(f"{architecture}.context_length") if architecture else None
        num_ctx = _NUM_CTX.search(str(body.get("parameters") or ""))
        return ShownModel(
            capabilities=list(body.get("capabilities") or []),
            num_ctx=int(num_ctx.group(1)) if num_ctx else None,
            trained_context=trained if isinstance(trained, int) else None,
        )


class ModelCapabilities(ModelShow):
    """
    A model's capabilities from ``/api/show`` (``tools`` is what Claude Code needs); ``None`` if the server
    does not have the model or does not answer.
    """

    def process(self, output: list[str]) -> list[str] | None:  # type: ignore[override]
        shown = super().process(output)
        return shown.capabilities if shown else None


class OllamaSignin(FactBase[dict[str, Any]]):
    """
    Whether the server is signed in to ollama.com (cloud models), as ``{"signed_in": bool | None,
    "signin_url": str | None, "unreachable": bool}``, from ``POST /api/me``: signed in only when it answers an
    object with a non-empty ``name``; 401 carries the ``signin_url`` that links the server's key. When the
    server cannot reach ollama.com it answers 200 ``null`` (0.15-0.23.1, server/routes.go@v0.16.3:1866-1895)
    or 503 ``{"error":"account unavailable"}`` (from 0.23.2): ``unreachable``, not a sign-in problem.
    ``signed_in`` is None when the server does not answer. ``ollama signin``'s exit code says nothing.
    """

    @staticmethod
    def default() -> dict[str, Any]:
        return {"signed_in": None, "signin_url": None, "unreachable": False}

    def requires_command(self, base_url: str) -> str:
        return "curl"

    def command(self, base_url: str) -> str:
        return api_command(base_url, "/api/me", "POST", {})

    def process(self, output: list[str]) -> dict[str, Any]:
        response = parse_response(output)
        if response.status == 401:
            return {**self.default(), "signed_in": False, "signin_url": _json_object(response).get("signin_url")}
        if response.ok or response.status == 503:
            name = _json_object(response).get("name") if response.ok else None
            if isinstance(name, str) and name:
                return {**self.default(), "signed_in": True}
            return {**self.default(), "signed_in": False, "unreachable": True}
        return self.default()


def _json_object(response: ApiResponse) -> dict[str, Any]:
    """The body as a JSON object, or {} for anything else (a proxy's HTML page, an empty body)."""
    try:
        body = response.json()
    except ValueError:
        return {}
    return body if isinstance(body, dict) else {}
