"""Verify: the last step of the deploy, and all of deploys/verify.py."""

from __future__ import annotations

from pyinfra import state
from pyinfra.api import deploy

from ..context import host_settings
from .operations import checklist
from .report import write_at_exit


@deploy("Verify the checklist")
def verify_host() -> None:
    """Run the checklist on this host; the fleet report is written once, when pyinfra finishes every host."""
    settings = host_settings()
    write_at_exit(state, settings.verify_report_dir)
    checklist(settings=settings, name="Checklist: Ollama, models, Claude Code env, edit test")
