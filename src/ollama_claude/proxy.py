"""
Hosts behind an HTTP(S) proxy: the proxy settings as every download of the deploy needs them.

Downloads run on the host (curl for Ollama releases and Claude Code, pip for the LiteLLM route, the package
manager for zstd): their operations get the proxy as pyinfra's ``_env`` (exported inside sudo, for the operation's
commands and the facts it reads), with the URLs as HiddenValues, so a ``user:password@`` never shows in pyinfra's
output. The Ollama service gets ``HTTPS_PROXY``/``HTTP_PROXY``/``NO_PROXY`` in our drop-in (model pulls).
Loopback is never proxied: ``no_proxy`` always holds 127.0.0.1, localhost, ::1 and the host's Ollama bind.
"""

from __future__ import annotations

import re
from ipaddress import ip_address
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from pyinfra.api.hiddenvalue import HiddenValue

if TYPE_CHECKING:
    from .settings import Settings

#: Always reached directly, whatever the user lists.
LOOPBACK = ("127.0.0.1", "localhost", "::1")
_CREDENTIALS = re.compile(r"^([A-Za-z][A-Za-z0-9+.-]*://)?[^/]*@")


def redact(url: str) -> str:
    """The URL with any ``user:password@`` replaced by ``***@``: what may be printed (even of a malformed URL)."""
    return _CREDENTIALS.sub(r"\1***@", url)


def has_credentials(url: str | None) -> bool:
    return bool(url) and "@" in urlsplit(url).netloc


def proxy_has_credentials(settings: Settings) -> bool:
    """Whether a proxy URL holds a user (and password): files holding it are then root's only."""
    return any(has_credentials(url) for url in proxies(settings).values())


def _host_of(url: str | None) -> str | None:
    return urlsplit(url).hostname if url else None


def no_proxy(settings: Settings) -> list[str]:
    """The user's ``no_proxy`` plus loopback, the Ollama bind address and the Ollama URL's host (deduplicated)."""
    direct = [*settings.no_proxy, *LOOPBACK]
    bind = settings.ollama_host
    if not ip_address(bind).is_unspecified:
        direct.append(bind)
    if base := _host_of(settings.ollama_base_url):
        direct.append(base)
    return list(dict.fromkeys(direct))


def proxies(settings: Settings) -> dict[str, str]:
    """``{"https_proxy": url, "http_proxy": url}`` as set (http_proxy defaults to https_proxy); empty: no proxy."""
    found = {}
    if settings.https_proxy:
        found["https_proxy"] = settings.https_proxy
    if http := settings.http_proxy or settings.https_proxy:
        found["http_proxy"] = http
    return found


def download_arguments(settings: Settings) -> dict[str, Any]:
    """pyinfra global arguments for an operation that downloads: ``{"_env": {...}}``, or {} without a proxy.

    Both spellings of each variable (curl reads http_proxy in lower case only, some tools only upper case);
    proxy URLs are HiddenValues printed as their redacted form."""
    found = proxies(settings)
    if not found:
        return {}
    env: dict[str, Any] = {}
    for key, url in found.items():
        hidden = HiddenValue(url, masked_value=redact(url))
        env[key] = hidden
        env[key.upper()] = hidden
    direct = ",".join(no_proxy(settings))
    env["no_proxy"] = env["NO_PROXY"] = direct
    return {"_env": env}


def service_environment(settings: Settings) -> dict[str, str]:
    """The Ollama server's proxy environment (Go's net/http reads the upper-case names); empty without a proxy."""
    found = proxies(settings)
    if not found:
        return {}
    return {**{key.upper(): url for key, url in found.items()}, "NO_PROXY": ",".join(no_proxy(settings))}
