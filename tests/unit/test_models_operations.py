"""The models operations' decisions, from fact fixtures (tests/operations/models.*/*.json)."""

import pytest
from harness import check_case, load_cases

from ollama_claude.models import operations

OPERATIONS = ["models_pulled", "models_pruned", "tools_capable", "cloud_signed_in"]


@pytest.mark.parametrize(
    ("operation", "case"),
    [
        pytest.param(name, case, id=f"{name}/{case_name}")
        for name in OPERATIONS
        for case_name, case in load_cases(f"models.{name}")
    ],
)
def test_operation_case(operation: str, case: dict) -> None:
    check_case(getattr(operations, operation), case)


@pytest.mark.parametrize("name", OPERATIONS)
def test_every_operation_has_cases(name: str) -> None:
    assert len(load_cases(f"models.{name}")) >= 3
