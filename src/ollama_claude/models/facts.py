"""
What the host's Ollama server holds, read from its HTTP API (never from ``ollama list`` tables).

Every fact answers "unknown" instead of failing while the server is not up yet: at prepare time the install
step may not have run, and pyinfra reads the facts again at execution time, after it has.
"""

from __future__ import annotations

from typing import Any

from pyinfra.api import FactBase

from ..ollama_api import ApiResponse, api_command, parse_response


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


class ModelCapabilities(FactBase[list[str] | None]):
    """
    A model's capabilities from ``/api/show`` (``tools`` is what Claude Code needs); ``None`` if the server
    does not have the model or does not answer.
    """

    def requires_command(self, base_url: str, model: str) -> str:
        return "curl"

    def command(self, base_url: str, model: str) -> str:
        return api_command(base_url, "/api/show", "POST", {"model": model})

    def process(self, output: list[str]) -> list[str] | None:
        response = parse_response(output)
        if not response.ok:
            return None
        return list(_json_object(response).get("capabilities") or [])


class OllamaSignin(FactBase[dict[str, Any]]):
    """
    Whether the server is signed in to ollama.com (cloud models), as ``{"signed_in": bool | None,
    "signin_url": str | None}``: ``POST /api/me`` answers 200 with the account, or 401 with the ``signin_url``
    that links the server's key; ``signed_in`` is None when the server does not answer. ``ollama signin``'s exit
    code says nothing, so the API is asked.
    """

    @staticmethod
    def default() -> dict[str, Any]:
        return {"signed_in": None, "signin_url": None}

    def requires_command(self, base_url: str) -> str:
        return "curl"

    def command(self, base_url: str) -> str:
        return api_command(base_url, "/api/me", "POST", {})

    def process(self, output: list[str]) -> dict[str, Any]:
        response = parse_response(output)
        if response.ok:
            return {"signed_in": True, "signin_url": None}
        if response.status == 401:
            return {"signed_in": False, "signin_url": _json_object(response).get("signin_url")}
        return self.default()


def _json_object(response: ApiResponse) -> dict[str, Any]:
    """The body as a JSON object, or {} for anything else (a proxy's HTML page, an empty body)."""
    try:
        body = response.json()
    except ValueError:
        return {}
    return body if isinstance(body, dict) else {}
