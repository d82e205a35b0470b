"""
The lab's proxy-only topology: hosts reach the release mirror only through an HTTP proxy on the lab gateway.

The mirror keeps its address (the bridge address, port 8470) but an nftables table of the lab rejects every
connection to that port that arrives on the lab bridge; tinyproxy (Debian's tinyproxy-bin, a lab service) listens
on the bridge address and asks for a user and password (BasicAuth, as corporate proxies do), and reaches the
mirror from the controller itself, which the fence does not cover (its packets do not arrive on the bridge). So a
download that does not go through the proxy fails, and the proxy's log lists every request that did.
The table is the lab's own (`inet oc_lab_<name>`); `down` deletes it with the bridge.
"""

from __future__ import annotations

import re
import secrets
import shutil
import socket
import time
from pathlib import Path

from . import network
from .errors import LabError
from .fleet import Lab
from .release_mirror import MIRROR_PORT, gateway_ip, serve_release_mirror

PROXY_PORT = 3128
PROXY_SERVICE = "proxy"
PROXY_USER = "lab"
PACKAGE = "tinyproxy-bin"
#: tinyproxy's Info log line for a forwarded request: "Request (file descriptor 7): GET http://... HTTP/1.1"
_REQUEST = re.compile(r"Request \(file descriptor \d+\): (\S+) (\S+)")


def proxy_config(listen: str, port: int, subnet: str, log: Path, user: str, password: str) -> str:
    return (
        f"Port {port}\nListen {listen}\nTimeout 120\nMaxClients 64\n"
        f'LogFile "{log}"\nLogLevel Info\n'
        f"Allow {subnet}\nAllow 127.0.0.1\n"
        f"BasicAuth {user} {password}\n"
        f"ConnectPort 443\nConnectPort {MIRROR_PORT}\n"
        "DisableViaHeader Yes\n"
    )


def proxy_log(lab: Lab) -> Path:
    return lab.dir / "proxy" / "tinyproxy.log"


def proxied_requests(lab: Lab) -> list[tuple[str, str]]:
    """(method, URL) of every request the proxy forwarded, in order."""
    try:
        text = proxy_log(lab).read_text(errors="replace")
    except FileNotFoundError:
        return []
    return _REQUEST.findall(text)


def serve_proxy_only(lab: Lab, timeout: float = 20, release_size: int | None = None) -> str:
    """The release mirror, fenced off from the hosts, and an authenticating proxy on the gateway in front of it.

    Sets the hosts' http_proxy/https_proxy (with the proxy's credentials) and returns that URL."""
    binary = shutil.which("tinyproxy")
    if binary is None:
        raise LabError(f"the proxy topology needs tinyproxy: apt-get install {PACKAGE}")
    serve_release_mirror(lab, release_size=release_size)
    state = lab.require_state()
    network.fence_port(lab.name, state.bridge, MIRROR_PORT)
    gateway = gateway_ip(lab)
    password = secrets.token_hex(12)
    folder = lab.dir / "proxy"
    folder.mkdir(parents=True, exist_ok=True)
    proxy_log(lab).unlink(missing_ok=True)
    config = folder / "tinyproxy.conf"
    config.write_text(proxy_config(gateway, PROXY_PORT, state.subnet, proxy_log(lab), PROXY_USER, password))
    lab.stop_service(PROXY_SERVICE)
    lab.start_service(PROXY_SERVICE, [binary, "-d", "-c", str(config)])
    deadline = time.monotonic() + timeout
    while True:
        try:
            socket.create_connection((gateway, PROXY_PORT), timeout=1).close()
            break
        except OSError as error:
            if time.monotonic() > deadline:
                raise LabError(f"the lab's proxy did not listen on {gateway}:{PROXY_PORT}: {error}") from None
            time.sleep(0.1)
    url = f"http://{PROXY_USER}:{password}@{gateway}:{PROXY_PORT}"
    lab.set_host_data(http_proxy=url, https_proxy=url)
    return url
