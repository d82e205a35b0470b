"""`ollama-claude status` and `ollama-claude rollout`."""

from __future__ import annotations

import argparse
import json
from typing import Any


def _data(values: list[str]) -> dict[str, Any]:
    out = {}
    for item in values:
        key, sep, value = item.partition("=")
        if not sep:
            raise argparse.ArgumentTypeError(f"--data {item!r}: expected KEY=VALUE")
        try:
            out[key] = json.loads(value)
        except ValueError:
            out[key] = value
    return out


def _status(args):
    from .status import run_status

    args.data = _data(args.data)
    return run_status(args)


def _rollout(args):
    from .rollout import run_rollout

    args.data = _data(args.data)
    return run_rollout(args)


def register(subparsers) -> None:
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("inventory", help="pyinfra inventory, e.g. inventories/gpu.py")
    common.add_argument("--data", action="append", default=[], metavar="KEY=VALUE",
                        help="host data for every pyinfra run (as pyinfra --data; VALUE may be JSON)")
    common.add_argument("--report-dir", default="reports", help="where reports and fleet.html go")
    status = subparsers.add_parser("status", parents=[common],
                                   help="per host: versions running and recorded, models, last verify, newer releases")
    status.set_defaults(run=_status)
    rollout = subparsers.add_parser("rollout", parents=[common],
                                    help="the deploy in waves, each gated by verify and the edit test")
    rollout.add_argument("--waves", default="1,25%,100%", help="cumulative wave sizes (default 1,25%%,100%%)")
    rollout.add_argument("--deploy", default="deploys/ollama_claude.py", help="the deploy each wave runs")
    rollout.add_argument("--budget", type=int, default=0, help="failing hosts a wave may have (default 0)")
    rollout.add_argument("--dry", action="store_true", help="print the wave plan, change nothing")
    rollout.set_defaults(run=_rollout)
