"""The deploy's part of the record: read what the host runs before anything changes, record the pins after."""

from __future__ import annotations

from pyinfra import host
from pyinfra.api import deploy

from ..context import host_settings
from .hoststate import HostState, record_pins


def pins_before() -> dict[str, str | None]:
    """The versions the host runs before this deploy changes anything (call it first in the deploy file)."""
    found = host.get_fact(HostState)
    current = (found["state"] or {}).get("current") if isinstance(found["state"], dict) else None
    if current:
        return {"ollama_version": current.get("ollama_version"),
                "claude_code_version": current.get("claude_code_version")}
    return {"ollama_version": found["ollama_link"], "claude_code_version": found["claude_link"]}


def deployed_pins() -> dict[str, str]:
    settings = host_settings()
    return {"ollama_version": settings.ollama_version, "claude_code_version": settings.claude_code_version}


@deploy("Record the pins on the host")
def record_host_pins(before: dict[str, str | None]) -> None:
    """state.json: the pins this deploy installed, and (when they changed) the ones the host ran before."""
    record_pins(name="Record current and previous pins", pins=deployed_pins(), running=before)
