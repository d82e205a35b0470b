"""
The proxy's wheelhouse, built on the control machine (the one that can reach a package index) for hosts that
cannot: ``pip download 'litellm[proxy]==<version>' pip`` into the cache, plus an ``index.html`` listing every
wheel so any static server (the lab or fleet mirror) can serve it to ``pip --find-links <url>``.

    python -m ollama_claude.litellm.wheelhouse 1.106.12            # -> ~/.cache/ollama-claude/wheels/litellm-1.106.12
    python -m ollama_claude.litellm.wheelhouse 1.106.12 --dest DIR --pip-arg=--python-version=3.11

The wheels match the control machine's Python and architecture unless ``--pip-arg`` says otherwise (pip's
``--python-version``/``--platform`` with ``--only-binary=:all:``): build it where the hosts' Python matches.
"""

from __future__ import annotations

import argparse
import html
import subprocess
import sys
from pathlib import Path

from ..lab.releases import cache_dir
from ..settings import Settings

INDEX = "index.html"


def default_dir(version: str) -> Path:
    return cache_dir() / "wheels" / f"litellm-{version}"


def write_index(directory: Path) -> Path:
    """An index.html linking every wheel by its file name (relative links: serve the directory with a slash)."""
    links = "\n".join(
        f'<a href="{html.escape(path.name)}">{html.escape(path.name)}</a><br>'
        for path in sorted(directory.glob("*.whl"))
    )
    index = directory / INDEX
    index.write_text(f"<!DOCTYPE html>\n<html><body>\n{links}\n</body></html>\n")
    return index


def build_wheelhouse(version: str, dest: Path | None = None, pip_args: list[str] | None = None) -> Path:
    """Download ``litellm[proxy]==version`` with all its dependencies and pip itself; cheap when complete."""
    directory = dest or default_dir(version)
    directory.mkdir(parents=True, exist_ok=True)
    if (directory / INDEX).is_file() and list(directory.glob(f"litellm-{version}-*.whl")):
        return directory
    subprocess.run(
        [sys.executable, "-m", "pip", "download", "--quiet", "--disable-pip-version-check", "-d", str(directory),
         f"litellm[proxy]=={version}", "pip", *(pip_args or [])],
        check=True,
    )
    write_index(directory)
    return directory


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m ollama_claude.litellm.wheelhouse",
                                     description=__doc__.strip().splitlines()[0])
    parser.add_argument("version", nargs="?", default=Settings.model_fields["claude_litellm_version"].default)
    parser.add_argument("--dest", type=Path, help="default: ${OLLAMA_CLAUDE_CACHE:-~/.cache/ollama-claude}/wheels/")
    parser.add_argument("--pip-arg", action="append", dest="pip_args", default=[], help="extra pip download arg")
    args = parser.parse_args(argv)
    print(build_wheelhouse(args.version, args.dest, args.pip_args))


if __name__ == "__main__":
    main()
