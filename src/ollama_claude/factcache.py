"""
Fact prefetch, "record then replay": fewer SSH round trips, and less controller CPU, per host on a re-run.

pyinfra 3 does not cache facts: every ``host.get_fact`` is one command on the host, and a deploy reads each fact
twice (once to plan, once when it executes). This module records which facts a deploy asked of a host (the fact
class, its arguments, the command it ran and the connector arguments it ran with: sudo, su, shell, env...) in a
small file on the control machine, never their values. The next run of that deploy on that host starts by
running every recorded command in one batched shell command per distinct set of connector arguments, each
sub-command between markers and with its own exit status; later ``host.get_fact`` calls whose command (as this
run's code builds it) and connector arguments match are answered from that snapshot. The answer goes through
pyinfra's own ``get_fact`` (preconditions, the missing-command marker of ``requires_command``, failing status ->
``default()``, ``process()``, logging): only the host's ``run_shell_command`` is answered from the batch's output
for that command, so a served fact is exactly what a live one would have been at the start of the run. A value
once answered is handed out again (a copy) when the same fact is asked with the same arguments and connector
arguments before anything may have changed the host.

Freshness: the snapshot and the values hold this run's state, and are dropped for the rest of the run as soon
as anything may have changed the host: any command other than a fact runs on the host or a file is uploaded to
it (that is how every operation changes a host), an operation pyinfra's change detection expects to change
something starts, or the previous operation executed commands. A fact class with ``prefetch = False`` (side
effects, secrets, e.g. the edit test) always runs live, and after it the snapshot is refreshed (one batched
command again) before it answers anything else; so does a fact asked with a URL beyond the host's loopback (a
mirror, a registry), since a recorded one may point where this run no longer goes.

The record holds commands that run on hosts: it is written 0600 in a 0700 directory, and one owned by another
user or writable by others is ignored.

The one seam: ``prefetch_facts()`` (called at the top of a deploy file) wraps this host object's ``get_fact``,
``run_shell_command`` and ``put_file`` in instance attributes, and registers a pyinfra state callback handler;
nothing in pyinfra itself is patched. ``OLLAMA_CLAUDE_FACT_PREFETCH=0`` turns it off; ``OLLAMA_CLAUDE_FACT_CACHE``
is the directory of the record files (default ``$XDG_CACHE_HOME/ollama-claude/facts``, else
``~/.cache/ollama-claude/facts``).
"""

from __future__ import annotations

import copy
import importlib
import json
import os
import re
import tempfile
import weakref
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from ipaddress import ip_address
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from pyinfra import logger
from pyinfra.api import StringCommand
from pyinfra.api.arguments import CONNECTOR_ARGUMENT_KEYS, pop_global_arguments
from pyinfra.api.facts import ShortFactBase
from pyinfra.api.state import BaseStateCallback
from pyinfra.connectors.util import CommandOutput, OutputLine
from pyinfra.context import ctx_host, ctx_state

SWITCH = "OLLAMA_CLAUDE_FACT_PREFETCH"
CACHE_DIR = "OLLAMA_CLAUDE_FACT_CACHE"
RECORD_VERSION = 2  # 2: each fact with the command it ran
# A recorded fact not asked for this many runs in a row is forgotten (a dry run or a failed run asks fewer).
FORGET_AFTER_RUNS = 3

BEGIN, END = "#ocf-begin ", "#ocf-end "
# Connector arguments never written to a record: secrets, and values that are not data.
_UNRECORDED = re.compile(r"password|_stdin|_retry_until")
_SECRET = re.compile(r"password")
# Facts run with these are never batched: a pty merges stderr into stdout, stdin is the fact's own.
_UNBATCHABLE = ("_get_pty", "_stdin")


def enabled() -> bool:
    return os.environ.get(SWITCH, "1").strip().lower() not in ("0", "false", "no", "off")


def cache_dir() -> Path:
    if os.environ.get(CACHE_DIR):
        return Path(os.environ[CACHE_DIR])
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "ollama-claude" / "facts"


def record_path(deploy: str, host_name: str) -> Path:
    safe = re.sub(r"[^A-Za-z0-9_.@-]", "_", host_name)
    return cache_dir() / re.sub(r"[^A-Za-z0-9_.-]", "_", deploy) / f"{safe}.json"


# -- encoding of fact arguments (data only: anything else is not recorded) ---------------------------------


class Unrecordable(TypeError):
    pass


def encode(value: Any) -> Any:
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    if isinstance(value, tuple):
        return {"__tuple__": [encode(item) for item in value]}
    if isinstance(value, list):
        return [encode(item) for item in value]
    if isinstance(value, dict) and all(isinstance(key, str) for key in value) and "__tuple__" not in value:
        return {key: encode(item) for key, item in value.items()}
    raise Unrecordable(type(value).__name__)


def decode(value: Any) -> Any:
    if isinstance(value, list):
        return [decode(item) for item in value]
    if isinstance(value, dict):
        if set(value) == {"__tuple__"}:
            return tuple(decode(item) for item in value["__tuple__"])
        return {key: decode(item) for key, item in value.items()}
    return value


def fact_path(cls: type) -> str:
    return f"{cls.__module__}:{cls.__qualname__}"


def load_fact(path: str) -> type | None:
    module, _, name = path.partition(":")
    try:
        found: Any = importlib.import_module(module)
        for part in name.split("."):
            found = getattr(found, part)
    except (ImportError, AttributeError):
        return None
    return found if isinstance(found, type) else None


def prefetchable(cls: type) -> bool:
    """False for a fact class that opts out (``prefetch = False``): side effects or secrets, always live."""
    return bool(getattr(cls, "prefetch", True))


def reaches_beyond_the_host(values: Iterable[Any]) -> bool:
    """
    A URL argument whose host is not loopback (a release mirror, a registry, another host's Ollama): such a fact
    is always read live. A recorded one may be stale (the mirror moved, a proxy is now required, another lab's
    address under the same host name), and a batch would wait out its timeouts for a URL this run never asks.
    """
    for value in values:
        if isinstance(value, str) and value.startswith(("http://", "https://")):
            hostname = urlsplit(value).hostname or ""
            if hostname != "localhost" and not _is_loopback(hostname):
                return True
    return False


def _is_loopback(hostname: str) -> bool:
    try:
        return ip_address(hostname).is_loopback
    except ValueError:
        return False


def make_entry(cls: type, args: tuple, kwargs: dict, connector: dict, command: Any = "") -> dict | None:
    """What the record keeps of one fact request, or None when it cannot be kept (opt-out, not plain data, a
    remote URL)."""
    if not prefetchable(cls) or reaches_beyond_the_host([*args, *kwargs.values()]):
        return None
    try:
        return {
            "fact": fact_path(cls),
            "command": command_text(command),
            "args": encode(list(args)),
            # Global arguments given to get_fact show up in the connector arguments it ran with.
            "kwargs": encode({key: value for key, value in kwargs.items() if not key.startswith("_")}),
            "connector": encode(
                {key: value for key, value in connector.items() if not _UNRECORDED.search(key)}),
        }
    except Unrecordable:
        return None


def entry_key(entry: dict) -> str:
    return json.dumps({key: entry[key] for key in ("fact", "args", "kwargs", "connector")}, sort_keys=True)


def load_record(path: Path) -> dict[str, dict]:
    """The record's entries; none from a record another user could have written (its commands run on hosts)."""
    try:
        with open(path, "rb") as handle:
            status = os.fstat(handle.fileno())
            if status.st_uid != os.geteuid() or status.st_mode & 0o022:
                logger.warning(f"fact record {path} ignored: not owned by this user, or writable by others")
                return {}
            data = json.loads(handle.read())
    except (OSError, ValueError):
        return {}
    if not isinstance(data, dict) or data.get("version") != RECORD_VERSION:
        return {}
    return {entry_key(entry): entry for entry in data.get("facts", []) if isinstance(entry, dict)
            and {"fact", "command", "args", "kwargs", "connector"} <= set(entry)
            and isinstance(entry["command"], str)}


def merge_record(previous: dict[str, dict], asked: dict[str, dict]) -> list[dict]:
    """This run's requests (age 0) and earlier ones not asked this run, one run older; old ones are forgotten."""
    merged = {key: {**entry, "age": 0} for key, entry in asked.items()}
    for key, entry in previous.items():
        age = int(entry.get("age", 0)) + 1
        if key not in merged and age < FORGET_AFTER_RUNS:
            merged[key] = {**entry, "age": age}
    return list(merged.values())


def save_record(path: Path, entries: list[dict]) -> None:
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    with os.fdopen(fd, "w") as handle:
        json.dump({"version": RECORD_VERSION, "facts": entries}, handle, indent=1, sort_keys=True)
    os.replace(tmp, path)


# -- the batched command and its output ------------------------------------------------------------------


def command_text(command: Any) -> str:
    return command.get_raw_value() if isinstance(command, StringCommand) else str(command)


def connector_arguments(kwargs: dict) -> dict:
    """The connector arguments of a run_shell_command call (pyinfra's all start with _; not print_output)."""
    return {key: value for key, value in kwargs.items() if key.startswith("_")}


def connector_key(kwargs: dict) -> str:
    return json.dumps(sorted(kwargs.items()), default=repr)


def command_key(command: Any, kwargs: dict) -> str:
    return f"{command_text(command)}\0{connector_key(kwargs)}"


def batch_command(commands: list[Any]) -> StringCommand:
    """
    One shell script running each command in a subshell, in order: stdout and stderr to temporary files, then
    printed with an ``o``/``e`` prefix per line between ``#ocf-begin <i>`` and ``#ocf-end <i> <status>``.
    Every content line starts with o or e, so no output of a fact can look like a marker.
    """
    bits: list[Any] = ['_ocf_o=$(mktemp) && _ocf_e=$(mktemp) || exit 97;']
    for index, command in enumerate(commands):
        bits += [
            f"echo '{BEGIN}{index}'; (\n", command, '\n) >"$_ocf_o" 2>"$_ocf_e" </dev/null; _ocf_s=$?;',
            """awk '{print "o" $0}' "$_ocf_o"; awk '{print "e" $0}' "$_ocf_e";""",
            f'echo "{END}{index} $_ocf_s";',
        ]
    bits.append('rm -f "$_ocf_o" "$_ocf_e"')
    return StringCommand(*bits, _separator="")


def parse_batch(lines: Iterable[str], success_codes: Iterable[int] = (0,)) -> dict[int, tuple[bool, CommandOutput]]:
    """Each finished sub-command's (status, output) by index; one without its end marker is left out."""
    codes = set(success_codes)
    results: dict[int, tuple[bool, CommandOutput]] = {}
    index: int | None = None
    out: list[OutputLine] = []
    for line in lines:
        if line.startswith(BEGIN):
            index, out = int(line[len(BEGIN):]), []
        elif line.startswith(END):
            done, _, status = line[len(END):].partition(" ")
            if index is not None and int(done) == index and status.strip().lstrip("-").isdigit():
                results[index] = (int(status) in codes, CommandOutput(out))
            index = None
        elif index is not None and line[:1] in ("o", "e"):
            out.append(OutputLine("stdout" if line[0] == "o" else "stderr", line[1:]))
    return results


# -- per host ----------------------------------------------------------------------------------------------


@dataclass
class _Fetch:
    entry: dict | None
    live: bool


class HostPrefetch:
    """The record, the snapshot and the two wrapped methods of one host."""

    def __init__(self, state, host, path: Path):
        self.state, self.host, self.path = state, host, path
        self.previous = load_record(path)
        self.asked: dict[str, dict] = {}
        self.snapshot: dict[str, tuple[bool, CommandOutput]] | None = None
        self.stale = False
        self.current: _Fetch | None = None
        self.get_fact_live: Callable = host.get_fact
        self.run_live: Callable = host.run_shell_command
        self.put_file_live: Callable = host.put_file
        self.commands = 0  # commands this module ran on the host (batches included), for --debug
        # Values answered since the host last (maybe) changed: a fact asked again is not parsed again.
        self.values: dict[tuple[type, str], Any] = {}
        # The connector arguments a fact runs with when nothing sets them: the host's data, pyinfra's config.
        defaults = pop_global_arguments(state, host, {})[0]
        self.connector_defaults: dict[str, Any] = {key: defaults.get(key) for key in CONNECTOR_ARGUMENT_KEYS}

    def install(self) -> None:
        self.host.get_fact = self.get_fact
        self.host.run_shell_command = self.run_shell_command
        self.host.put_file = self.put_file
        self.snapshot = self.fetch(self.previous) if self.previous else None

    def drop(self, why: str) -> None:
        if self.snapshot is not None:
            logger.debug("%sfact snapshot dropped: %s", self.host.print_prefix, why)
        self.snapshot, self.stale = None, False
        self.values.clear()

    def value_key(self, cls: type, args: tuple, kwargs: dict) -> tuple[type, str] | None:
        """
        What decides a fact's value besides the host: its arguments and the connector arguments it runs with,
        each taken as pyinfra's _handle_fact_kwargs and pop_global_arguments take it (given to get_fact, else
        the enclosing operation's, else the enclosing @deploy's, else the host's default); None when they are
        not plain data.
        """
        layers = (kwargs, self.host.current_op_global_arguments or {}, self.host.current_deploy_kwargs or {})
        connector = {}
        for key in CONNECTOR_ARGUMENT_KEYS:
            layer = next((layer for layer in layers if key in layer), None)
            if layer is not None and not _SECRET.search(key) and layer[key] != self.connector_defaults[key]:
                connector[key] = layer[key]
        own = {key: value for key, value in kwargs.items()
               if key not in CONNECTOR_ARGUMENT_KEYS and not _SECRET.search(key)}
        try:
            return cls, json.dumps([encode(list(args)), encode(own), encode(connector)], sort_keys=True)
        except Unrecordable:
            return None

    # The host's get_fact, as operations and facts call it.
    def get_fact(self, cls, *args, **kwargs):
        if isinstance(cls, type) and issubclass(cls, ShortFactBase):
            return cls().process_data(self.get_fact(cls.fact, *args, **kwargs))
        live = not prefetchable(cls)
        key = None if live else self.value_key(cls, args, kwargs)
        if key in self.values:
            return copy.deepcopy(self.values[key])  # a caller may change what it was given
        outer, self.current = self.current, _Fetch(None if live else {"cls": cls, "args": args, "kwargs": kwargs},
                                                  live)
        try:
            value = self.get_fact_live(cls, *args, **kwargs)
        finally:
            self.current = outer
            if live:
                self.values.clear()  # it may have side effects: read everything again before answering
                if self.snapshot is not None:
                    self.stale = True
        if key is not None:
            self.values[key] = copy.deepcopy(value)
        return value

    # The host's run_shell_command: facts and operations both end here.
    def run_shell_command(self, command, *args, **kwargs):
        connector = connector_arguments(kwargs)
        fetch = self.current
        if fetch is None:
            self.drop("a command that is not a fact runs on the host")
            return self.run_live(command, *args, **kwargs)
        if fetch.live:
            return self.run_live(command, *args, **kwargs)
        if fetch.entry is not None:
            self.record(fetch.entry, connector, command)
        if self.snapshot is not None and self.stale:
            self.snapshot = self.fetch({**self.previous, **self.asked})
            self.stale = False
        hit = self.snapshot.get(command_key(command, connector)) if self.snapshot is not None else None
        if hit is not None:
            return hit
        return self.run_live(command, *args, **kwargs)

    def put_file(self, *args, **kwargs):
        self.drop("a file is uploaded to the host")
        return self.put_file_live(*args, **kwargs)

    def record(self, request: dict, connector: dict, command: Any) -> None:
        if any(connector.get(key) for key in _UNBATCHABLE):
            return
        entry = make_entry(request["cls"], request["args"], request["kwargs"], connector, command)
        if entry is not None:
            self.asked[entry_key(entry)] = entry

    # Replay: every recorded fact's command, in one batch per set of connector arguments.
    def fetch(self, entries: dict[str, dict]) -> dict[str, tuple[bool, CommandOutput]]:
        self.values.clear()
        groups: dict[str, tuple[dict, dict[str, str]]] = {}
        for entry in entries.values():
            connector = self.replay_connector(entry)
            if connector is None or any(connector.get(key) for key in _UNBATCHABLE):
                continue
            group = groups.setdefault(connector_key(connector), (connector, {}))
            group[1].setdefault(entry["command"], entry["command"])
        snapshot: dict[str, tuple[bool, CommandOutput]] = {}
        for connector, commands in groups.values():
            snapshot.update(self.run_batch(list(commands.values()), connector))
        return snapshot

    def replay_connector(self, entry: dict) -> dict | None:
        """
        The connector arguments to run a recorded fact's command with: the recorded ones, and the host's own for
        those never recorded (a sudo password); None when the fact is no longer one to prefetch. The snapshot is
        keyed by command and connector arguments: a command this run's code no longer builds is never asked.
        """
        args, kwargs = decode(entry["args"]), decode(entry["kwargs"])
        cls = load_fact(entry["fact"])
        if cls is None or not prefetchable(cls) or reaches_beyond_the_host([*args, *kwargs.values()]):
            return None
        return {**self.connector_defaults, **decode(entry["connector"])}

    def run_batch(self, commands: list[Any], kwargs: dict) -> dict[str, tuple[bool, CommandOutput]]:
        self.commands += 1
        try:
            status, output = self.run_live(batch_command(commands), print_output=self.state.print_fact_output,
                                           print_input=self.state.print_fact_input, **kwargs)
        except Exception as error:  # noqa: BLE001 - the facts are then read live, one by one
            logger.debug("%sfact batch failed: %s", self.host.print_prefix, error)
            return {}
        if not status:
            return {}
        results = parse_batch(output.stdout_lines, kwargs.get("_success_exit_codes") or (0,))
        logger.debug("%sprefetched %d of %d facts in one command", self.host.print_prefix, len(results),
                     len(commands))
        return {command_key(commands[index], kwargs): result for index, result in results.items()}

    def save(self) -> None:
        try:
            save_record(self.path, merge_record(self.previous, self.asked))
        except OSError as error:
            logger.warning(f"{self.host.print_prefix}could not save the fact record {self.path}: {error}")


class _Invalidate(BaseStateCallback):
    """pyinfra's own hooks: an operation that will change (or did run commands on) a host drops its snapshot."""

    def __init__(self) -> None:
        self.last_op: dict[Any, str] = {}

    def operation_host_start(self, state, host, op_hash):
        prefetch = _HOSTS.get(host)
        if prefetch is None:
            return
        previous = self.last_op.get(host)
        self.last_op[host] = op_hash
        if previous is not None and _op_meta(state, host, previous) is not None \
                and _op_meta(state, host, previous).executed:
            prefetch.drop("the previous operation executed commands")
        # What pyinfra's change detection predicted (None with `-y`, which skips it: then the commands tell).
        if getattr(_op_meta(state, host, op_hash), "_maybe_is_change", None) is True:
            prefetch.drop("an operation that changes the host starts")

    def host_disconnect(self, state, host):
        prefetch = _HOSTS.get(host)
        if prefetch is not None:
            prefetch.save()


def _op_meta(state, host, op_hash):
    data = state.ops.get(host, {}).get(op_hash)
    return data.operation_meta if data is not None else None


_HOSTS: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()
_STATES: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


def prefetch_facts(deploy: str, state=None, host=None) -> HostPrefetch | None:
    """
    Call at the top of a deploy file (once per host, pyinfra runs the file per host): replay this deploy's
    recorded facts for this host in one batch, record what it asks this run. Does nothing when switched off
    (``OLLAMA_CLAUDE_FACT_PREFETCH=0``) or when already installed on this host.
    """
    if not enabled():
        return None
    state = state or ctx_state.get()
    host = host or ctx_host.get()
    if host in _HOSTS:
        return _HOSTS[host]
    if state not in _STATES:
        _STATES[state] = _Invalidate()
        state.add_callback_handler(_STATES[state])
    prefetch = HostPrefetch(state, host, record_path(deploy, host.name))
    _HOSTS[host] = prefetch
    prefetch.install()
    return prefetch
