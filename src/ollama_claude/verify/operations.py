"""
The checklist operation: read everything through facts, judge it, record it for the fleet report, and fail only
this host (with every failing item and its fix) when something is wrong. It changes nothing on the host but its
record of the result (rollout.hoststate: last-verify.json), and that only when the result differs from the record.
"""

from __future__ import annotations

import posixpath
import shlex
import time
from dataclasses import replace

from pyinfra import host, state
from pyinfra.api import operation
from pyinfra.facts.files import FileContents
from pyinfra.facts.server import Kernel

from ..accounts import Account, declared_users, laptop_account
from ..claude.chosen_model import parse_record, record_for, with_chosen_model
from ..claude.deploy import model_context, user_env
from ..claude.operations import claude_settings, managed_file, render
from ..claude.paths import user_paths
from ..claude.settings_merge import CONFLICTING_ENV, context_window, user_settings
from ..models.facts import ModelShow, OllamaModels, OllamaSignin
from ..ollama import launchd
from ..ollama.facts import OllamaServerVersion
from ..privilege import user_privilege
from ..rollout.hoststate import VERIFY_FILE, HostState, now, verify_key, verify_record, write_json_command
from ..settings import ClaudeUser, Settings
from . import chain as fallback
from .checks import (
    HostObservation,
    ItemResult,
    UserObservation,
    check_claude_env,
    check_claude_version,
    check_context,
    check_headless,
    check_models,
    check_ollama,
    check_role_models,
    check_telemetry,
    claude_command,
    downgrade,
    normalise,
    ollama_url,
    settings_problem,
)
from .facts import (
    ClaudeCodeVersion,
    EditTest,
    EditTestResult,
    HttpHeadStatus,
    JsonDirectory,
    JsonFile,
    LoadedModels,
    LoginEnvironment,
    OllamaServiceEnvironment,
)
from .report import Line, fleet_report

#: Machine-wide managed settings (they beat the user's settings.json), per kernel.
MANAGED_SETTINGS = {
    "Linux": "/etc/claude-code/managed-settings.json",
    "Darwin": "/Library/Application Support/ClaudeCode/managed-settings.json",
}


def _launch_agent(settings: Settings) -> str:
    """macOS: our LaunchAgent's plist (the server's environment is in it); elsewhere nothing."""
    if host.get_fact(Kernel) != "Darwin":
        return ""
    account = laptop_account(settings)
    return "" if isinstance(account, str) else launchd.plist_path(account)


def observe_host(settings: Settings) -> HostObservation:
    url = ollama_url(settings)
    models = host.get_fact(OllamaModels, base_url=url)
    listed = {normalise(name) for name in models or {}}
    declared = [ref.full for ref in settings.library_models + settings.cloud_models]
    shown = {name: host.get_fact(ModelShow, base_url=url, model=name) for name in declared if name in listed}
    return HostObservation(
        version=host.get_fact(OllamaServerVersion, base_url=url),
        service_env=host.get_fact(OllamaServiceEnvironment, plist=_launch_agent(settings)) if settings.ollama_enabled
        else None,
        models=models,
        capabilities={name: model.capabilities if model else None for name, model in shown.items()},
        shown={name: model for name, model in shown.items() if model},
    )


def observe_user(settings: Settings, user: ClaudeUser, account: Account | None) -> UserObservation:
    """``user`` as accounts.declared_users gives it: home and shell from its account, when it has one."""
    as_them = user_privilege(user.name)  # a Mac reached as another user: su would ask for a password
    login_env = host.get_fact(LoginEnvironment, user=user.name, **as_them)
    managed_path = MANAGED_SETTINGS.get(host.get_fact(Kernel) or "", MANAGED_SETTINGS["Linux"])
    # The same concrete path the Claude Code step wrote (no XDG variables expanded), not the login shell's view.
    settings_json = user_paths(settings, user, user.home or f"~{user.name}").settings_json
    observation = UserObservation(
        uid=account.uid if account else None,
        login_env=login_env,
        user_settings=host.get_fact(JsonFile, path=settings_json, user=user.name, **as_them),
        managed_settings=host.get_fact(JsonFile, path=managed_path),
        managed_dropins=host.get_fact(JsonDirectory, directory=f"{posixpath.dirname(managed_path)}/managed-settings.d"),
        base_url_status=0,
        claude_version=host.get_fact(ClaudeCodeVersion, user=user.name, executable=claude_command(settings),
                                     **as_them),
    )
    base_url = observation.effective_env.get("ANTHROPIC_BASE_URL")
    status = host.get_fact(HttpHeadStatus, url=base_url) if base_url else 0
    return replace(observation, base_url_status=status)


def expected_window(settings: Settings, host_obs: HostObservation) -> int:
    """
    The window Claude Code must be told, as the Claude Code step computes it (settings_merge.context_window:
    ollama_context_length, or the model's own context when lower); a service that drifted is item 2's finding.
    """
    shown = host_obs.shown.get(normalise(settings.default_model or ""))
    return context_window(settings, shown.context_in_effect(settings.ollama_context_length) if shown else None)


def prerequisites(settings: Settings, user: ClaudeUser, host_obs: HostObservation, user_obs: UserObservation,
                  host_items: dict[int, ItemResult]) -> fallback.Prerequisites:
    """Turn failed checks into the reasons a chain link cannot work, so no link is tried in vain."""
    common = None
    if user_obs.uid is None:
        common = f"user {user.name} does not exist"
    elif user_obs.claude_version is None:
        common = "Claude Code is not installed (item 9)"
    ollama = None
    if host_obs.version is None:
        ollama = "Ollama does not answer (item 1)"
    elif not 200 <= user_obs.base_url_status < 400:
        ollama = "ANTHROPIC_BASE_URL does not answer (item 4)"
    local = None
    model = normalise(settings.default_model or "")
    if host_items[2].status == "fail":
        local = f"{host_items[2].message} (item 2)"
    elif model not in host_obs.listed:
        local = f"{model} is not on the server (item 3)"
    elif "tools" not in (host_obs.capabilities.get(model) or []):
        local = f"{model} lacks the tools capability (item 3)"
    signin = host.get_fact(OllamaSignin, base_url=ollama_url(settings)) if settings.cloud_models else None
    return fallback.Prerequisites(common=common, ollama=ollama, local=local, signin=signin)


def try_link(settings: Settings, user: ClaudeUser, link: fallback.Link) -> EditTestResult:
    started = time.monotonic()
    if link.api_key is not None:  # the Claude link: the real CLI, isolated from every setting (EditTest)
        result = host.get_fact(
            EditTest, user=user.name, model=link.model, timeout=settings.verify_timeout, executable="claude",
            anthropic_base_url=link.base_url, api_key=link.api_key, **user_privilege(user.name),
        )
        return replace(result, seconds=time.monotonic() - started)
    result = host.get_fact(
        EditTest, user=user.name, model=link.model, timeout=settings.verify_timeout,
        executable=claude_command(settings), **user_privilege(user.name),
    )
    return replace(result, seconds=time.monotonic() - started)


def verify_user(settings: Settings, user: ClaudeUser, account: Account | None, host_obs: HostObservation,
                host_items: dict[int, ItemResult]) -> tuple[Line, list[fallback.Attempt]]:
    started = time.monotonic()
    user_obs = observe_user(settings, user, account)
    links = fallback.plan_links(settings, user, prerequisites(settings, user, host_obs, user_obs, host_items))
    attempts = fallback.run_chain(links, lambda link: try_link(settings, user, link))
    winner = fallback.chosen(attempts)
    items = [
        settings_problem(user_obs) or check_claude_env(user, user_obs, expected_window(settings, host_obs)),
        check_headless(user, user_obs),
        check_telemetry(settings, user_obs),
        fallback.edit_test_item(user, attempts, settings.verify_timeout),
        check_role_models(user_obs, host_obs),
        check_claude_version(settings, user, user_obs),
    ]
    line = Line(host.name, user.name, items, winner.link.name if winner else None,
                winner.link.model if winner else None, time.monotonic() - started)
    return line, attempts


def failure_command(lines: list[Line]) -> str:
    """Print every failing item with its fix to stderr and fail this host only."""
    messages = [
        f"verify {line.host} {line.user or '-'}: item {item.number} {item.key}: {item.message}; fix: {item.fix}"
        for line in lines for item in line.items if item.status == "fail"
    ]
    return "; ".join(f"echo {shlex.quote(message)} >&2" for message in messages) + "; exit 1"


@operation()
def checklist(settings: Settings):
    """
    Prove the seed's checklist on this host, per configured user, ending in the real edit test through the
    fallback chain; record the results for the fleet report and, when they differ from the host's record, in
    last-verify.json. Changes nothing else.

    + settings: this host's settings
    """
    started = time.monotonic()
    host_obs = observe_host(settings)
    host_items = {1: check_ollama(settings, host_obs), 2: check_context(settings, host_obs),
                  3: check_models(settings, host_obs)}
    host_seconds = time.monotonic() - started
    verified = [verify_user(settings, user, account, host_obs, host_items)
                for user, account in declared_users(settings)]
    # What the server really gave the model is only known once the edit test has loaded it.
    host_obs = replace(host_obs, loaded=host.get_fact(LoadedModels, base_url=ollama_url(settings)))
    host_items[2] = check_context(settings, host_obs)
    lines = []
    for line, attempts in verified or [(Line(host.name, None), [])]:
        winner = fallback.chosen(attempts)
        shared = [host_items[number] for number in sorted(host_items)]
        if winner is not None and winner.link.name != "local":
            # The fallback covers the local model's problems: report them, but the user has a working model.
            shared = [downgrade(item, f"fallback {winner.link.name} in use") if item.number in (2, 3) else item
                      for item in shared]
        lines.append(replace(line, items=shared + line.items, seconds=line.seconds + host_seconds))
    fleet_report(state).record(host.name, lines, executing=state.is_executing)
    # The host's own record of this result (rollout/status read it): written only when the result changed.
    pins = {"ollama_version": settings.ollama_version, "claude_code_version": settings.claude_code_version}
    record = verify_record(lines, pins, now())
    if verify_key(record) != verify_key(host.get_fact(HostState)["verify"]):
        yield write_json_command(VERIFY_FILE, record)
    if any(line.status == "fail" for line in lines):
        yield failure_command(lines)
        return
    chosen = ", ".join(f"{line.user}: {line.link} {line.model}" for line in lines if line.user)
    host.noop(f"checklist passed ({chosen or 'no claude_users'})")


@operation()
def write_chosen_model(settings: Settings, user: ClaudeUser):
    """
    Make the model the fallback chain chose the user's default, so a plain ``claude`` works: record it (the
    Claude Code step keeps it on later runs) and write it into settings.json and the env files. When the
    configured default passes again, remove the record and write the default back. Runs after ``checklist``.

    + settings: this host's settings
    + user: the user whose chain result to apply
    """
    line = fleet_report(state).line(host.name, user.name)
    user, account = {u.name: (u, a) for u, a in declared_users(settings)}.get(user.name, (user, None))
    if line is None or line.model is None or account is None:
        host.noop(f"{user.name}: no working model found, the default stays as configured")
        return
    if line.link == "claude":
        host.noop(f"{user.name}: the Claude link is not written as a default (Anthropic endpoint and key)")
        return
    home = user.home or account.home
    paths = user_paths(settings, user, home)
    owner = {"owner": user.name, "group": account.group, "below": home}
    record = record_for(settings, line.model)
    current = host.get_fact(FileContents, path=paths.chosen_model)
    if record is not None and parse_record(current) != record:
        yield from managed_file._inner(path=paths.chosen_model, content=f"{record}\n", mode="644", **owner)
    elif record is None and current is not None:
        yield f"rm -f {shlex.quote(paths.chosen_model)}"
    model_settings = with_chosen_model(settings, record)
    yield from claude_settings._inner(
        path=paths.settings_json, managed=user_settings(model_settings, model_context(model_settings)),
        drop_env=list(CONFLICTING_ENV), **owner
    )
    env = user_env(model_settings, paths)
    yield from managed_file._inner(path=paths.env_sh, content=render("env.sh", env=env), **owner)
    if user.shell == "fish":
        yield from managed_file._inner(path=paths.env_fish, content=render("env.fish", env=env), **owner)
