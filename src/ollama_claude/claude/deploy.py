"""The Claude Code step of the deploy: the pinned CLI, then each declared user's settings, env, rc files."""

from __future__ import annotations

from pyinfra import host
from pyinfra.api import deploy
from pyinfra.facts.files import File, FileContents
from pyinfra.facts.server import Kernel

from ..accounts import claude_accounts, with_account
from ..context import host_settings
from ..models.facts import ModelShow
from ..privilege import system_privilege, user_privilege
from ..proxy import download_arguments
from ..settings import ClaudeUser, Settings
from .chosen_model import parse_record, with_chosen_model
from .operations import (
    claude_code_native,
    claude_code_npm,
    claude_settings,
    claude_user_exists,
    managed_file,
    rc_block,
    render,
)
from .paths import BASH_LOGIN_FILES, CLAUDE_LINK, ROOT_GROUP, UserPaths, managed_settings_path, user_paths
from .settings_merge import CONFLICTING_ENV, ONBOARDING_STATE, machine_settings, user_settings


@deploy("Claude Code")
def configure_claude_code() -> None:
    """
    Install Claude Code at its pin, enforce the machine policy if asked, then point every declared user's
    Claude Code at Ollama (settings.json merge, env files, rc blocks; isolation: a wrapper and its own dir).
    """
    settings = host_settings()
    version = settings.claude_code_version
    if settings.claude_code_install == "native":
        claude_code_native(
            name=f"Install Claude Code {version} (native)",
            version=version,
            registry=settings.npm_registry(),
            install_dir=settings.claude_code_dir,
            link=CLAUDE_LINK,
            **download_arguments(settings),
            **system_privilege(),
        )
    elif settings.claude_code_install == "npm":
        claude_code_npm(
            name=f"Install Claude Code {version} (npm)", version=version, registry=settings.npm_registry(),
            **download_arguments(settings), **system_privilege(),
        )
    if settings.claude_managed_settings:
        kernel = host.get_fact(Kernel)
        claude_settings(
            name="Enforce base URL and telemetry policy (managed-settings.json)",
            path=managed_settings_path(kernel),
            managed=machine_settings(settings),
            owner="root",
            group=ROOT_GROUP[kernel],
            mode="644",
            drop_env=list(CONFLICTING_ENV),
            **system_privilege(),
        )
    accounts = claude_accounts(settings)
    for user in settings.claude_users:
        claude_user_exists(name=f"{user.name}: account exists", user=user.name,
                           declared=tuple(u.name for u in settings.claude_users))
        if account := accounts.get(user.name):
            _configure_user(settings, with_account(user, account), account.group)


def model_context(settings: Settings) -> int | None:
    """
    The context the server gives the default model (its own num_ctx or trained context may be lower than
    ollama_context_length); None when the server does not answer yet (a fresh host: the configured length).
    """
    if not settings.default_model:
        return None
    shown = host.get_fact(ModelShow, base_url=settings.base_url, model=settings.default_model)
    return shown.context_in_effect(settings.ollama_context_length) if shown else None


def _bash_login_file(home: str, user: str) -> str:
    for name in BASH_LOGIN_FILES[:-1]:
        if host.get_fact(File, path=f"{home}/{name}", **user_privilege(user)):
            return name
    return BASH_LOGIN_FILES[-1]


def user_env(settings: Settings, paths: UserPaths) -> dict[str, str]:
    """
    The env files' variables: only what settings.json cannot carry, the config dir when isolated (settings.json
    lives inside it). Everything else is in settings.json ``env``, which Claude Code applies to itself; exporting
    it again from the rc files would hand the token and base URL to every process the user starts.
    """
    return {"CLAUDE_CONFIG_DIR": paths.config_dir} if paths.config_dir else {}


def _configure_user(settings: Settings, user: ClaudeUser, group: str) -> None:
    """``user`` with its account's home and shell filled in (accounts.with_account)."""
    home = user.home or ""
    paths = user_paths(settings, user, home, _bash_login_file(home, user.name) if user.shell == "bash" else ".profile")
    owner = {"owner": user.name, "group": group, "below": home, **user_privilege(user.name)}
    # A model the verify step chose (the default failed its edit test) stays the user's default.
    record = parse_record(host.get_fact(FileContents, path=paths.chosen_model, **user_privilege(user.name)))
    model_settings = with_chosen_model(settings, record)
    claude_settings(
        name=f"{user.name}: merge managed keys into {paths.settings_json}",
        path=paths.settings_json,
        managed=user_settings(model_settings, model_context(model_settings)),
        drop_env=list(CONFLICTING_ENV),
        **owner,
    )
    claude_settings(
        name=f"{user.name}: onboarding done in {paths.state_json}",
        path=paths.state_json,
        managed=ONBOARDING_STATE,
        backup=False,  # Claude Code's state file: it rewrites it itself, one key of ours is merged in
        **owner,
    )
    env = user_env(model_settings, paths)
    managed_file(
        name=f"{user.name}: {paths.env_sh}", path=paths.env_sh, content=render("env.sh", env=env), **owner
    )
    if user.shell == "fish":
        managed_file(
            name=f"{user.name}: {paths.env_fish}",
            path=paths.env_fish,
            content=render("env.fish", env=env),
            **owner,
        )
    if paths.wrapper:
        claude = CLAUDE_LINK if settings.claude_code_install == "native" else "claude"
        managed_file(
            name=f"{user.name}: wrapper {paths.wrapper}",
            path=paths.wrapper,
            mode="755",
            content=render("wrapper.sh", env_file=paths.env_sh, claude=claude),
            **owner,
        )
    block = render(
        "rc-block.fish" if user.shell == "fish" else "rc-block.sh",
        env_file=paths.env_fish if user.shell == "fish" else paths.env_sh,
        wrapper_dir=paths.wrapper_dir,
    )
    for rc_file in paths.rc_files:
        rc_block(name=f"{user.name}: ollama-claude block in {rc_file}", path=rc_file, content=block, **owner)
