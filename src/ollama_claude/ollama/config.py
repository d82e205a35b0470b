"""
The Ollama server's configuration as files: environment from settings, rendered into the systemd unit and
drop-in (Linux) or a LaunchAgent plist (macOS). Decisions here, file formats in templates/ollama/.
"""

from __future__ import annotations

import shlex

from ..proxy import service_environment
from ..settings import Settings
from ..templating import render
from .facts import BIN_LINK

SERVICE_USER = "ollama"
#: install.sh's service user home; models default to <home>/.ollama/models.
SERVICE_HOME = "/usr/share/ollama"
UNIT_PATH = "/etc/systemd/system/ollama.service"
DROP_IN_DIR = "/etc/systemd/system/ollama.service.d"
#: Our settings, in a drop-in of our own. systemd applies drop-ins in lexical file name order and the last
#: assignment of a variable wins: "zz-" sorts after the user's override.conf (what `systemctl edit` writes), so
#: for the variables we manage the values from group_data win; every other variable of the user's keeps working.
DROP_IN_PATH = f"{DROP_IN_DIR}/zz-ollama-claude.conf"
#: Where earlier versions of this toolkit wrote our settings: the file `systemctl edit` and users write.
LEGACY_DROP_IN_PATH = f"{DROP_IN_DIR}/override.conf"
SERVICE_PATH_ENV = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
LAUNCHD_LABEL = "com.ollama-claude.ollama"
#: Where Ollama.app writes its server log; our LaunchAgent uses the same file.
LAUNCHD_LOG = ".ollama/logs/server.log"

#: Ollama's documented way to keep the server off every GPU: an invalid device id (docs/gpu.mdx).
CPU_ONLY_ENV = {"CUDA_VISIBLE_DEVICES": "-1", "ROCR_VISIBLE_DEVICES": "-1"}
#: Every variable a drop-in of ours may set, whatever the settings (extras from ollama_environment come on top).
MANAGED_ENV = ("OLLAMA_HOST", "OLLAMA_CONTEXT_LENGTH", "OLLAMA_KEEP_ALIVE", "OLLAMA_MODELS", *CPU_ONLY_ENV)
#: The first line of every drop-in we wrote, this version and earlier ones.
DROP_IN_MARKER = "# Managed by ollama-claude"

def server_environment(settings: Settings, gpu_mode: str) -> dict[str, str]:
    """Everything the server process needs from our settings, managed keys first, extras after."""
    env = {
        "OLLAMA_HOST": settings.bind_address,
        "OLLAMA_CONTEXT_LENGTH": str(settings.ollama_context_length),
        "OLLAMA_KEEP_ALIVE": settings.ollama_keep_alive,
    }
    if settings.ollama_models_dir:
        env["OLLAMA_MODELS"] = settings.ollama_models_dir
    if gpu_mode == "cpu":
        env.update(CPU_ONLY_ENV)
    env.update(service_environment(settings))  # model pulls through the proxy, loopback direct
    env.update(sorted(settings.ollama_environment.items()))
    return env


def systemd_assignment(key: str, value: str) -> str:
    """``"KEY=value"`` quoted for an Environment= line: backslash and quote escaped, % as systemd's %%."""
    text = f"{key}={value}".replace("\\", "\\\\").replace('"', '\\"').replace("%", "%%")
    return f'"{text}"'


def unit_file() -> str:
    return render("ollama/ollama.service.j2", binary=BIN_LINK, user=SERVICE_USER, path=SERVICE_PATH_ENV)


def drop_in(environment: dict[str, str], allowed_clients: list[str], allowlist_unit: str | None = None) -> str:
    """``allowlist_unit``: the unit loading our nftables allowlist, which the server then requires."""
    lines = [systemd_assignment(key, value) for key, value in environment.items()]
    return render("ollama/override.conf.j2", environment=lines, allowed_clients=allowed_clients,
                  allowlist_unit=allowlist_unit)


def drop_in_settings(lines: list[str]) -> dict[str, list[str]]:
    """
    A drop-in's settings: ``{"Environment": [variable names], <other directive>: [values], "[Section]": []}``;
    comments and blank lines are skipped. Environment= lines may hold several (quoted) assignments.
    """
    found: dict[str, list[str]] = {}
    for raw in lines:
        line = raw.strip()
        if not line or line.startswith(("#", ";")):
            continue
        if line.startswith("["):
            found.setdefault(line, [])
            continue
        key, _, value = line.partition("=")
        key = key.strip()
        if key == "Environment":
            try:
                words = shlex.split(value)
            except ValueError:
                words = value.split()
            found.setdefault(key, []).extend(word.split("=", 1)[0] for word in words if "=" in word)
        else:
            found.setdefault(key, []).append(value.strip())
    return found


def legacy_drop_in_leftovers(lines: list[str], environment: dict[str, str]) -> list[str]:
    """
    What in an override.conf keeps it from being ours to remove: empty when an earlier version of this toolkit
    wrote it (our marker on its first line, nothing but [Service], the variables we manage or were asked to set,
    and the allowlist); otherwise the settings that are someone else's (the file then stays).
    """
    if not lines or not lines[0].startswith(DROP_IN_MARKER):
        return ["no ollama-claude header"]
    ours = set(MANAGED_ENV) | set(environment)
    leftovers = []
    for key, values in drop_in_settings(lines).items():
        if key == "[Service]" or key in ("IPAddressDeny", "IPAddressAllow"):
            continue
        if key == "Environment":
            leftovers += [f"Environment {name}" for name in values if name not in ours]
        else:
            leftovers.append(key)
    return leftovers


def launchd_plist(environment: dict[str, str], home: str) -> str:
    return render(
        "ollama/launchd.plist.j2", label=LAUNCHD_LABEL, binary=BIN_LINK, environment=environment,
        log=f"{home}/{LAUNCHD_LOG}",
    )
