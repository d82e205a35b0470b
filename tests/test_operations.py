"""Every JSON case under tests/operations/<concern>.<operation>/ run against its operation (no hosts)."""

from __future__ import annotations

import importlib

import pytest
from harness import OPERATION_CASES, check_case, load_cases


def _cases():
    for folder in sorted(path for path in OPERATION_CASES.iterdir() if path.is_dir()):
        concern, _, operation_name = folder.name.partition(".")
        module = importlib.import_module(f"ollama_claude.{concern}.operations")
        operation = getattr(module, operation_name)
        for case_name, case in load_cases(folder.name):
            yield pytest.param(operation, case, id=f"{folder.name}/{case_name}")


@pytest.mark.parametrize(("operation", "case"), list(_cases()))
def test_operation_case(operation, case):
    check_case(operation, case)
