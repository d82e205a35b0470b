"""
The proxy route of a run (``claude_route = litellm``): LiteLLM in its own virtualenv as a loopback systemd
service, its config mapping every model name Claude Code sends to Ollama. On route ``direct`` whatever an
earlier run installed is taken back, so switching routes is a normal re-run.
"""

from __future__ import annotations

import posixpath
from pathlib import Path

from pyinfra import host
from pyinfra.api import deploy
from pyinfra.facts.files import FileContents
from pyinfra.facts.server import Kernel
from pyinfra.operations import files, server, systemd

from ..claude.operations import managed_file
from ..context import host_settings
from ..hostfail import fail_host
from ..managedfiles import file_removed, ours
from ..proxy import download_arguments
from ..settings import Settings, SettingsError
from ..templating import render
from .facts import DirectoryEntries, LitellmVirtualenvs
from .operations import is_url, litellm_service, litellm_virtualenv

ROOT = "/opt/ollama-claude/litellm"
CONFIG_DIR = "/etc/ollama-claude/litellm"
CONFIG_PATH = f"{CONFIG_DIR}/config.yaml"
KEY_PATH = f"{CONFIG_DIR}/litellm.env"
UNIT = "ollama-claude-litellm.service"
UNIT_PATH = f"/etc/systemd/system/{UNIT}"
#: systemd's StateDirectory= of the proxy's dynamic user (its HOME).
STATE_DIR = "ollama-claude-litellm"
#: Where a control-machine wheelhouse is uploaded for the install; removed once the install succeeded.
UPLOAD_ROOT = "/var/cache/ollama-claude/litellm-wheels"
START_TIMEOUT = 120


def proxy_models(settings: Settings) -> list[str]:
    """Every model name Claude Code may send: the default, each role's, and every declared model (a model
    the verify chain chose for a user is one of them)."""
    declared = [ref.full for ref in settings.library_models + settings.cloud_models]
    names = [settings.default_model or "", *settings.role_models.values(), *declared]
    return [name for name in dict.fromkeys(names) if name]


def proxy_config(settings: Settings) -> str:
    return render(
        "litellm/config.yaml.j2", models=proxy_models(settings), default_model=settings.default_model,
        api_base=settings.base_url,
    )


def proxy_unit(settings: Settings) -> str:
    return render(
        "litellm/litellm.service.j2", venv=f"{ROOT}/{settings.claude_litellm_version}", config=CONFIG_PATH,
        host=settings.claude_litellm_host, port=settings.claude_litellm_port, env_file=KEY_PATH,
        state_dir=STATE_DIR,
    )


@deploy("LiteLLM proxy")
def configure_litellm() -> None:
    """On route litellm: the pinned proxy installed, configured and answering; on route direct: removed."""
    settings = host_settings()
    if settings.claude_route != "litellm":
        remove_litellm()
        return
    if host.get_fact(Kernel) != "Linux":
        server.shell(name="LiteLLM proxy needs systemd", commands=[fail_host(
            "claude_route litellm runs the proxy as a systemd service (Linux only); "
            "use claude_route direct here")])
        return
    version = settings.claude_litellm_version
    find_links, cleanup = _wheelhouse(settings)
    venv = litellm_virtualenv(
        name=f"Install LiteLLM {version} (proxy)", version=version, root=ROOT, find_links=find_links,
        cleanup=cleanup, **download_arguments(settings),
    )
    root = {"owner": "root", "group": "root"}
    config = managed_file(name=f"LiteLLM proxy config {CONFIG_PATH}", path=CONFIG_PATH,
                          content=proxy_config(settings), mode="644", **root)
    key = managed_file(name=f"LiteLLM master key {KEY_PATH} (0600)", path=KEY_PATH, mode="600", **root,
                       content=render("litellm/litellm.env.j2", master_key=settings.claude_litellm_master_key))
    unit = managed_file(name=f"LiteLLM proxy unit {UNIT_PATH}", path=UNIT_PATH, content=proxy_unit(settings),
                        mode="644", **root)
    litellm_service(
        name=f"Restart the LiteLLM proxy if needed and wait for {settings.litellm_url}",
        unit=UNIT, url=settings.litellm_url, timeout=START_TIMEOUT,
        restart=any(op.will_change for op in (venv, config, key, unit)),
    )


def _wheelhouse(settings: Settings) -> tuple[str | None, str | None]:
    """(find-links location on the host, path to remove after the install): a control-machine directory is
    uploaded first, and only while the pinned version is not installed yet."""
    wheelhouse = settings.claude_litellm_wheelhouse
    if not wheelhouse or is_url(wheelhouse):
        return wheelhouse, None
    if not Path(wheelhouse).is_dir():
        raise SettingsError(
            f"host {host.name}: claude_litellm_wheelhouse {wheelhouse} is not a directory on this machine; "
            "build it with `python -m ollama_claude.litellm.wheelhouse` or give a URL"
        )
    upload = f"{UPLOAD_ROOT}/{settings.claude_litellm_version}"
    if not host.get_fact(LitellmVirtualenvs, root=ROOT).get(settings.claude_litellm_version):
        files.sync(name=f"Upload the LiteLLM wheelhouse to {upload}", src=wheelhouse, dest=upload, delete=True)
    return upload, UPLOAD_ROOT


def remove_litellm() -> None:
    """Stop the proxy and take back its unit, config, key, virtualenvs and state; files not ours stay."""
    unit = host.get_fact(FileContents, path=UNIT_PATH)
    if unit and ours(unit, None):
        systemd.service(name="Stop and disable the LiteLLM proxy", service=UNIT, running=False, enabled=False)
    file_removed(name=f"Remove the LiteLLM proxy unit {UNIT_PATH}", path=UNIT_PATH,
                 after="systemctl daemon-reload")
    file_removed(name=f"Remove the LiteLLM proxy config {CONFIG_PATH}", path=CONFIG_PATH)
    file_removed(name=f"Remove the LiteLLM master key {KEY_PATH}", path=KEY_PATH,
                 after=f"rmdir {CONFIG_DIR} {posixpath.dirname(CONFIG_DIR)} 2>/dev/null || true")
    # Our /opt/ollama-claude goes too once the proxy was all it held.
    parent = posixpath.dirname(ROOT)
    only_ours = host.get_fact(DirectoryEntries, path=parent) == [posixpath.basename(ROOT)]
    files.directory(name=f"Remove the LiteLLM virtualenvs {ROOT}", path=parent if only_ours else ROOT, present=False)
    files.directory(name="Remove the LiteLLM proxy state", path=f"/var/lib/private/{STATE_DIR}", present=False)
    files.link(name="Remove the LiteLLM proxy state link", path=f"/var/lib/{STATE_DIR}", present=False)
