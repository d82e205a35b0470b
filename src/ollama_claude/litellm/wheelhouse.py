"""
The proxy's wheelhouse, built on the control machine (the one that can reach a package index) for hosts that
cannot: ``pip download 'litellm[proxy]==<version>' pip`` into the cache, plus an ``index.html`` listing every
wheel so any static server (the lab or fleet mirror) can serve it to ``pip --find-links <url>``.

    python -m ollama_claude.litellm.wheelhouse 1.106.12            # -> ~/.cache/ollama-claude/wheels/litellm-1.106.12
    python -m ollama_claude.litellm.wheelhouse 1.106.12 --dest DIR --python /usr/bin/python3

The wheels are for this machine's architecture, resolved for the interpreters given with ``--python`` (one
like the hosts', e.g. the same distribution's /usr/bin/python3; default: the one running this).
"""

from __future__ import annotations

import argparse
import html
import subprocess
import sys
from pathlib import Path

from ..mirror.layout import cache_dir
from ..settings import Settings

INDEX = "index.html"
#: The interpreters resolved for so far (a dot-file: mirrors do not serve it).
DONE = ".resolved-for"


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


def build_wheelhouse(version: str, dest: Path | None = None, pythons: tuple[str, ...] = ()) -> Path:
    """
    Download ``litellm[proxy]==version`` with all its dependencies and pip itself, resolved for each Python
    in ``pythons`` (default: this one): environment markers such as ``python_full_version < "3.11.3"`` pick
    different dependencies, so resolve with an interpreter like the hosts' (pip's ``--python``). Each
    interpreter is resolved once.
    """
    directory = dest or default_dir(version)
    directory.mkdir(parents=True, exist_ok=True)
    stamp = directory / DONE
    done = set(stamp.read_text().split()) if stamp.is_file() else set()
    for python in pythons or (sys.executable,):
        if python in done:
            continue
        subprocess.run(
            [sys.executable, "-m", "pip", "--python", python, "download", "--quiet", "--disable-pip-version-check",
             "-d", str(directory), f"litellm[proxy]=={version}", "pip"],
            check=True,
        )
        done.add(python)
        stamp.write_text("\n".join(sorted(done)) + "\n")
    write_index(directory)
    return directory


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m ollama_claude.litellm.wheelhouse",
                                     description=__doc__.strip().splitlines()[0])
    parser.add_argument("version", nargs="?", default=Settings.model_fields["claude_litellm_version"].default)
    parser.add_argument("--dest", type=Path, help="default: ${OLLAMA_CLAUDE_CACHE:-~/.cache/ollama-claude}/wheels/")
    parser.add_argument("--python", action="append", dest="pythons", default=[],
                        help="an interpreter like the hosts' (repeatable; default: this one)")
    args = parser.parse_args(argv)
    print(build_wheelhouse(args.version, args.dest, tuple(args.pythons)))


if __name__ == "__main__":
    main()
