"""The Ollama concern of a run: the pinned server installed, configured and answering on every host."""

from __future__ import annotations

import posixpath
from io import StringIO

from pyinfra import host, logger
from pyinfra.api import deploy
from pyinfra.facts.files import File
from pyinfra.facts.server import Groups
from pyinfra.operations import files, server, systemd

from ..accounts import Account, laptop_account
from ..allowlist import rules as allowlist_rules
from ..allowlist.facts import NftAllowlist
from ..allowlist.operations import allowlist_loaded, allowlist_on_darwin, allowlist_removed, unenforceable
from ..context import host_settings
from ..hostfail import fail_host
from ..managedfiles import file_removed
from ..privilege import system_privilege
from ..proxy import download_arguments, proxy_has_credentials
from ..settings import Settings
from . import dropin, launchd, operations, port
from . import launchd_operations as launchd_ops
from .config import (
    DROP_IN_PATH,
    LEGACY_DROP_IN_PATH,
    SERVICE_HOME,
    SERVICE_USER,
    UNIT_PATH,
    drop_in,
    launchd_plist,
    server_environment,
    unit_file,
)
from .facts import OllamaInstall

#: Groups install.sh adds the service user to, when the host has them (GPU device access).
GPU_GROUPS = ("render", "video")


@deploy("Install Ollama")
def install_ollama() -> None:
    settings = host_settings()
    if not settings.ollama_enabled:
        logger.info(f"{host.name}: ollama_enabled is off, leaving Ollama as it is")
        return
    if settings.context_warning:
        logger.warning(f"{host.name}: {settings.context_warning}")
    platform = operations.current_platform()
    account = None
    if platform is operations.DARWIN:
        if settings.ollama_allowed_clients:
            _darwin_allowlist(settings)
        account = laptop_account(settings)
        if isinstance(account, str):
            server.shell(name="The Mac account to run Ollama as", commands=[fail_host(account)])
            return
        launchd_ops.mac_port_is_ours(
            name=f"Port {settings.ollama_port} free or held by our LaunchAgent (Ollama.app: ollama_macos_app)",
            account=account, port=settings.ollama_port, app=settings.ollama_macos_app,
        )
    else:
        port.port_is_ours(
            name=f"Port {settings.ollama_port} free or held by our ollama.service", port=settings.ollama_port,
            base_url=settings.listen_url,
        )
    # The allowlist first: a host where it cannot hold fails before any of Ollama changes.
    allowlist_unit = _linux_allowlist(settings) if platform is operations.LINUX else None
    mode = operations.gpu_mode(settings.ollama_gpu, platform)
    install = host.get_fact(OllamaInstall, binary=platform.binary)
    name = operations.release_name(settings.ollama_version, mode)
    previous = operations.previous_binary(install, name)
    if platform is operations.LINUX and name not in install["releases"]:
        operations.zstd_present(name="zstd for the .tar.zst release", install=settings.ollama_install_zstd,
                                **download_arguments(settings))
    release = operations.release(
        name=f"Install Ollama {settings.ollama_version}",
        version=settings.ollama_version, download_url=settings.ollama_download_url, gpu=mode,
        checksum=settings.ollama_checksum, sha256=settings.ollama_sha256,
        **system_privilege(), **download_arguments(settings),
    )
    environment = server_environment(settings, mode)
    if account is not None:
        configs = _launch_agent(environment, account)
    else:
        configs = _linux_service(settings, environment, allowlist_unit)
    operations.service(
        name="Restart Ollama if needed and wait for its version",
        version=settings.ollama_version, listen_url=settings.listen_url,
        health_timeout=settings.ollama_health_timeout,
        restart=any(op.will_change for op in [release, *configs]), previous=previous, account=account,
        port=settings.ollama_port,
    )


def _launch_agent(environment: dict[str, str], account: Account) -> list:
    """The LaunchAgent plist in the laptop user's ~/Library/LaunchAgents, owned by that user (also when the
    deploy runs as root, as MDM tools do); returns the ops whose change needs a restart."""
    owner = {"user": account.name, "group": account.group}
    files.directory(name="~/Library/LaunchAgents", path=posixpath.dirname(launchd.plist_path(account)), **owner)
    return [files.put(name="Ollama LaunchAgent", src=StringIO(launchd_plist(environment, account.home)),
                      dest=launchd.plist_path(account), mode="644", **owner)]


def _linux_service(settings: Settings, environment: dict[str, str], allowlist_unit: str | None) -> list:
    """Service user, unit and drop-in as install.sh makes them; returns the ops whose change needs a restart."""
    present = host.get_fact(Groups)
    server.group(name="Ollama service group", group=SERVICE_USER, system=True)
    server.user(
        name="Ollama service user", user=SERVICE_USER, group=SERVICE_USER, home=SERVICE_HOME, shell="/bin/false",
        system=True, create_home=True, groups=[g for g in GPU_GROUPS if g in present], append=True,
    )
    if settings.ollama_models_dir:
        files.directory(
            name="Ollama models directory", path=settings.ollama_models_dir, user=SERVICE_USER,
            group=SERVICE_USER, recursive=True,
        )
    unit = files.put(name="Ollama systemd unit", src=StringIO(unit_file()), dest=UNIT_PATH, mode="644")
    overrides = files.put(
        name="Ollama service overrides",
        src=StringIO(drop_in(environment, settings.ollama_allowed_clients, allowlist_unit)),
        # 0600 when a proxy URL carries a password: only root (and systemd) may read it
        dest=DROP_IN_PATH, mode="600" if proxy_has_credentials(settings) else "644",
    )
    legacy = dropin.legacy_drop_in_removed(
        name="Migrate our settings out of override.conf (a user's own stays)", path=LEGACY_DROP_IN_PATH,
        environment=list(environment),
    )
    for warning in dropin.override_warnings(host.get_fact(dropin.ServiceDropIns), list(environment)):
        logger.warning(f"{host.name}: {warning}")
    return [unit, overrides, legacy]


def _darwin_allowlist(settings: Settings) -> None:
    allowlist_on_darwin(name="ollama_allowed_clients on macOS", port=settings.ollama_port,
                        unenforced_ok=settings.ollama_allow_unenforced_lan)


def remove_allowlist() -> None:
    """Our nftables table, its boot unit and rules file gone (a host that never had them: no change)."""
    unit = allowlist_rules.UNIT
    file_removed(name="Remove the allowlist boot unit", path=allowlist_rules.UNIT_PATH,
                 before=f"systemctl disable {unit} >/dev/null 2>&1; true", after="systemctl daemon-reload")
    allowlist_removed(name="Remove our nftables table (ollama_allowed_clients)")
    file_removed(name="Remove the allowlist rules", path=allowlist_rules.RULES_FILE,
                 after=f"rmdir {allowlist_rules.RULES_FILE.rsplit('/', 1)[0]} 2>/dev/null; true")


def _linux_allowlist(settings: Settings) -> str | None:
    """
    ollama_allowed_clients as our nftables table, loaded now and at every boot before the server (whose drop-in
    then requires the unit: no table, no server). Returns that unit, or None when there is no list (an earlier
    list's table is removed) or the user accepted an unenforced one where nftables cannot work.
    """
    if not settings.ollama_allowed_clients:
        if host.get_fact(NftAllowlist)["state"] == "present" or host.get_fact(File, path=allowlist_rules.UNIT_PATH):
            remove_allowlist()
        return None
    fact = host.get_fact(NftAllowlist)
    if unenforceable(fact):  # fails the host here, or (opted in) warns and leaves the port unfiltered
        allowlist_loaded(name="ollama_allowed_clients enforceable", port=settings.ollama_port,
                         clients=settings.ollama_allowed_clients, unenforced_ok=settings.ollama_allow_unenforced_lan)
        return None
    rules_dir = allowlist_rules.RULES_FILE.rsplit("/", 1)[0]
    files.directory(name="Allowlist rules directory", path=rules_dir, mode="755")
    files.put(name="Allowlist rules (nftables)", dest=allowlist_rules.RULES_FILE, mode="644",
              src=StringIO(allowlist_rules.rules_file(settings.ollama_port, settings.ollama_allowed_clients)))
    boot_unit = files.put(name="Allowlist boot unit", dest=allowlist_rules.UNIT_PATH, mode="644",
                          src=StringIO(allowlist_rules.unit_file()))
    allowlist_loaded(name="Only loopback and ollama_allowed_clients reach the Ollama port", port=settings.ollama_port,
                     clients=settings.ollama_allowed_clients, **download_arguments(settings))  # may install nft
    systemd.service(name="Allowlist loaded at boot", service=allowlist_rules.UNIT, running=True, enabled=True,
                    daemon_reload=boot_unit.will_change)
    return allowlist_rules.UNIT
