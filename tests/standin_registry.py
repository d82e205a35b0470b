"""What the stand-in's registry serves: a catalogue override publishes a new upstream version of a model."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

from ollama_claude.lab.standin_server import StandinServer, start_standin


def listed(server_url: str, run=None) -> dict[str, str]:
    """The server's /api/tags as {name:tag: digest}; ``run`` runs curl elsewhere (e.g. over SSH)."""
    command = f"curl -sS {server_url}/api/tags"
    output = run(command) if run else subprocess.run(command, shell=True, capture_output=True, text=True,
                                                     check=True).stdout
    return {model["name"]: model["digest"] for model in json.loads(output)["models"]}


def upstream_digest(workdir: Path, model: str, catalogue: dict) -> str:
    """The manifest digest a fresh server gets for ``model`` from a registry with this catalogue override."""
    workdir.mkdir(parents=True, exist_ok=True)
    override = workdir / "catalogue.json"
    override.write_text(json.dumps({"models": catalogue}))
    reference: StandinServer = start_standin(workdir / "server", env={"OLLAMA_STANDIN_CATALOGUE": str(override)})
    try:
        pulled = reference.cli("pull", model)
        assert pulled.returncode == 0, pulled.stderr
        return listed(reference.url)[model]
    finally:
        reference.stop()
