"""Run the Ollama stand-in as a local process: for host-less tests and for baking release artifacts."""

from __future__ import annotations

import json
import os
import re
import signal
import socket
import subprocess
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

STANDIN_SOURCE = Path(__file__).parent / "standin" / "ollama"
VERSION_LINE = re.compile(r'^VERSION = "[^"]*"$', re.MULTILINE)


def baked_standin(version: str) -> str:
    """The stand-in's source with VERSION set, as a release build bakes it in with -ldflags."""
    source, count = VERSION_LINE.subn(f'VERSION = "{version}"', STANDIN_SOURCE.read_text(), count=1)
    if count != 1:
        raise RuntimeError(f"no VERSION line in {STANDIN_SOURCE}")
    return source


def free_port(host: str = "127.0.0.1") -> int:
    with socket.socket() as probe:
        probe.bind((host, 0))
        return probe.getsockname()[1]


@dataclass
class StandinServer:
    """A running `ollama serve` stand-in with its own HOME (key, request log) and model store."""

    home: Path
    port: int
    executable: Path
    process: subprocess.Popen
    env: dict[str, str] = field(repr=False)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def log_path(self) -> Path:
        return self.home / "serve.log"

    @property
    def request_log_path(self) -> Path:
        return Path(self.env.get("OLLAMA_STANDIN_LOG") or self.home / ".ollama" / "standin-requests.jsonl")

    @property
    def models_dir(self) -> Path:
        return Path(self.env["OLLAMA_MODELS"])

    def requests(self) -> list[dict]:
        """Every request the server logged so far, oldest first."""
        if not self.request_log_path.exists():
            return []
        return [json.loads(line) for line in self.request_log_path.read_text().splitlines() if line]

    def server_log(self) -> str:
        return self.log_path.read_text()

    def cli(
        self, *args: str, env: dict[str, str] | None = None, timeout: float = 60
    ) -> subprocess.CompletedProcess:
        """Run the stand-in CLI against this server."""
        return subprocess.run(
            [str(self.executable), *args],
            check=False,
            env={**self.env, **(env or {})},
            capture_output=True,
            text=True,
            timeout=timeout,
        )

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=5)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()


def start_standin(
    home: Path,
    *,
    version: str = "0.32.15",
    env: dict[str, str] | None = None,
    timeout: float = 10,
) -> StandinServer:
    """Start `ollama serve` on 127.0.0.1 at a free port with HOME=home; returns once it answers GET /."""
    home.mkdir(parents=True, exist_ok=True)
    executable = home / "bin" / "ollama"
    executable.parent.mkdir(exist_ok=True)
    executable.write_text(baked_standin(version))
    executable.chmod(0o755)
    port = free_port()
    full_env = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "HOME": str(home),
        "OLLAMA_HOST": f"127.0.0.1:{port}",
        "OLLAMA_MODELS": str(home / ".ollama" / "models"),
        **(env or {}),
    }
    with open(home / "serve.log", "ab") as log:
        process = subprocess.Popen([str(executable), "serve"], env=full_env, stdout=log, stderr=log)
    server = StandinServer(home=home, port=port, executable=executable, process=process, env=full_env)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"stand-in exited with {process.returncode}: {server.server_log()}")
        try:
            with urllib.request.urlopen(server.url + "/", timeout=1):
                return server
        except (urllib.error.URLError, ConnectionError):
            time.sleep(0.05)
    server.stop()
    raise TimeoutError(f"stand-in did not answer within {timeout}s: {server.server_log()}")
