"""The models step of the deploy: the declared models on the host's own server, each able to call tools."""

from __future__ import annotations

from pyinfra import host, logger
from pyinfra.api import deploy
from pyinfra.facts.server import Kernel
from pyinfra.operations import files

from ..accounts import laptop_account
from ..context import host_settings
from ..ollama.config import SERVICE_HOME, SERVICE_USER
from ..privilege import system_privilege
from ..proxy import download_arguments
from .operations import (
    PULL_SCRIPT,
    PULL_SCRIPT_SOURCE,
    cloud_signed_in,
    models_fanned_out,
    models_pruned,
    models_pulled,
    tools_capable,
)


@deploy("Ollama models")
def manage_models() -> None:
    """
    Pull the library models, then the cloud models once the server is signed in, check that every model
    Claude Code uses can call tools, and prune the undeclared ones if asked. A host without its own server
    (``ollama_enabled = False``: a laptop using a GPU box) has nothing to do here.
    """
    settings = host_settings()
    if not settings.ollama_enabled:
        logger.info(f"{host.name}: ollama_enabled is off, no local models to manage")
        return
    url = settings.listen_url
    files.put(name="Install the model pull script", src=str(PULL_SCRIPT_SOURCE), dest=PULL_SCRIPT, mode="755",
              **system_privilege())
    if settings.ollama_models and settings.ollama_models_mirror and host.get_fact(Kernel) != "Darwin":
        models_fanned_out(name="Copy library models from the fleet mirror (fan-out)", models=settings.ollama_models,
                          base_url=url, mirror_url=settings.ollama_models_mirror, owner=SERVICE_USER,
                          store=settings.ollama_models_dir or f"{SERVICE_HOME}/.ollama/models",
                          **download_arguments(settings))
    if settings.ollama_models:
        models_pulled(name="Pull library models", models=settings.ollama_models, base_url=url,
                      retries=settings.ollama_pull_retries)
    if settings.ollama_cloud_models:
        # The key to link is the server account's: the service user on Linux, the laptop user's LaunchAgent on macOS.
        account = laptop_account(settings) if host.get_fact(Kernel) == "Darwin" else None
        if not isinstance(account, str):  # else the Ollama step has failed this host, naming the setting
            cloud_signed_in(name="Check the ollama.com sign-in for cloud models", base_url=url,
                            user=account.name if account else SERVICE_USER,
                            home=account.home if account else SERVICE_HOME)
        models_pulled(name="Pull cloud models", models=settings.ollama_cloud_models, base_url=url,
                      retries=settings.ollama_pull_retries)
    used_by_claude = [*settings.role_models.values(), settings.default_model]
    if settings.default_model and settings.base_url == url:  # else Claude Code uses another host's server
        tools_capable(name="Check that Claude Code's models can call tools",
                      models=[model for model in used_by_claude if model], base_url=url)
    if settings.ollama_prune:
        models_pruned(name="Prune undeclared models", declared=settings.ollama_models + settings.ollama_cloud_models,
                      base_url=url)
