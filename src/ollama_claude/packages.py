"""Installing a distro package on a Linux host with whichever package manager it has (zstd for the release
archives, nftables for the allowlist): one table of non-interactive commands, tried in this order."""

from __future__ import annotations

from pyinfra import host
from pyinfra.facts.server import Which

#: Package manager -> non-interactive install of ``{package}`` (apt refreshes its lists only when it must).
_INSTALLS = {
    "apt-get": ("export DEBIAN_FRONTEND=noninteractive; apt-get install -y -q {package} "
                "|| {{ apt-get update -q && apt-get install -y -q {package}; }}"),
    "dnf": "dnf install -y -q {package}",
    "yum": "yum install -y -q {package}",
    "zypper": "zypper --non-interactive install {package}",
    "apk": "apk add --no-cache {package}",
}
#: For messages: the package managers the toolkit knows, in the order they are tried.
KNOWN_MANAGERS = ", ".join(_INSTALLS)


def package_manager() -> str | None:
    """The first known package manager on the host, or None."""
    return next((manager for manager in _INSTALLS if host.get_fact(Which, command=manager)), None)


def install_command(manager: str, package: str) -> str:
    return _INSTALLS[manager].format(package=package)
