"""Every test under tests/e2e runs on lab hosts: mark them so `-m "not lab"` leaves them out."""

import pytest


def pytest_collection_modifyitems(items):
    for item in items:
        if "/tests/e2e/" in str(item.path):
            item.add_marker(pytest.mark.lab)
