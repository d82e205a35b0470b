"""`ollama-claude lab up|down|status|ssh`: the lab fleet from the command line."""

from __future__ import annotations

import argparse
import functools
import json
import os
import sys
from dataclasses import asdict
from pathlib import Path

from ..proxy import redact
from . import sudo
from .errors import LabError
from .fleet import DEFAULT_LAB, DEFAULT_SUBNET, HostSpec, Lab, numbered_hosts
from .proxy import proxy_log, serve_proxy_only
from .release_mirror import mirror_url, serve_release_mirror
from .releases import RELEASE_SIZE_ENV, parse_size


def register(subparsers) -> None:
    lab = subparsers.add_parser("lab", help="a disposable fleet of Debian hosts to run deploys on")
    commands = lab.add_subparsers(dest="lab_command", required=True, metavar="COMMAND")

    common = argparse.ArgumentParser(add_help=False)
    common.add_argument(
        "--name",
        default=os.environ.get("OLLAMA_CLAUDE_LAB", DEFAULT_LAB),
        help="lab name (env OLLAMA_CLAUDE_LAB; default %(default)s)",
    )
    common.add_argument(
        "--state-dir",
        type=Path,
        default=None,
        help="where lab state lives (env OLLAMA_CLAUDE_LAB_DIR; default .lab at the repo root)",
    )

    up = commands.add_parser("up", parents=[common], help="boot the hosts and wait for SSH")
    up.add_argument("--subnet", default=DEFAULT_SUBNET, help="lab IPv4 subnet (default %(default)s)")
    sizing = up.add_mutually_exclusive_group()
    sizing.add_argument("--count", type=int, default=2, help="number of hosts gpu1..gpuN (default 2)")
    sizing.add_argument(
        "--hosts",
        "--host",
        dest="hosts",
        action="append",
        metavar="NAME[:GROUP+GROUP][@SUITE],...",
        help="host names with optional pyinfra groups and Debian release (bookworm, the default, or trixie) "
        "or macos for a Mac-shaped host, e.g. gpu1,gpu2:gpu@trixie,mac1:laptops@macos (repeatable)",
    )
    up.add_argument(
        "--no-mirror",
        dest="mirror",
        action="store_false",
        help="do not serve the release mirror (hosts then need another ollama_download_url/claude_code_registry)",
    )
    up.add_argument(
        "--proxy-only",
        action="store_true",
        help="hosts reach the release mirror only through an authenticating HTTP proxy (tinyproxy) on the lab "
        "gateway; their http_proxy/https_proxy are set to it",
    )
    up.add_argument(
        "--dev-sudo",
        choices=sudo.MODES,
        default=sudo.DEFAULT_MODE,
        help="the dev user's sudo: without a password (default), with the lab's password, or none",
    )
    up.add_argument(
        "--release-size",
        type=parse_size,
        default=None,
        metavar="BYTES",
        help=f"pad the mirror's main Linux archives to a realistic size, e.g. 1.2G (built once, cached; default "
        f"${RELEASE_SIZE_ENV}, else small archives)",
    )
    up.set_defaults(run=run_up)

    down = commands.add_parser("down", parents=[common], help="remove every host, namespace, veth and mount")
    down.set_defaults(run=run_down)

    status = commands.add_parser("status", parents=[common], help="hosts, addresses, running and SSH state")
    status.add_argument("--json", action="store_true", help="machine-readable output")
    status.set_defaults(run=run_status)

    ssh = commands.add_parser(
        "ssh",
        parents=[common],
        help="log in to a host (or run a command on it)",
        usage="ollama-claude lab ssh [--name N] [--user U] HOST [COMMAND ...]",
    )
    ssh.add_argument("--user", default="root", help="root (default) or dev (a Mac-shaped host also has ada)")
    ssh.add_argument("host")
    # Like ssh itself: options come before HOST, everything after it is the remote command.
    ssh.add_argument("command", nargs=argparse.REMAINDER, help="command to run instead of a login shell")
    ssh.set_defaults(run=run_ssh)
    register_console(commands, common)


def reports_lab_errors(command):
    """Show a LabError as one line on stderr and exit 1: its message already says what to do."""

    @functools.wraps(command)
    def wrapper(args) -> int:
        try:
            return command(args)
        except LabError as error:
            print(f"ollama-claude lab: {error}", file=sys.stderr)
            return 1

    return wrapper


def lab_of(args) -> Lab:
    return Lab(args.name, getattr(args, "subnet", DEFAULT_SUBNET), args.state_dir)


@reports_lab_errors
def run_up(args) -> int:
    specs = [HostSpec.parse(text) for item in args.hosts for text in item.split(",")] if args.hosts else None
    lab = lab_of(args)
    lab.up(specs or numbered_hosts(args.count), dev_sudo=args.dev_sudo)
    if args.proxy_only:
        proxy = serve_proxy_only(lab, release_size=args.release_size)
        print(f"release mirror at {mirror_url(lab)}, reachable from the hosts only through the proxy "
              f"{redact(proxy)} (log: {proxy_log(lab)})")
    elif args.mirror:
        url = serve_release_mirror(lab, release_size=args.release_size)
        print(f"release mirror (stand-in Ollama releases, pinned Claude Code) at {url}")
    return 0


@reports_lab_errors
def run_down(args) -> int:
    lab_of(args).down()
    return 0


@reports_lab_errors
def run_status(args) -> int:
    hosts = lab_of(args).status()
    if args.json:
        print(json.dumps([asdict(host) for host in hosts], indent=2))
    else:
        print(f"{'HOST':<16} {'ADDRESS':<15} {'DEBIAN':<9} {'FLAVOUR':<8} {'RUNNING':<8} {'SSH':<4} GROUPS")
        for host in hosts:
            print(
                f"{host.name:<16} {host.address:<15} {host.suite:<9} {host.flavour:<8} {yes_no(host.running):<8} "
                f"{yes_no(host.ssh):<4} {','.join(host.groups)}"
            )
    return 0 if all(host.ssh for host in hosts) else 1


@reports_lab_errors
def run_ssh(args) -> int:
    argv = lab_of(args).ssh_argv(args.host, args.user)
    if sys.stdin.isatty():
        argv.insert(1, "-t")
    command = args.command[1:] if args.command[:1] == ["--"] else args.command
    os.execvp(argv[0], [*argv, "--", *command])


def yes_no(value: bool) -> str:
    return "yes" if value else "no"


# -- the Mac-shaped host's console (lab/macos/launchd.py)


def register_console(commands, common) -> None:
    console = commands.add_parser(
        "console", parents=[common], help="log a user in at a Mac-shaped host's GUI, or back to the login window"
    )
    console.add_argument("host")
    who = console.add_mutually_exclusive_group(required=True)
    who.add_argument("--user", help="the account to log in at the console (gui/<uid> appears, its agents load)")
    who.add_argument("--logout", action="store_true", help="log the console user out (gui/<uid> goes away)")
    console.set_defaults(run=run_console)


@reports_lab_errors
def run_console(args) -> int:
    from .macos import launchd

    lab = lab_of(args)
    if args.logout:
        launchd.console_logout(lab, args.host)
        print(f"{args.host}: login window")
    else:
        print(launchd.console_login(lab, args.host, args.user), end="")
        print(f"{args.host}: {args.user} is at the console")
    return 0
