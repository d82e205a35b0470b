"""
The proxy's own operations: its pinned virtualenv (installed from a wheelhouse where hosts cannot reach a
package index) and its service, restarted only when something it reads changed, then waited for.
"""

from __future__ import annotations

import re
import shlex
from urllib.parse import urlsplit

from pyinfra import host
from pyinfra.api import operation
from pyinfra.facts.systemd import SystemdEnabled

from ..templating import render
from .facts import MARKER, LitellmAlive, LitellmVirtualenvs


def is_url(location: str) -> bool:
    return re.match(r"^https?://", location) is not None


@operation()
def litellm_virtualenv(version: str, root: str, find_links: str | None = None, cleanup: str | None = None):
    """
    ``litellm[proxy]==version`` in its own virtualenv ``<root>/<version>``; other versions are removed.

    + version: the pinned LiteLLM release
    + root: parent of the versioned virtualenvs
    + find_links: a wheelhouse (URL, or a directory on the host) to install from with ``--no-index``; pip
      itself runs from the wheelhouse's pip wheel, so the host needs neither pip nor ensurepip. None: the
      host's own pip index (needs python3-venv)
    + cleanup: a path removed after a successful install (the uploaded wheelhouse)
    """
    venvs = host.get_fact(LitellmVirtualenvs, root=root)
    if venvs.get(version) and set(venvs) == {version}:
        host.noop(f"LiteLLM {version} is installed in {root}/{version}")
        return
    if venvs.get(version):
        keep = shlex.quote(f"{root}/{version}")
        yield f'for old in {shlex.quote(root)}/*; do [ "$old" = {keep} ] || rm -rf "$old"; done'
        return
    yield render(
        "litellm/install.sh.j2",
        venv=f"{root}/{version}", root=root, version=version, requirement=f"litellm[proxy]=={version}",
        find_links=find_links.rstrip("/") + "/" if find_links else None,
        find_links_url=bool(find_links and is_url(find_links)), marker=MARKER, cleanup=cleanup,
        # A plain-http wheelhouse (a LAN mirror) is what the operator chose; pip would refuse it otherwise.
        trusted_host=urlsplit(find_links).hostname if find_links and find_links.startswith("http://") else None,
        host_name=host.name,
    )


@operation(is_idempotent=False)
def litellm_service(unit: str, url: str, restart: bool = False, timeout: int = 120):
    """
    Start (or restart, when ``restart``) the proxy's unit and wait until ``<url>/health/liveliness`` answers;
    on timeout print the journal tail and fail this host. Nothing happens when it is enabled and answering.

    + unit: the systemd unit
    + url: the proxy's URL on the host
    + restart: its virtualenv, config, key or unit changed in this run
    + timeout: seconds to wait for the answer
    """
    enabled = host.get_fact(SystemdEnabled, services=unit).get(unit, False)
    if not restart and enabled and host.get_fact(LitellmAlive, url=url):
        host.noop(f"the LiteLLM proxy is answering on {url}")
        return
    yield render(
        "litellm/restart-and-wait.sh.j2", unit=unit, health_url=f"{url}/health/liveliness", timeout=timeout,
        host_name=host.name,
    )
