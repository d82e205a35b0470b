"""`ollama-claude mirror sync|serve`: one download per fleet, then the hosts install from the LAN (or offline)."""

from __future__ import annotations

import sys
from pathlib import Path

from ollama_claude.mirror.server import serve
from ollama_claude.settings import Settings, SettingsError

from .models import DEFAULT_MODEL_REGISTRY, sync_model
from .sync import PLATFORM_OF_ARCH, MirrorSyncError, sync

DEFAULT_PORT = 8470


def default(option: str):
    return Settings.model_fields[option].default


def register(subparsers) -> None:
    mirror = subparsers.add_parser("mirror", help="fetch the pinned releases once and serve them to the fleet")
    commands = mirror.add_subparsers(dest="mirror_command", required=True, metavar="COMMAND")

    sync_parser = commands.add_parser(
        "sync", help="download and verify Ollama releases and Claude Code packages into --dest (idempotent)"
    )
    sync_parser.add_argument("--dest", type=Path, required=True, help="mirror root directory")
    sync_parser.add_argument(
        "--ollama-version", action="append", dest="ollama_versions", metavar="V",
        help=f"Ollama release to fetch (repeatable; default {default('ollama_version')})",
    )
    sync_parser.add_argument(
        "--arch", action="append", dest="arches", choices=sorted(PLATFORM_OF_ARCH),
        help="host architecture (repeatable; default amd64)",
    )
    sync_parser.add_argument("--rocm", action="store_true", help="also fetch the amd64 ROCm add-on (AMD GPUs)")
    sync_parser.add_argument("--darwin", action="store_true", help="also fetch Ollama-darwin.zip (macOS hosts)")
    sync_parser.add_argument(
        "--ollama-url", default=default("ollama_download_url"), help="upstream release base (default %(default)s)"
    )
    sync_parser.add_argument(
        "--claude-code-version", default=default("claude_code_version"), help="default %(default)s"
    )
    sync_parser.add_argument(
        "--platform", action="append", dest="platforms", choices=sorted(PLATFORM_OF_ARCH.values()),
        help="Claude Code platform (repeatable; default: one per --arch)",
    )
    sync_parser.add_argument(
        "--registry", help="upstream npm registry (default: claude_code_registry, else this machine's npm config)"
    )
    sync_parser.add_argument("--no-claude-code", action="store_true", help="fetch only Ollama releases")
    sync_parser.add_argument(
        "--model", action="append", dest="models", default=[], metavar="NAME[:TAG]",
        help="library model to fetch for fan-out (repeatable): hosts with ollama_models_mirror copy it from here",
    )
    sync_parser.add_argument(
        "--model-registry", default=DEFAULT_MODEL_REGISTRY, help="Ollama model registry (default %(default)s)"
    )
    sync_parser.set_defaults(run=run_sync)

    serve = commands.add_parser("serve", help="serve a synced --root over HTTP (range requests, npm documents)")
    serve.add_argument("--root", type=Path, required=True)
    serve.add_argument("--bind", default="127.0.0.1", help="address to listen on (default %(default)s)")
    serve.add_argument("--port", type=int, default=DEFAULT_PORT, help="default %(default)s")
    serve.set_defaults(run=run_serve)


def run_sync(args) -> int:
    arches = args.arches or ["amd64"]
    try:
        registry = None if args.no_claude_code else Settings(claude_code_registry=args.registry).npm_registry()
        report = sync(
            args.dest,
            args.ollama_url,
            args.ollama_versions or [default("ollama_version")],
            arches,
            args.rocm,
            registry,
            args.claude_code_version,
            args.platforms or [PLATFORM_OF_ARCH[arch] for arch in arches],
            darwin=args.darwin,
        )
        for model in args.models:
            digest = sync_model(args.dest, args.model_registry, model, report)
            print(f"model {model}: manifest sha256:{digest}, every blob verified")
    except (MirrorSyncError, SettingsError, ValueError) as error:
        print(f"ollama-claude mirror sync: {error}", file=sys.stderr)
        return 1
    print(
        f"{len(report.fetched)} fetched ({report.bytes_fetched} bytes), {len(report.kept)} already verified; "
        f"serve it with `ollama-claude mirror serve --root {args.dest} --bind <LAN address>` and set "
        "ollama_download_url = http://<address>:<port>/ollama/releases/download, "
        "claude_code_registry = http://<address>:<port>/npm"
        + (", ollama_models_mirror = http://<address>:<port>" if args.models else "")
    )
    return 0


def run_serve(args) -> int:
    if not args.root.is_dir():
        print(f"ollama-claude mirror serve: {args.root} is not a directory; run `mirror sync --dest` first",
              file=sys.stderr)
        return 1
    serve(args.root, args.bind, args.port)
    return 0
