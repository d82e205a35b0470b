"""Verify: the last step of the deploy, and all of deploys/verify.py."""

from __future__ import annotations

from pyinfra import state
from pyinfra.api import deploy

from ..context import host_settings
from ..privilege import user_privilege
from .operations import checklist, write_chosen_model
from .report import write_at_exit


@deploy("Verify the checklist")
def verify_host(write_default: bool = True) -> None:
    """
    Run the checklist on this host; the fleet report is written once, when pyinfra finishes every host.

    + write_default: apply the chain's choice as each user's default (with verify_write_default); the
      checklist-only deploy passes False so it never changes anything
    """
    settings = host_settings()
    write_at_exit(state, settings.verify_report_dir)
    checklist(settings=settings, name="Checklist: Ollama, models, Claude Code env, edit test")
    if not (write_default and settings.verify_write_default):
        return
    for user in settings.claude_users:
        write_chosen_model(settings=settings, user=user, name=f"{user.name}: the model the chain chose as default",
                           **user_privilege(user.name))
