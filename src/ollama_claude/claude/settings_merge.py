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
#: Env keys that would send requests elsewhere or override ours: the provider switches the pinned binary lists
#: (2.1.332 strings: CLAUDE_CODE_USE_{BEDROCK,VERTEX,FOUNDRY,ANTHROPIC_AWS,MANTLE,GATEWAY,ANTHROPIC_GOOGLE_CLOUD}),
#: the pre-2.x small/fast model, which wins over ANTHROPIC_DEFAULT_HAIKU_MODEL when set, and ANTHROPIC_MODEL,
#: which outranks settings.json ``model`` (so a user's ``/model`` choice would not persist while it is set).
CONFLICTING_ENV = (
    "CLAUDE_CODE_USE_BEDROCK",
    "CLAUDE_CODE_USE_VERTEX",
    "CLAUDE_CODE_USE_FOUNDRY",
    "CLAUDE_CODE_USE_ANTHROPIC_AWS",
    "CLAUDE_CODE_USE_MANTLE",
    "CLAUDE_CODE_USE_GATEWAY",
    "CLAUDE_CODE_USE_ANTHROPIC_GOOGLE_CLOUD",
    "ANTHROPIC_SMALL_FAST_MODEL",
    "ANTHROPIC_MODEL",
)
#: What every Ollama route needs, from the pinned binary and Ollama's own ``ollama launch claude``:
#: - ENABLE_TOOL_SEARCH=false: with a custom base URL 2.1.332 defers tools behind ToolSearch, whose result is a
#:   ``tool_reference`` block; Ollama keeps only text from tool results, so the model would see nothing
#:   (``pi()`` in the binary reads 0/false/no/off as "standard": the flat tool list).
#: - CLAUDE_CODE_ATTRIBUTION_HEADER=0: otherwise the first system block is a billing header whose hash changes
#:   per request, so Ollama's KV cache never matches and every turn re-reads the whole prompt.
OLLAMA_ROUTE_ENV = {"ENABLE_TOOL_SEARCH": "false", "CLAUDE_CODE_ATTRIBUTION_HEADER": "0"}
#: The window Claude Code assumes for a model it does not know is 200,000 (2.1.197) or 1,000,000 (2.1.332)
#: tokens; this variable (read by both for names not starting with ``claude-``, unclamped) sets it.
CONTEXT_ENV = "CLAUDE_CODE_MAX_CONTEXT_TOKENS"
class SettingsFileError(ValueError):
    """An existing settings file we must not overwrite: not JSON, or not the shape Claude Code reads."""


def context_window(settings: Settings, model_context: int | None = None) -> int:
    """
    The context Claude Code should budget for: ``ollama_context_length``, or the model's own when lower
    (``model_context``: what the server reports for the default model, None when unknown). A cloud model runs
    on ollama.com, where the local OLLAMA_CONTEXT_LENGTH does not apply: its own window, when known.
    """
    if settings.default_model and _is_cloud(settings.default_model) and model_context:
        return model_context
    if model_context:
        return min(settings.ollama_context_length, model_context)
    return settings.ollama_context_length


def _is_cloud(model: str) -> bool:
    name, _, tag = model.partition(":")
    return tag == "cloud" or tag.endswith("-cloud") or name.endswith("-cloud")


def claude_env(settings: Settings, model_context: int | None = None) -> dict[str, str]:
    """
    The environment that points Claude Code at Ollama (or the proxy route), every role included, updates off,
    tool search and the attribution header off, the window Ollama really gives. The main model is settings.json
    ``model`` (see user_settings), not ANTHROPIC_MODEL, so ``/model`` keeps working.
    """
    model = settings.default_model or ""
    env = {
        "ANTHROPIC_BASE_URL": settings.claude_base_url,
        "ANTHROPIC_AUTH_TOKEN": settings.claude_token,
        "ANTHROPIC_API_KEY": "",
    }
    roles = settings.role_models
    env.update({name: roles.get(role, model) for role, name in ROLE_ENV.items()})
    env["DISABLE_AUTOUPDATER"] = "1"
    env.update(OLLAMA_ROUTE_ENV)
    env[CONTEXT_ENV] = str(context_window(settings, model_context))
    if settings.claude_telemetry_off:
        env.update(dict.fromkeys(TELEMETRY_ENV, "1"))
    if settings.claude_max_output_tokens:
        env["CLAUDE_CODE_MAX_OUTPUT_TOKENS"] = str(settings.claude_max_output_tokens)
    return env


def user_settings(settings: Settings, model_context: int | None = None) -> dict[str, Any]:
    """Managed keys of a user's settings.json: env, model and the default permission mode."""
    return {
        "env": claude_env(settings, model_context),
        "model": settings.default_model,
        "permissions": {"defaultMode": settings.claude_permission_mode},
    }


#: Claude Code's state file (``~/.claude.json``, or ``.claude.json`` in CLAUDE_CONFIG_DIR): the interactive
#: onboarding wizard runs while ``hasCompletedOnboarding`` is not true (2.1.332: ``!o.hasCompletedOnboarding``).
ONBOARDING_STATE = {"hasCompletedOnboarding": True}


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
