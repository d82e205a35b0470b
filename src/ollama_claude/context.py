"""The current host's validated settings, for deploys and operations running inside pyinfra."""

from __future__ import annotations

import os
import sys
from types import ModuleType

from pyinfra import host, state

from .settings import Settings, fleet_settings

#: sys.modules names under which files pyinfra runs with exec() are known to inspect (see name_exec_file).
EXEC_FILE_MODULE = "_ollama_claude_exec_file:"


def host_settings() -> Settings:
    """This host's settings; the first call validates the whole inventory (stopping the run on any error)."""
    name_exec_file(state.current_exec_filename)
    return fleet_settings(state)[host.name]


def name_exec_file(filename: str | None) -> None:
    """
    Name the deploy file pyinfra is running as a module's file, once. pyinfra orders every operation by the
    line numbers on its call stack (``inspect.stack()``); for a frame whose file belongs to no module, as a deploy
    file run with ``exec()``, ``inspect.getmodule`` walks all of ``sys.modules`` again, per frame and per
    operation: most of the controller's CPU per host on a re-run (bench/, "controller CPU"). Known as a module's
    file, each of those lookups is one dict access. Nothing imports the placeholder module.
    """
    if not filename:
        return
    name = EXEC_FILE_MODULE + os.path.abspath(filename)
    if name not in sys.modules:
        placeholder = ModuleType(name, "placeholder: a deploy file pyinfra runs with exec()")
        placeholder.__file__ = filename
        sys.modules[name] = placeholder
