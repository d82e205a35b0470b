"""The uninstall run: what ``uninstall_scope`` names goes, models only when ``uninstall_remove_models`` says so."""

from __future__ import annotations

import posixpath
import shlex

from pyinfra import host, logger
from pyinfra.api import deploy
from pyinfra.facts.files import FileContents
from pyinfra.facts.server import Kernel
from pyinfra.operations import files, server, systemd

from ..accounts import declared_users, laptop_account
from ..claude.paths import BASH_LOGIN_FILES, CLAUDE_LINK, ENV_DIR, managed_settings_path, user_paths
from ..context import host_settings
from ..hostfail import fail_host
from ..litellm.deploy import remove_litellm
from ..managedfiles import file_removed
from ..models.operations import PULL_SCRIPT
from ..ollama import launchd
from ..ollama.config import (
    DROP_IN_PATH,
    LEGACY_DROP_IN_PATH,
    SERVICE_HOME,
    SERVICE_USER,
    UNIT_PATH,
    server_environment,
    unit_file,
)
from ..ollama.deploy import remove_allowlist
from ..ollama.dropin import legacy_drop_in_removed
from ..ollama.facts import BIN_LINK, INSTALL_ROOT
from ..ollama.launchd_operations import app_login_item_restored
from ..ollama.operations import UNIT
from ..privilege import system_privilege, user_privilege
from ..rollout.hoststate import record_removed
from ..settings import ClaudeUser, Settings
from .operations import dotted, link_removed, rc_block_removed, settings_restored
from .restore import MACHINE_KEYS, USER_KEYS

#: Every rc file a deploy may have put our block in, whatever shell the user has now.
RC_FILES = (".bashrc", *BASH_LOGIN_FILES, ".zshenv", ".config/fish/config.fish")


@deploy("Uninstall ollama-claude")
def uninstall() -> None:
    """
    claude-config: users' and managed settings, env files, wrapper, rc blocks, the LiteLLM proxy; ollama: the
    server alone (a host whose Claude Code uses another host's Ollama keeps its configuration); everything:
    both, Claude Code, and the host's record (/var/lib/ollama-claude: pins and last verify).
    """
    settings = host_settings()
    kernel = host.get_fact(Kernel)
    system = system_privilege()
    if settings.uninstall_scope != "ollama":
        _remove_claude_config(settings, kernel)
    if settings.uninstall_scope == "everything":
        link_removed(name="Remove the claude command", path=CLAUDE_LINK, inside=settings.claude_code_dir,
                     put_back=f"{settings.claude_code_dir}/claude.unmanaged", **system)
        files.directory(name=f"Remove Claude Code releases {settings.claude_code_dir}",
                        path=settings.claude_code_dir, present=False, **system)
        record_removed(name="Remove the host's record of its pins and last verify")
    if settings.uninstall_scope in ("ollama", "everything"):
        _remove_ollama(settings, kernel)
    elif settings.ollama_enabled:
        logger.info(f"{host.name}: uninstall_scope claude-config keeps the Ollama server and its models")


def _remove_claude_config(settings: Settings, kernel: str) -> None:
    for user, account in declared_users(settings):
        if not account:
            logger.warning(f"{host.name}: claude_users: no account {user.name!r}, nothing to remove for it")
            continue
        _remove_user_config(settings, user, user.home or account.home)
    if kernel != "Darwin":
        remove_litellm()
    if settings.claude_managed_settings or host.get_fact(FileContents, path=managed_settings_path(kernel)):
        path = managed_settings_path(kernel)
        settings_restored(name=f"Remove our policy keys from {path}", path=path,
                          written=dotted(MACHINE_KEYS.written), always=dotted(MACHINE_KEYS.always),
                          **system_privilege())


def _remove_user_config(settings: Settings, user: ClaudeUser, home: str) -> None:
    """Both settings.json locations (isolation may have been switched), env files, wrapper, every rc block."""
    privilege = user_privilege(user.name)
    shared = user_paths(settings.model_copy(update={"claude_config_isolation": False}), user, home)
    isolated = user_paths(settings.model_copy(update={"claude_config_isolation": True}), user, home)
    for path in dict.fromkeys([shared.settings_json, isolated.settings_json]):
        settings_restored(name=f"{user.name}: our keys out of {path}", path=path,
                          written=dotted(USER_KEYS.written), always=dotted(USER_KEYS.always), **privilege)
    env_dir = f"{home}/{ENV_DIR}"
    for path in (shared.env_sh, shared.env_fish):
        file_removed(name=f"{user.name}: remove {path}", path=path, after=f"rmdir {shlex.quote(env_dir)} 2>/dev/null || true",
                     **privilege)
    assert isolated.wrapper is not None
    file_removed(name=f"{user.name}: remove wrapper {isolated.wrapper}", path=isolated.wrapper, **privilege)
    for name in RC_FILES:
        rc_block_removed(name=f"{user.name}: ollama-claude block out of ~/{name}", path=f"{home}/{name}", **privilege)


def our_units() -> list[str]:
    """The unit as this version renders it, then as earlier ones did (their header named override.conf)."""
    unit = unit_file()
    return [unit, unit.replace(f"ollama.service.d/{posixpath.basename(DROP_IN_PATH)}.", "ollama.service.d/override.conf.", 1)]


def _remove_ollama(settings: Settings, kernel: str) -> None:
    """Service, unit, drop-in, binaries, pull script, service account; models stay unless asked."""
    models = settings.ollama_models_dir or f"{SERVICE_HOME}/.ollama/models"
    if kernel == "Darwin":
        account = laptop_account(settings)
        if isinstance(account, str):
            server.shell(name="The Mac account Ollama ran as", commands=[fail_host(account)])
            return
        # The server ran as the laptop user, with its models in that user's home (Ollama's default).
        models = settings.ollama_models_dir or f"{account.home}/.ollama/models"
        file_removed(name="Remove the Ollama LaunchAgent", path=launchd.plist_path(account),
                     before=launchd.bootout_command(account), **user_privilege(account.name))
        app_login_item_restored(name="Ollama.app's login item enabled again", account=account,
                                port=settings.ollama_port, **user_privilege(account.name))
    else:
        units = our_units()
        if host.get_fact(FileContents, path=UNIT_PATH) in [unit.splitlines() for unit in units]:
            systemd.service(name="Stop and disable Ollama", service=UNIT, running=False, enabled=False)
        reload = "systemctl daemon-reload"
        # The user's own drop-ins (override.conf included) stay, and with them the directory.
        legacy_drop_in_removed(name="Remove an override.conf of ours (an earlier version's)", path=LEGACY_DROP_IN_PATH,
                               environment=list(server_environment(settings, settings.ollama_gpu)))
        file_removed(name="Remove the Ollama service overrides", path=DROP_IN_PATH,
                     after=f"rmdir {posixpath.dirname(DROP_IN_PATH)} 2>/dev/null; {reload}")
        file_removed(name="Remove the Ollama systemd unit", path=UNIT_PATH, content=units, after=reload)
        remove_allowlist()
    system = system_privilege()
    link_removed(name="Remove the ollama command", path=BIN_LINK, inside=INSTALL_ROOT, **system)
    files.directory(name="Remove Ollama releases", path=posixpath.dirname(INSTALL_ROOT), present=False, **system)
    files.directory(name="Remove the model pull script", path=posixpath.dirname(PULL_SCRIPT), present=False,
                    **system)
    if settings.uninstall_remove_models:
        files.directory(name=f"Remove the models in {models} (uninstall_remove_models)", path=models,
                        present=False, **system)
    if kernel != "Darwin":
        server.user(name="Remove the Ollama service user (its home and models stay)", user=SERVICE_USER,
                    present=False)
        server.group(name="Remove the Ollama service group", group=SERVICE_USER, present=False)
