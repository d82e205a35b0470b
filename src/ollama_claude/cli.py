"""`ollama-claude`: one console script, one subcommand group per module (each exposes `register(subparsers)`)."""

from __future__ import annotations

import argparse
import sys

from .lab import cli as lab_cli
from .mirror import cli as mirror_cli
from .rollout import cli as rollout_cli

# Add a group: a module with `register(subparsers)` that sets `run=callable(args) -> int` on its parsers.
COMMAND_GROUPS = (lab_cli, mirror_cli, rollout_cli)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="ollama-claude",
        description="Helpers around the pyinfra deploys: the lab fleet and the artifact mirror. The deploys "
        "themselves run with pyinfra: pyinfra inventories/gpu.py deploys/ollama_claude.py",
    )
    groups = parser.add_subparsers(dest="group", required=True, metavar="GROUP")
    for group in COMMAND_GROUPS:
        group.register(groups)
    args = parser.parse_args(argv)
    return args.run(args)


if __name__ == "__main__":
    sys.exit(main())
