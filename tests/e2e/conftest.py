"""Every test under tests/e2e runs on lab hosts: mark them so `-m "not lab"` leaves them out."""

import pytest

from ollama_claude.lab.release_mirror import serve_release_mirror


def pytest_collection_modifyitems(items):
    for item in items:
        if "/tests/e2e/" in str(item.path):
            item.add_marker(pytest.mark.lab)


@pytest.fixture(scope="module")
def provisioned(lab, pyinfra_run):
    """The whole deploy (deploys/ollama_claude.py) on the module's lab, downloading from the lab's release mirror."""
    serve_release_mirror(lab)
    run = pyinfra_run("deploys/ollama_claude.py")
    assert run.rc == 0, run
    return run
