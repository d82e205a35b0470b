"""The allowlist loaded into the kernel (nft installed when missing), or removed; a host where it cannot hold fails."""

from __future__ import annotations

from typing import Any

from pyinfra import host, logger
from pyinfra.api import operation

from ..hostfail import fail_host
from ..packages import KNOWN_MANAGERS, install_command, package_manager
from .facts import NftAllowlist
from .rules import RULES_FILE, TABLE, wanted

OPT_IN = ("or set ollama_allow_unenforced_lan = True to serve every client that reaches the port (not "
          "recommended: the Ollama API has no authentication)")


def unenforceable(fact: dict[str, Any]) -> str | None:
    """Why the allowlist cannot be enforced on this host, or None (nft usable, or installable)."""
    if fact["state"] == "missing" and not package_manager():
        return f"nft (nftables) is missing and no known package manager ({KNOWN_MANAGERS}) was found to install it"
    if fact["state"] == "unusable":
        return f"nftables cannot be used on this host: {fact['error']}"
    return None


@operation()
def allowlist_loaded(port: int, clients: list[str], unenforced_ok: bool = False):
    """
    Our table inet ollama_claude as RULES_FILE describes it (written before this runs): loopback and ``clients``
    reach TCP ``port``, every other connection to it is reset. Loads only when the live table differs.

    + unenforced_ok: where nftables cannot work, warn and leave the port open instead of failing the host
    """
    fact = host.get_fact(NftAllowlist)
    reason = unenforceable(fact)
    if reason:
        if unenforced_ok:
            message = (f"ollama_allowed_clients is NOT enforced: {reason}; ollama_allow_unenforced_lan is on, so "
                       f"port {port} is open to every client that reaches it")
            logger.warning(f"{host.name}: {message}")
            host.noop(message)
            return
        yield fail_host(f"ollama_allowed_clients cannot be enforced: {reason}; fix: make nftables work on the host, "
                   f"{OPT_IN}")
        return
    if fact["state"] == "missing":
        manager = package_manager()
        yield (f"{{ {install_command(manager, 'nftables')}; }} && command -v nft >/dev/null || "
               f"{{ {fail_host(f'installing nftables with {manager} failed, so ollama_allowed_clients cannot be enforced; fix: make nftables installable (or install it) and run again, {OPT_IN}')}; }}")
    elif fact["state"] == "present" and fact["table"] == wanted(port, clients):
        host.noop(f"table inet {TABLE} already allows only loopback and {', '.join(clients)} on port {port}")
        return
    yield (f"nft -f {RULES_FILE} || {{ {fail_host(f'nft could not load {RULES_FILE}, so ollama_allowed_clients is not enforced; fix: see the nft error above, {OPT_IN}')}; }}")


@operation()
def allowlist_removed():
    """Our table out of the kernel (the rules file and unit are removed as files); other tables are untouched."""
    if host.get_fact(NftAllowlist)["state"] != "present":
        host.noop(f"no table inet {TABLE}")
        return
    yield f"nft delete table inet {TABLE}"


@operation()
def allowlist_on_darwin(port: int, unenforced_ok: bool = False):
    """
    macOS: the toolkit has no packet filter there (pf is the user's) and launchd no per-service one, so a listed
    allowlist fails the host before the server changes, unless the user accepts an unenforced one.
    """
    reason = (f"ollama_allowed_clients cannot be enforced on macOS (the toolkit has no packet filter there, launchd "
              f"no per-service one): port {port} would be open to every client that reaches it")
    if unenforced_ok:
        logger.warning(f"{host.name}: {reason}; ollama_allow_unenforced_lan is on, serving anyway")
        host.noop(f"{reason}; ollama_allow_unenforced_lan is on")
        return
    yield fail_host(f"{reason}; fix: filter the port with pf yourself and set ollama_allow_unenforced_lan = True, or "
               "drop ollama_allowed_clients and the LAN bind")
