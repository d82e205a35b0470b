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


@pytest.fixture(scope="module")
def mac_lab(request):
    """A fresh lab with a Mac-shaped laptop and a Linux GPU box: mac1 (group laptops, `@macos`: Debian with a
    Mac userland, reached as its user dev, see lab/macos) and gpu1 (group gpu). Tests using pyinfra_run on it
    pass ``target=mac_lab``."""
    from pathlib import Path

    shared = request.config.pluginmanager.get_plugin(str(Path(__file__).resolve().parents[1] / "conftest.py"))
    yield from shared.disposable_lab(shared.TEST_LAB, shared.TEST_SUBNET, ["mac1:laptops@macos", "gpu1"])
