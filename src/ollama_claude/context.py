"""The current host's validated settings, for deploys and operations running inside pyinfra."""

from __future__ import annotations

from pyinfra import host, state

from .settings import Settings, fleet_settings


def host_settings() -> Settings:
    """This host's settings; the first call validates the whole inventory (stopping the run on any error)."""
    return fleet_settings(state)[host.name]
