"""Every JSON case under tests/operations/<concern>.<operation>/ run against its operation (no hosts)."""

from __future__ import annotations

import importlib
from pathlib import Path

import pytest
from harness import OPERATION_CASES, check_case, load_cases

SOURCE = Path(__file__).resolve().parent.parent / "src" / "ollama_claude"


def _cases():
    for folder in sorted(path for path in OPERATION_CASES.iterdir() if path.is_dir()):
        concern, _, operation_name = folder.name.partition(".")
        # a concern's operations, or a module below the concerns that several share (ollama_claude.managedfiles)
        module = importlib.import_module(
            f"ollama_claude.{concern}.operations" if (SOURCE / concern).is_dir() else f"ollama_claude.{concern}")
        operation = getattr(module, operation_name)
        for case_name, case in load_cases(folder.name):
            yield pytest.param(operation, case, id=f"{folder.name}/{case_name}")


@pytest.mark.parametrize(("operation", "case"), list(_cases()))
def test_operation_case(operation, case):
    check_case(operation, case)
