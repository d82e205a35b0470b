"""Where Claude Code's files go on a host, per user and machine-wide: decisions only, no host access."""

from __future__ import annotations

import posixpath
import re
from dataclasses import dataclass

from ..settings import ClaudeUser, Settings
from .chosen_model import CHOSEN_MODEL_FILE

#: The stable command of the native install (a symlink into claude_code_dir).
CLAUDE_LINK = "/usr/local/bin/claude"
#: Claude Code's machine-wide policy file, per ``uname -s`` (code.claude.com/docs/en/settings).
MANAGED_SETTINGS = {
    "Linux": "/etc/claude-code/managed-settings.json",
    "Darwin": "/Library/Application Support/ClaudeCode/managed-settings.json",
}
ROOT_GROUP = {"Linux": "root", "Darwin": "wheel"}
#: Our env files live here, under the user's home.
ENV_DIR = ".config/ollama-claude"
#: Login files bash reads, first found wins; ~/.profile is created when none exists.
BASH_LOGIN_FILES = (".bash_profile", ".bash_login", ".profile")


def managed_settings_path(kernel: str) -> str:
    try:
        return MANAGED_SETTINGS[kernel]
    except KeyError:
        raise ValueError(
            f"claude_managed_settings: no managed-settings.json location known for {kernel}"
        ) from None


def expand_home(path: str, home: str) -> str:
    """
    A concrete path for ``path`` as the user's shell would expand it with no XDG variables set:
    ``${XDG_DATA_HOME:-$HOME/.local/share}`` -> ``<home>/.local/share``; ``$HOME``, ``${HOME}``, ``~`` ->
    home.
    Written concretely into the env files and the wrapper, so they always agree with where settings.json is.
    """
    path = re.sub(r"\$\{XDG_[A-Z_]+:-([^}]*)\}", r"\1", path)
    path = path.replace("${HOME}", home).replace("$HOME", home)
    if path == "~" or path.startswith("~/"):
        path = home + path[1:]
    if "$" in path or not path.startswith("/"):
        raise ValueError(
            f"claude_config_dir {path!r} must expand to an absolute path ($HOME and XDG defaults only)"
        )
    return posixpath.normpath(path)


@dataclass(frozen=True)
class UserPaths:
    """One user's Claude Code files."""

    home: str
    settings_json: str
    state_json: str  # Claude Code's state file: onboarding, per-project trust
    env_sh: str
    env_fish: str
    chosen_model: str
    wrapper: str | None
    config_dir: str | None
    rc_files: tuple[str, ...]

    @property
    def wrapper_dir(self) -> str | None:
        return posixpath.dirname(self.wrapper) if self.wrapper else None


def user_paths(settings: Settings, user: ClaudeUser, home: str, bash_login: str = ".profile") -> UserPaths:
    """
    + bash_login: the login file bash reads on this host (the first of BASH_LOGIN_FILES that exists)

    rc files: bash reads ~/.bashrc only in interactive non-login shells, and Debian's returns early when not
    interactive, so bash also gets the block in its login file; zsh reads ~/.zshenv in every shell, login
    or not; fish reads config.fish in every shell.
    """
    config_dir = expand_home(settings.claude_config_dir, home) if settings.claude_config_isolation else None
    claude_dir = config_dir or f"{home}/.claude"
    rc = {
        "bash": (".bashrc", bash_login),
        "zsh": (".zshenv",),
        "fish": (".config/fish/config.fish",),
    }[user.shell or "bash"]
    return UserPaths(
        home=home,
        settings_json=f"{claude_dir}/settings.json",
        state_json=f"{config_dir}/.claude.json" if config_dir else f"{home}/.claude.json",
        env_sh=f"{home}/{ENV_DIR}/env.sh",
        env_fish=f"{home}/{ENV_DIR}/env.fish",
        chosen_model=f"{home}/{ENV_DIR}/{CHOSEN_MODEL_FILE}",
        wrapper=f"{home}/.local/bin/{settings.claude_wrapper_name}" if config_dir else None,
        config_dir=config_dir,
        rc_files=tuple(f"{home}/{name}" for name in rc),
    )
