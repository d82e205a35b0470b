"""
Run one of our operations against facts from a fixture, without a host: the way pyinfra tests its own.

A case is a dict (usually a JSON file under tests/operations/<module>.<operation>/): ``args``, ``kwargs``,
``facts`` ({"FactClassName": value} or {"FactClassName": {"key=value, key=value": value}} for facts taking
arguments), then the expectation: ``commands`` (strings, or ["upload", content, dest] for uploads) and/or
``noop_description``, or ``exception`` {"name", "message" (substring)}.
"""

from __future__ import annotations

import json
from io import StringIO
from pathlib import Path
from typing import Any

from pyinfra.api.command import FileUploadCommand, StringCommand
from pyinfra.context import ctx_host, ctx_state

OPERATION_CASES = Path(__file__).parent / "operations"


def _fact_key(kwargs: dict[str, Any]) -> str:
    return ", ".join(f"{key}={value}" for key, value in sorted(kwargs.items()))


class FakeHost:
    """Answers get_fact from the fixture and records no-op messages."""

    def __init__(self, facts: dict[str, Any], data: dict[str, Any] | None = None, name: str = "testhost"):
        self.facts = facts
        self.name = name
        self.noops: list[str] = []
        self.data = data or {}
        self.in_op = False

    def get_fact(self, fact_cls: type, *args: Any, **kwargs: Any) -> Any:
        name = fact_cls.__name__
        if name not in self.facts:
            raise AssertionError(f"fixture has no fact {name} (asked with {kwargs})")
        value = self.facts[name]
        if isinstance(value, dict) and kwargs and _fact_key(kwargs) in value:
            return value[_fact_key(kwargs)]
        return value

    def noop(self, description: str) -> None:
        self.noops.append(description)


class FakeState:
    """Just enough state for operations that only read facts and yield commands."""

    is_executing = False
    config = None


def render_command(command: Any) -> Any:
    if isinstance(command, str):
        return command.strip()
    if isinstance(command, StringCommand):
        return command.get_raw_value().strip()
    if isinstance(command, FileUploadCommand):
        src = command.src.getvalue() if isinstance(command.src, StringIO) else str(command.src)
        return ["upload", src, command.dest]
    raise AssertionError(f"unexpected command type {type(command).__name__}: {command!r}")


def run_operation(operation: Any, facts: dict[str, Any], *args: Any, **kwargs: Any) -> tuple[list[Any], list[str]]:
    """Unroll the operation's generator against the facts; return (commands, no-op messages)."""
    fake = FakeHost(facts)
    with ctx_state.use(FakeState()), ctx_host.use(fake):
        commands = [render_command(command) for command in operation._inner(*args, **kwargs)]
    return commands, fake.noops


def load_cases(operation_dir: str) -> list[tuple[str, dict[str, Any]]]:
    folder = OPERATION_CASES / operation_dir
    return [(path.stem, json.loads(path.read_text())) for path in sorted(folder.glob("*.json"))]


def check_case(operation: Any, case: dict[str, Any]) -> None:
    """Assert one fixture case: its commands, its no-op message or its exception."""
    expected_error = case.get("exception")
    try:
        commands, noops = run_operation(operation, case.get("facts", {}), *case.get("args", []), **case.get("kwargs", {}))
    except Exception as error:
        if not expected_error:
            raise
        assert type(error).__name__ == expected_error["name"], error
        assert expected_error["message"] in str(error), str(error)
        return
    assert not expected_error, f"expected {expected_error['name']}, got commands {commands}"
    assert commands == case.get("commands", []), json.dumps(commands, indent=1)
    if "noop_description" in case:
        assert case["noop_description"] in noops, noops
