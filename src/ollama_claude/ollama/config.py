"""
The Ollama server's configuration as files: environment from settings, rendered into the systemd unit and
drop-in (Linux) or a LaunchAgent plist (macOS). Decisions here, file formats in templates/ollama/.
"""

from __future__ import annotations

from ..settings import Settings
from ..templating import render
from .facts import BIN_LINK

SERVICE_USER = "ollama"
#: install.sh's service user home; models default to <home>/.ollama/models.
SERVICE_HOME = "/usr/share/ollama"
UNIT_PATH = "/etc/systemd/system/ollama.service"
DROP_IN_PATH = "/etc/systemd/system/ollama.service.d/override.conf"
SERVICE_PATH_ENV = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
LAUNCHD_LABEL = "com.ollama-claude.ollama"
#: Where Ollama.app writes its server log; our LaunchAgent uses the same file.
LAUNCHD_LOG = ".ollama/logs/server.log"

#: Ollama's documented way to keep the server off every GPU: an invalid device id (docs/gpu.mdx).
CPU_ONLY_ENV = {"CUDA_VISIBLE_DEVICES": "-1", "ROCR_VISIBLE_DEVICES": "-1"}

def server_environment(settings: Settings, gpu_mode: str) -> dict[str, str]:
    """Everything the server process needs from our settings, managed keys first, extras after."""
    env = {
        "OLLAMA_HOST": f"{settings.ollama_host}:{settings.ollama_port}",
        "OLLAMA_CONTEXT_LENGTH": str(settings.ollama_context_length),
        "OLLAMA_KEEP_ALIVE": settings.ollama_keep_alive,
    }
    if settings.ollama_models_dir:
        env["OLLAMA_MODELS"] = settings.ollama_models_dir
    if gpu_mode == "cpu":
        env.update(CPU_ONLY_ENV)
    env.update(sorted(settings.ollama_environment.items()))
    return env


def systemd_assignment(key: str, value: str) -> str:
    """``"KEY=value"`` quoted for an Environment= line: backslash and quote escaped, % as systemd's %%."""
    text = f"{key}={value}".replace("\\", "\\\\").replace('"', '\\"').replace("%", "%%")
    return f'"{text}"'


def unit_file() -> str:
    return render("ollama/ollama.service.j2", binary=BIN_LINK, user=SERVICE_USER, path=SERVICE_PATH_ENV)


def drop_in(environment: dict[str, str], allowed_clients: list[str]) -> str:
    lines = [systemd_assignment(key, value) for key, value in environment.items()]
    return render("ollama/override.conf.j2", environment=lines, allowed_clients=allowed_clients)


def launchd_plist(environment: dict[str, str], home: str) -> str:
    return render(
        "ollama/launchd.plist.j2", label=LAUNCHD_LABEL, binary=BIN_LINK, environment=environment,
        log=f"{home}/{LAUNCHD_LOG}",
    )
