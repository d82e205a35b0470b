"""Preconditions: no root or a missing tool stops the lab before it touches anything, naming the fix."""

import pytest

from ollama_claude.lab import system
from ollama_claude.lab.errors import LabError


def test_non_root_is_told_to_use_sudo(monkeypatch):
    monkeypatch.setattr(system.os, "geteuid", lambda: 1000)
    with pytest.raises(LabError, match="needs root.*sudo"):
        system.require_lab_host()


def test_missing_tools_name_the_apt_packages(monkeypatch):
    monkeypatch.setattr(system.os, "geteuid", lambda: 0)
    monkeypatch.setattr(
        system.shutil, "which", lambda tool: None if tool in ("debootstrap", "systemd-nspawn") else tool
    )
    with pytest.raises(LabError, match="apt-get install debootstrap systemd-container$"):
        system.require_lab_host()
