"""The pyinfra CLI as `status` and `rollout` run it: the same command a person would type, with --limit/--data."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .gather import DEPLOY_FILE, GATHER_OUT_ENV

#: Overrides verify_report_dir for one run (verify.report reads it).
REPORT_DIR_ENV = "OLLAMA_CLAUDE_REPORT_DIR"


def pyinfra_executable() -> str:
    beside = Path(sys.executable).parent / "pyinfra"
    return str(beside) if beside.exists() else (shutil.which("pyinfra") or "pyinfra")


@dataclass
class Run:
    argv: list[str]
    rc: int
    output: str
    seconds: float


def data_options(data: dict[str, Any]) -> list[str]:
    """``--data key=<json>``: strings, numbers and lists keep their type."""
    return [item for key, value in data.items() for item in ("--data", f"{key}={json.dumps(value)}")]


def run_pyinfra(inventory: str, deploy: str, limit: list[str] | None = None, data: dict[str, Any] | None = None,
                env: dict[str, str] | None = None, log: Path | None = None, dry: bool = False) -> Run:
    argv = [pyinfra_executable(), "-y", *data_options(data or {})]
    argv += [item for name in limit or () for item in ("--limit", name)]
    argv += ["--dry"] if dry else []
    argv += [inventory, deploy]
    started = time.monotonic()
    done = subprocess.run(argv, text=True, capture_output=True, env={**os.environ, **(env or {})}, check=False)
    run = Run(argv, done.returncode, done.stdout + done.stderr, time.monotonic() - started)
    if log is not None:
        log.parent.mkdir(parents=True, exist_ok=True)
        log.write_text(f"$ {' '.join(argv)}\n{run.output}\nexit {run.rc} after {run.seconds:.1f} s\n")
    return run


class GatherError(RuntimeError):
    pass


def gather(inventory: str, data: dict[str, Any] | None = None, limit: list[str] | None = None) -> list[dict]:
    """Every host of the inventory (or ``limit``) as gather.gather_host saw it; unreachable hosts flagged."""
    with tempfile.TemporaryDirectory(prefix="ollama-claude-gather-") as scratch:
        out = Path(scratch) / "hosts.json"
        run = run_pyinfra(inventory, str(DEPLOY_FILE), limit=limit, data=data, env={GATHER_OUT_ENV: str(out)})
        if not out.is_file():
            raise GatherError(f"pyinfra gathered nothing from {inventory} (exit {run.rc}):\n{run.output[-3000:]}")
        return json.loads(out.read_text())["hosts"]
