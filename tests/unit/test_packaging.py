"""The package installs cleanly: `pip install .` builds it without any setuptools deprecation warning."""

from __future__ import annotations

import re
import subprocess
import sys
import tomllib

import pytest
from packaging.requirements import Requirement
from packaging.version import Version
from pyinfra_cli_run import REPO

PYPROJECT = tomllib.loads((REPO / "pyproject.toml").read_text())


def test_license_is_an_spdx_string():
    """A `project.license` table is deprecated (setuptools stops accepting it after 2027-02-18)."""
    assert PYPROJECT["project"]["license"] == "MIT"
    assert not any(c.startswith("License ::") for c in PYPROJECT["project"].get("classifiers", []))


def test_build_backend_understands_spdx_license_strings():
    """PEP 639 strings need setuptools 77: an older backend would reject the string."""
    setuptools = next(Requirement(r) for r in PYPROJECT["build-system"]["requires"]
                      if Requirement(r).name == "setuptools")
    lowest = min((Version(s.version) for s in setuptools.specifier if s.operator in (">=", "==", "~=")),
                 default=None)
    assert lowest is not None and lowest >= Version("77"), setuptools


@pytest.mark.timeout(300)
def test_wheel_builds_without_deprecation_warnings(tmp_path):
    """What `pip install .` runs: the isolated PEP 517 build, its output checked for any warning."""
    done = subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "-v", "-w", str(tmp_path), str(REPO)],
        capture_output=True, text=True, timeout=280, check=False,
    )
    output = done.stdout + done.stderr
    assert done.returncode == 0, output
    warnings = [line for line in output.splitlines() if re.search(r"deprecat|\w+Warning\b", line, re.IGNORECASE)]
    assert not warnings, "\n".join(warnings)
