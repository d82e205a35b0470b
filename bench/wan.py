"""
A simulated WAN: the upstream (release server + npm registry) lives in its own network namespace behind a
veth whose both ends are rate-limited with tbf; round-trip latency is added by the upstream server per request
(this kernel has no sch_netem). The lab hosts reach it through the lab gateway, routed by the root namespace on
the bench lab's bridge and the WAN veth only (forwarding stays off everywhere else); their LAN is unshaped.
"""

from __future__ import annotations

import contextlib
import ipaddress
import json
import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

from ollama_claude.lab.network import set_sysctl
from ollama_claude.lab.standin_server import baked_standin
from ollama_claude.lab.system import run, run_quietly, wait_until_serving
from ollama_claude.mirror.server import REQUEST_LOG, MirrorHandler, MirrorServer, requests
from ollama_claude.settings import Settings

REPO = Path(__file__).resolve().parents[1]
OLLAMA_VERSION = Settings.model_fields["ollama_version"].default
UPSTREAM_PORT = 8480
REGISTRY_PORT = 5000
REGISTRY_LOG = "registry-requests.jsonl"


@dataclass
class Wan:
    """The WAN namespace, its veth, the routes/forwarding it needs and the upstream server inside it."""

    netns: str
    veth: str
    subnet: str  # a /30: root end .1, upstream .2
    rate: str  # tc rate, e.g. "100mbit"
    latency_ms: int
    root: Path
    blob_size: int
    processes: list[subprocess.Popen] = field(default_factory=list)

    @property
    def addresses(self) -> tuple[str, str]:
        network = ipaddress.IPv4Network(self.subnet)
        return str(network.network_address + 1), str(network.network_address + 2)

    @property
    def url(self) -> str:
        return f"http://{self.addresses[1]}:{UPSTREAM_PORT}"

    @property
    def registry_url(self) -> str:
        """The model registry stand-in (the stand-in's `standin-registry`), also behind the WAN."""
        return f"http://{self.addresses[1]}:{REGISTRY_PORT}"

    @property
    def registry_log(self) -> Path:
        return self.root.parent / REGISTRY_LOG

    def up(self, lab_subnets: list[str]) -> None:
        self.down()
        near, far = self.addresses
        prefix = ipaddress.IPv4Network(self.subnet).prefixlen
        in_ns = ["ip", "netns", "exec", self.netns]
        run(["ip", "netns", "add", self.netns])
        run(["ip", "link", "add", self.veth, "type", "veth", "peer", "name", "eth0", "netns", self.netns])
        run(["ip", "addr", "add", f"{near}/{prefix}", "dev", self.veth])
        run(["ip", "link", "set", self.veth, "up"])
        run([*in_ns, "ip", "link", "set", "lo", "up"])
        run([*in_ns, "ip", "addr", "add", f"{far}/{prefix}", "dev", "eth0"])
        run([*in_ns, "ip", "link", "set", "eth0", "up"])
        for subnet in lab_subnets:
            run([*in_ns, "ip", "route", "add", subnet, "via", near])
        shaping = ["tbf", "rate", self.rate, "burst", "256kb", "latency", "500ms"]
        run([*in_ns, "tc", "qdisc", "add", "dev", "eth0", "root", *shaping])  # downloads
        run(["tc", "qdisc", "add", "dev", self.veth, "root", *shaping])  # uploads
        set_sysctl(f"net/ipv4/conf/{self.veth}/forwarding", "1")
        self.start(
            [
                *in_ns,
                sys.executable,
                "-m",
                "bench.wan",
                str(self.root),
                far,
                str(UPSTREAM_PORT),
                str(self.latency_ms),
            ]
        )
        registry = self.root.parent / "registry-bin" / "ollama"
        registry.parent.mkdir(parents=True, exist_ok=True)
        registry.write_text(baked_standin(OLLAMA_VERSION))
        registry.chmod(0o755)
        self.start(
            [
                *in_ns,
                "env",
                f"OLLAMA_STANDIN_LOG={self.registry_log}",
                f"OLLAMA_STANDIN_BLOB_SIZE={self.blob_size}",
                str(registry),
                "standin-registry",
                f"{far}:{REGISTRY_PORT}",
            ]
        )
        wait_until_serving(f"{self.url}/npm/")
        wait_until_serving(f"{self.registry_url}/v2/")

    def start(self, argv: list[str]) -> None:
        self.processes.append(
            subprocess.Popen(
                argv, cwd=REPO, start_new_session=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
            )
        )

    def reset_logs(self) -> None:
        (self.root / REQUEST_LOG).unlink(missing_ok=True)
        self.registry_log.unlink(missing_ok=True)

    def bytes_sent(self) -> dict[str, int]:
        """Bytes the upstream servers sent, from their request logs: artifacts and models apart."""
        models = (
            [json.loads(line) for line in self.registry_log.read_text().splitlines()]
            if self.registry_log.is_file()
            else []
        )
        return {
            "artifacts": sum(entry["bytes"] for entry in requests(self.root)),
            "models": sum(entry["bytes"] for entry in models),
        }

    def route_lab(self, bridge: str) -> None:
        """Let one lab's hosts reach the upstream (the lab turns forwarding off on its bridge)."""
        set_sysctl(f"net/ipv4/conf/{bridge}/forwarding", "1")

    def down(self) -> None:
        for process in self.processes:
            if process.poll() is None:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(process.pid, signal.SIGTERM)
                process.wait(timeout=10)
        self.processes = []
        run_quietly(["ip", "link", "delete", self.veth])
        run_quietly(["ip", "netns", "delete", self.netns])


class WanHandler(MirrorHandler):
    """The lab mirror's handler, one round trip later: what a distant server costs per request."""

    latency = 0.0

    def serve(self, send_body: bool):
        time.sleep(self.latency)
        super().serve(send_body)


def serve_upstream(root: Path, bind: str, port: int, latency_ms: int) -> None:
    handler = type("Upstream", (WanHandler,), {"root": root.resolve(), "latency": latency_ms / 1000})
    server = MirrorServer((bind, port), handler)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    server.serve_forever()


if __name__ == "__main__":
    serve_upstream(Path(sys.argv[1]), sys.argv[2], int(sys.argv[3]), int(sys.argv[4]))
