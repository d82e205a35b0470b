"""
The seed's checklist as pure functions: observations in (recorded fact values), one verdict per item out.

Keeping the decisions here, apart from the facts that gather the observations, lets every pass/fail message and
fix line be tested against recorded outputs without a host.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Any, Literal

from packaging.version import InvalidVersion, Version

from ..claude.settings_merge import CONTEXT_ENV, OLLAMA_ROUTE_ENV, ROLE_ENV, TELEMETRY_ENV
from ..models.facts import ShownModel
from ..settings import MIN_OLLAMA_VERSION, MIN_TOOL_CONTEXT, ClaudeUser, ModelRef, Settings
from .facts import JsonDocument

Status = Literal["pass", "fail", "warn", "skip"]

#: Checklist items in the issue's order: number -> (key, title).
ITEMS: dict[int, tuple[str, str]] = {
    1: ("ollama", f"Ollama >= {MIN_OLLAMA_VERSION} answers, version matches the pin"),
    2: ("context", f"Context length in effect >= {MIN_TOOL_CONTEXT}"),
    3: ("models", "Configured models present, from the library, with tools"),
    4: ("claude_env", "Claude Code env: Bearer token, no API key, base URL reachable"),
    5: ("headless", "Headless edits allowed"),
    6: ("telemetry", "Telemetry vars set (or opt-out recorded)"),
    7: ("edit_test", "The edit test passes as the user"),
    8: ("role_models", "Role models resolve to models on the Ollama server"),
    9: ("claude_version", "Pinned Claude Code version installed"),
}
HOST_ITEMS = (1, 2, 3)
USER_ITEMS = (4, 5, 6, 7, 8, 9)
ROLE_VARS = tuple(ROLE_ENV.values())
#: Set only when someone chose to; if set, they must resolve too (SMALL_FAST wins over HAIKU in 2.x).
OPTIONAL_ROLE_VARS = ("ANTHROPIC_SMALL_FAST_MODEL", "ANTHROPIC_MODEL")
REDEPLOY = "re-run deploys/ollama_claude.py"


@dataclass(frozen=True)
class ItemResult:
    """One checklist item's verdict; ``fix`` is the one-line remedy shown when it is not a pass."""

    number: int
    status: Status
    message: str
    fix: str = ""

    @property
    def key(self) -> str:
        return ITEMS[self.number][0]

    @property
    def title(self) -> str:
        return ITEMS[self.number][1]


def passed(number: int, message: str) -> ItemResult:
    return ItemResult(number, "pass", message)


def failed(number: int, message: str, fix: str) -> ItemResult:
    return ItemResult(number, "fail", message, fix)


@dataclass(frozen=True)
class HostObservation:
    """What the host's Ollama service reports (fact values; None where the server did not answer)."""

    version: str | None
    service_env: dict[str, str] | None
    models: dict[str, str] | None
    capabilities: dict[str, list[str] | None] = field(default_factory=dict)
    loaded: dict[str, int] | None = None
    shown: dict[str, ShownModel] = field(default_factory=dict)  # /api/show per declared library model

    @property
    def listed(self) -> set[str]:
        """Model names the server lists, as ``name:tag``."""
        return {normalise(name) for name in self.models or {}}


@dataclass(frozen=True)
class UserObservation:
    """What one user's Claude Code sees (fact values)."""

    uid: int | None
    login_env: dict[str, str]
    user_settings: JsonDocument | None
    managed_settings: JsonDocument | None
    base_url_status: int
    claude_version: str | None
    managed_dropins: tuple[JsonDocument, ...] = ()  # managed-settings.d/*.json, in name order

    @property
    def effective_settings(self) -> dict[str, Any]:
        """
        User settings.json under managed settings, merged key by key (managed wins), as Claude Code does:
        managed-settings.json, then each managed-settings.d/*.json in name order over it.
        """
        merged: dict[str, Any] = {}
        for document in (self.user_settings, self.managed_settings, *self.managed_dropins):
            for key, value in (document.mapping if document else {}).items():
                if isinstance(value, dict) and isinstance(merged.get(key), dict):
                    merged[key] = {**merged[key], **value}
                else:
                    merged[key] = value
        return merged

    @property
    def effective_env(self) -> dict[str, str]:
        """The login shell's env with settings.json ``env`` over it (settings beat the shell, ollama#17990)."""
        env = dict(self.login_env)
        env.update({key: str(value) for key, value in (self.effective_settings.get("env") or {}).items()})
        return env


def normalise(name: str) -> str:
    """``glm-4.7-flash`` and ``glm-4.7-flash:latest`` name the same model; unparsable names stay as given."""
    try:
        return ModelRef.parse(name).full
    except ValueError:
        return name


def ollama_url(settings: Settings) -> str:
    """The server the checklist asks: this host's own, or the remote one Claude Code uses."""
    return settings.listen_url if settings.ollama_enabled else settings.base_url


# --- Host items -----------------------------------------------------------------------------------------------
def check_ollama(settings: Settings, obs: HostObservation) -> ItemResult:
    url = ollama_url(settings)
    if obs.version is None:
        return failed(1, f"Ollama does not answer at {url}/api/version",
                      f"start it (systemctl restart ollama; journalctl -u ollama) or {REDEPLOY}")
    running = obs.version
    try:
        version = Version(running)
    except InvalidVersion:
        return failed(1, f"{url} reports version {running!r}", f"reinstall the pinned Ollama: {REDEPLOY}")
    if version < MIN_OLLAMA_VERSION:
        return failed(1, f"Ollama {running} is below {MIN_OLLAMA_VERSION}: its tool calls after thinking are "
                         "malformed, so Claude Code's Edit/Bash fail (\"Content block not found\")",
                      f"set ollama_version >= {MIN_OLLAMA_VERSION} and {REDEPLOY} to upgrade")
    if settings.ollama_enabled and version != Version(settings.ollama_version):
        return failed(1, f"Ollama {running} runs, ollama_version pins {settings.ollama_version}",
                      f"{REDEPLOY} to install the pinned version")
    return passed(1, f"Ollama {running} at {url}")


def check_context(settings: Settings, obs: HostObservation) -> ItemResult:
    """The service environment says what the server will use; /api/ps says what loaded models really got."""
    fix = f"set ollama_context_length = 64000 (or 128000) and {REDEPLOY} (restarts ollama)"
    notes = []
    if settings.ollama_enabled:
        if obs.service_env is None:
            return failed(2, "no Ollama service found to read OLLAMA_CONTEXT_LENGTH from", REDEPLOY)
        configured = obs.service_env.get("OLLAMA_CONTEXT_LENGTH")
        if not configured or not configured.isdigit() or int(configured) < MIN_TOOL_CONTEXT:
            shown = configured or "unset (Ollama's default: 4096 below 24 GiB VRAM)"
            return failed(2, f"service OLLAMA_CONTEXT_LENGTH={shown} < {MIN_TOOL_CONTEXT}", fix)
        notes.append(f"service OLLAMA_CONTEXT_LENGTH={configured}")
        for ref in settings.library_models:
            if (problem := _model_context_problem(ref.full, obs.shown.get(ref.full), int(configured))):
                return failed(2, *problem)
    for name, length in (obs.loaded or {}).items():
        if length < MIN_TOOL_CONTEXT:
            return failed(2, f"server runs {name} with context_length {length} < {MIN_TOOL_CONTEXT}", fix)
        notes.append(f"{name} loaded with {length}")
    if not notes and obs.loaded is None:  # before the edit test: a remote server's context shows once it loads
        return ItemResult(2, "skip", "remote server: the context in effect is read once the edit test loads the model")
    if not notes:
        return failed(2, "no context length to check: remote server with no model loaded", fix)
    return passed(2, ", ".join(notes))


def _model_context_problem(name: str, shown: ShownModel | None, configured: int) -> tuple[str, str] | None:
    """(message, fix) when a model's own num_ctx or trained context keeps it below the tool-safe context."""
    if shown is None:
        return None
    in_effect = shown.context_in_effect(configured)
    if in_effect >= MIN_TOOL_CONTEXT:
        return None
    if shown.num_ctx and shown.num_ctx < configured and shown.num_ctx == in_effect:
        message = (f"{name} sets its own num_ctx {shown.num_ctx}, which overrides OLLAMA_CONTEXT_LENGTH="
                   f"{configured}: context in effect {in_effect} < {MIN_TOOL_CONTEXT}")
        return message, (f"re-create {name} without PARAMETER num_ctx (or with num_ctx {MIN_TOOL_CONTEXT}), or "
                         "declare the library model")
    message = (f"{name} is trained for {shown.trained_context} tokens and Ollama caps its context there: "
               f"{in_effect} < {MIN_TOOL_CONTEXT}")
    return message, f"choose a model with a context of {MIN_TOOL_CONTEXT} or more for ollama_models/claude_model"


def check_models(settings: Settings, obs: HostObservation) -> ItemResult:
    if obs.models is None:
        return failed(3, "/api/tags did not answer", "start Ollama, then " + REDEPLOY)
    problems, fixes = [], []
    for ref in settings.library_models + settings.cloud_models:
        if ref.full not in obs.listed:
            problems.append(f"{ref.full} missing")
            fixes.append(f"ollama pull {ref.full}")
            continue
        if "tools" not in (obs.capabilities.get(ref.full) or []):
            problems.append(f"{ref.full} lacks the tools capability")
            fixes.append(f"pull {ref.full} from the library (ollama pull {ref.name}), not an HF import")
    if problems:
        return failed(3, "; ".join(problems), "; ".join(fixes) + f" (or {REDEPLOY})")
    names = ", ".join(ref.full for ref in settings.library_models + settings.cloud_models)
    return passed(3, f"{names} present with tools")


# --- User items -----------------------------------------------------------------------------------------------
def check_claude_env(user: ClaudeUser, obs: UserObservation, context: int | None = None) -> ItemResult:
    """
    + context: the context Ollama gives the default model (None: not an Ollama route we can judge); Claude
      Code must be told a window no larger, or it never compacts before Ollama's limit
    """
    env, where = obs.effective_env, _settings_path(obs)
    fix = f"set env ANTHROPIC_AUTH_TOKEN=ollama, ANTHROPIC_API_KEY= (empty) in {where}: {REDEPLOY}"
    if env.get("ANTHROPIC_API_KEY"):
        return failed(4, f"ANTHROPIC_API_KEY is set for {user.name} (sent as x-api-key, not Bearer)", fix)
    if not env.get("ANTHROPIC_AUTH_TOKEN"):
        return failed(4, f"ANTHROPIC_AUTH_TOKEN is empty for {user.name}: Claude Code is not logged in", fix)
    base_url = env.get("ANTHROPIC_BASE_URL", "")
    if not base_url:
        return failed(4, f"ANTHROPIC_BASE_URL is unset for {user.name}: requests would go to Anthropic",
                      f"set ANTHROPIC_BASE_URL in {where}: {REDEPLOY}")
    if not 200 <= obs.base_url_status < 400:
        return failed(4, f"ANTHROPIC_BASE_URL {base_url} does not answer HEAD / from this host "
                         f"(status {obs.base_url_status})",
                      f"fix ollama_base_url (or the server at {base_url}) and {REDEPLOY}")
    if context is not None:
        problem = _ollama_route_problem(env, context)
        if problem:
            return failed(4, f"{problem} for {user.name}", f"{REDEPLOY} (settings.json env)")
        return passed(4, f"Bearer token set, no API key, {base_url} answers, {CONTEXT_ENV}={env[CONTEXT_ENV]}, "
                         + ", ".join(f"{key}={value}" for key, value in OLLAMA_ROUTE_ENV.items()))
    return passed(4, f"Bearer token set, no API key, {base_url} answers")


def _ollama_route_problem(env: dict[str, str], context: int) -> str | None:
    window = env.get(CONTEXT_ENV, "")
    if not window.isdigit() or int(window) <= 0:
        return (f"{CONTEXT_ENV} is {window or 'unset'}: Claude Code assumes a window of 200,000 tokens or more "
                f"and never compacts before Ollama's {context}")
    if int(window) > context:
        return f"{CONTEXT_ENV}={window} exceeds the {context} tokens Ollama gives the model"
    wrong = [f"{key}={env.get(key, 'unset')}" for key, value in OLLAMA_ROUTE_ENV.items() if env.get(key) != value]
    if wrong:
        wanted = ", ".join(f"{key}={value}" for key, value in OLLAMA_ROUTE_ENV.items())
        return f"{', '.join(wrong)} (wanted {wanted}: tool_reference results and the KV cache)"
    return None


def check_headless(user: ClaudeUser, obs: UserObservation) -> ItemResult:
    mode = (obs.effective_settings.get("permissions") or {}).get("defaultMode")
    if mode in ("acceptEdits", "bypassPermissions"):
        return passed(5, f"permissions.defaultMode {mode}")
    if obs.uid is None:
        return failed(5, f"user {user.name} does not exist", "create the user or remove it from claude_users")
    if obs.uid != 0:
        return passed(5, f"--dangerously-skip-permissions usable (uid {obs.uid})")
    return failed(5, f"{user.name} is root (uid 0) and permissions.defaultMode is {mode or 'unset'}",
                  f"set claude_permission_mode = 'acceptEdits' or use an unprivileged user, and {REDEPLOY}")


def check_telemetry(settings: Settings, obs: UserObservation) -> ItemResult:
    if not settings.claude_telemetry_off:
        return passed(6, "telemetry left on by choice (claude_telemetry_off = False)")
    missing = [name for name in TELEMETRY_ENV if obs.effective_env.get(name) != "1"]
    if missing:
        return failed(6, f"not set to 1: {', '.join(missing)}",
                      f"{REDEPLOY} (settings.json env), or set claude_telemetry_off = False to opt out")
    return passed(6, ", ".join(TELEMETRY_ENV) + " = 1")


def check_role_models(obs: UserObservation, host: HostObservation) -> ItemResult:
    env, listed = obs.effective_env, host.listed
    problems = [f"{name} unset" for name in ROLE_VARS if not env.get(name)]
    for name in ROLE_VARS + OPTIONAL_ROLE_VARS:
        if env.get(name) and normalise(env[name]) not in listed:
            problems.append(f"{name}={env[name]} is not on the Ollama server")
    if problems:
        return failed(8, "; ".join(problems) + ": those requests would name Anthropic models",
                      f"map every role to a local model (claude_role_models) and {REDEPLOY}")
    return passed(8, ", ".join(sorted({env[name] for name in ROLE_VARS})) + " on the server")


def check_claude_version(settings: Settings, user: ClaudeUser, obs: UserObservation) -> ItemResult:
    command = claude_command(settings)
    if obs.claude_version is None:
        return failed(9, f"Claude Code missing: `{command} --version` fails in a login shell of {user.name}",
                      f"{REDEPLOY} (installs Claude Code {settings.claude_code_version})")
    if obs.claude_version != settings.claude_code_version:
        return failed(9, f"Claude Code {obs.claude_version} installed, pinned {settings.claude_code_version}",
                      f"{REDEPLOY} to switch to the pinned version")
    return passed(9, f"Claude Code {obs.claude_version}")


def claude_command(settings: Settings) -> str:
    """What the user types: the isolation wrapper when config isolation is on, else ``claude``."""
    return settings.claude_wrapper_name if settings.claude_config_isolation else "claude"


def _settings_path(obs: UserObservation) -> str:
    return obs.user_settings.path if obs.user_settings else "~/.claude/settings.json"


def settings_problem(obs: UserObservation) -> ItemResult | None:
    """Claude Code silently ignores an invalid settings.json in -p mode: name the file and the parse error."""
    document = obs.user_settings
    if document and document.error:
        return failed(4, f"{document.path} is not valid JSON ({document.error}): Claude Code ignores it",
                      f"repair or remove {document.path}, then {REDEPLOY}")
    return None


def downgrade(result: ItemResult, reason: str) -> ItemResult:
    """A failure the fallback chain works around: reported, but the host still passes."""
    return replace(result, status="warn", message=f"{result.message} ({reason})") if result.status == "fail" else result
