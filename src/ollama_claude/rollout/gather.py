"""
What `status` and `rollout` read from every host, gathered by pyinfra itself (the inventory's connection settings,
sudo, group_data and ``--data`` apply as in the deploy): the deploy file ``gather_deploy.py`` calls
``gather_host()`` per host (facts only, no operation), and the collected hosts are written as JSON to the path in
``OLLAMA_CLAUDE_GATHER_OUT`` when pyinfra's process ends. A host pyinfra could not reach is listed as such.
"""

from __future__ import annotations

import atexit
import json
import os
from pathlib import Path
from typing import Any

from pyinfra import host, state

from ..context import host_settings
from ..models.facts import OllamaModels
from ..ollama.facts import OllamaServerVersion
from ..verify.checks import claude_command, ollama_url
from ..verify.facts import ClaudeCodeVersion
from .hoststate import HostState

GATHER_OUT_ENV = "OLLAMA_CLAUDE_GATHER_OUT"
DEPLOY_FILE = Path(__file__).with_name("gather_deploy.py")


def gather_host() -> None:
    settings = host_settings()
    found = host.get_fact(HostState)
    url = ollama_url(settings)
    users = [user.name for user in settings.claude_users]
    claude = (host.get_fact(ClaudeCodeVersion, user=users[0], executable=claude_command(settings)) if users
              else found["claude_link"])
    models = host.get_fact(OllamaModels, base_url=url)
    _collected(state)[host.name] = {
        "host": host.name,
        "groups": sorted(group for group in getattr(host, "groups", ()) if group != "all"),
        "reachable": True,
        "running": {"ollama_version": host.get_fact(OllamaServerVersion, base_url=url),
                    "claude_code_version": claude},
        "installed": {"ollama_version": found["ollama_link"], "claude_code_version": found["claude_link"]},
        "pins": {"ollama_version": settings.ollama_version, "claude_code_version": settings.claude_code_version},
        "recorded": found["state"],
        "last_verify": found["verify"],
        "models": sorted(models) if models is not None else None,
        "ollama_download_url": settings.ollama_download_url,
        "claude_code_registry": settings.claude_code_registry,
        "users": users,
    }


def _collected(run_state: Any) -> dict[str, Any]:
    collected = getattr(run_state, "_ollama_claude_gather", None)
    if collected is None:
        collected = run_state._ollama_claude_gather = {}
        atexit.register(_write, run_state)
    return collected


def _write(run_state: Any) -> None:
    path = os.environ.get(GATHER_OUT_ENV)
    if not path:
        return
    collected = _collected(run_state)
    limit = getattr(run_state, "limit_hosts", None)
    hosts = []
    for inventory_host in run_state.inventory:
        if isinstance(limit, list) and inventory_host not in limit:
            continue
        hosts.append(collected.get(inventory_host.name) or {"host": inventory_host.name, "reachable": False})
    Path(path).write_text(json.dumps({"hosts": hosts}, indent=2) + "\n")
