"""The package installs cleanly: `pip install .` builds it without any setuptools deprecation warning."""

from __future__ import annotations

import re
import subprocess
import sys
import tomllib
from pathlib import Path

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


@pytest.mark.timeout(300)
def test_wheel_carries_every_template_where_the_package_looks_for_them(tmp_path):
    """`pip install .` (or the wheel, for `pyinfra @local` on a box) must render units and settings: before, the
    templates stayed at the repository root and an installed toolkit failed at its first render."""
    import zipfile

    from ollama_claude import templating

    done = subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "-q", "-w", str(tmp_path), str(REPO)],
                          capture_output=True, text=True, timeout=280, check=False)
    assert done.returncode == 0, done.stdout + done.stderr
    wheel = next(tmp_path.glob("ollama_claude-*.whl"))
    inside = set(zipfile.ZipFile(wheel).namelist())
    expected = {f"ollama_claude/templates/{p.relative_to(REPO / 'templates')}"
                for p in (REPO / "templates").rglob("*") if p.is_file()}
    assert expected and expected <= inside, sorted(expected - inside)
    assert templating.TEMPLATES == Path(templating.__file__).resolve().parent / "templates"
