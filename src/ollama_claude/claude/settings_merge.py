"""
Claude Code's managed configuration, and its merge into a settings.json the user may already have.

Pure functions, run on the control machine: the host only sends the file's text and receives the finished
file, so the merge is property-tested here and never echoed through a shell. ``env`` in settings.json beats
the shell (ollama/ollama#17990), so a stale provider switch or base URL there must go; we say which keys went.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from ..settings import Settings

#: Settings key -> environment variable Claude Code reads for that role's model.
ROLE_ENV = {
    "haiku": "ANTHROPIC_DEFAULT_HAIKU_MODEL",
    "sonnet": "ANTHROPIC_DEFAULT_SONNET_MODEL",
    "opus": "ANTHROPIC_DEFAULT_OPUS_MODEL",
    "fable": "ANTHROPIC_DEFAULT_FABLE_MODEL",
    "subagent": "CLAUDE_CODE_SUBAGENT_MODEL",
}
#: Off switches for traffic Ollama cannot answer (ollama/ollama#13949).
TELEMETRY_ENV = ("DISABLE_TELEMETRY", "DISABLE_ERROR_REPORTING", "CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC")
#: Env keys that would send requests elsewhere: provider switches (strings of the 2.1.197 binary) and the
#: pre-2.x small/fast model, which wins over ANTHROPIC_DEFAULT_HAIKU_MODEL when set.
CONFLICTING_ENV = (
    "CLAUDE_CODE_USE_BEDROCK",
    "CLAUDE_CODE_USE_VERTEX",
    "CLAUDE_CODE_USE_FOUNDRY",
    "CLAUDE_CODE_USE_ANTHROPIC_AWS",
    "CLAUDE_CODE_USE_MANTLE",
    "ANTHROPIC_SMALL_FAST_MODEL",
)
class SettingsFileError(ValueError):
    """An existing settings file we must not overwrite: not JSON, or not the shape Claude Code reads."""


def claude_env(settings: Settings) -> dict[str, str]:
    """The environment that points Claude Code at Ollama (or the proxy route), every role included, updates off."""
    model = settings.default_model or ""
    env = {
        "ANTHROPIC_BASE_URL": settings.claude_base_url,
        "ANTHROPIC_AUTH_TOKEN": settings.claude_token,
        "ANTHROPIC_API_KEY": "",
        "ANTHROPIC_MODEL": model,
    }
    roles = settings.role_models
    env.update({name: roles.get(role, model) for role, name in ROLE_ENV.items()})
    env["DISABLE_AUTOUPDATER"] = "1"
    if settings.claude_telemetry_off:
        env.update(dict.fromkeys(TELEMETRY_ENV, "1"))
    if settings.claude_max_output_tokens:
        env["CLAUDE_CODE_MAX_OUTPUT_TOKENS"] = str(settings.claude_max_output_tokens)
    return env


def user_settings(settings: Settings) -> dict[str, Any]:
    """Managed keys of a user's settings.json: env, model and the default permission mode."""
    return {
        "env": claude_env(settings),
        "model": settings.default_model,
        "permissions": {"defaultMode": settings.claude_permission_mode},
    }


def machine_settings(settings: Settings) -> dict[str, Any]:
    """Managed keys of managed-settings.json: policy only (base URL, updates, telemetry), no token."""
    env = claude_env(settings)
    policy = ("ANTHROPIC_BASE_URL", "DISABLE_AUTOUPDATER", *TELEMETRY_ENV)
    return {"env": {key: env[key] for key in policy if key in env}}


def parse_settings_text(text: str | None, path: str) -> dict[str, Any]:
    """The file's JSON object; a missing or blank file is empty; anything unreadable raises with the path."""
    if text is None or not text.strip():
        return {}
    try:
        data = json.loads(text)
    except json.JSONDecodeError as error:
        raise SettingsFileError(
            f"{path}: invalid JSON ({error.msg} at line {error.lineno} column {error.colno}); "
            "fix or move the file, then run again"
        ) from None
    if not isinstance(data, dict):
        raise SettingsFileError(
            f"{path}: top level is a JSON {type(data).__name__}, not an object; fix the file"
        )
    for key in ("env", "permissions"):
        if key in data and not isinstance(data[key], dict):
            raise SettingsFileError(f"{path}: {key!r} is not a JSON object; fix the file")
    return data


@dataclass
class Merge:
    """The merged settings and what it overrode in the user's file (key names only: values may be secrets)."""

    data: dict[str, Any]
    replaced: list[str] = field(default_factory=list)
    removed: list[str] = field(default_factory=list)

    def render(self) -> str:
        return json.dumps(self.data, indent=2, ensure_ascii=False) + "\n"

    @property
    def report(self) -> str:
        parts = [f"replaced {', '.join(self.replaced)}"] if self.replaced else []
        parts += [f"removed {', '.join(self.removed)}"] if self.removed else []
        return "; ".join(parts)


def merge_settings(
    existing: dict[str, Any], managed: dict[str, Any], drop_env: tuple[str, ...] = ()
) -> Merge:
    """
    Managed keys win, everything else of the user's survives in its order; ``drop_env`` keys leave ``env``.

    Objects merge key by key (so ``permissions.allow`` and ``hooks`` stay); any other managed value replaces
    the user's. Applying the result again changes nothing.
    """
    merge = Merge(data={})
    merge.data = _merge_object(existing, managed, "", merge)
    env = merge.data.get("env")
    if isinstance(env, dict):
        for key in drop_env:
            if key in env:
                del env[key]
                merge.removed.append(f"env.{key}")
    return merge


def _merge_object(
    existing: dict[str, Any], managed: dict[str, Any], prefix: str, merge: Merge
) -> dict[str, Any]:
    result = dict(existing)
    for key, value in managed.items():
        current = result.get(key)
        if isinstance(value, dict) and isinstance(current, dict):
            result[key] = _merge_object(current, value, f"{prefix}{key}.", merge)
            continue
        if key in result and current != value:
            merge.replaced.append(f"{prefix}{key}")
        result[key] = value
    return result
