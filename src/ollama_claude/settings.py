"""
Typed settings: every group_data option, validated once per host before anything runs.

pyinfra merges host data over group data over ``group_data/all.py``; this module turns that merged dict into
a :class:`Settings` object. Every deploy reads the object, never raw ``host.data``. Any invalid value raises
:class:`SettingsError` naming the host and the field, so a run stops before a single host is touched.
"""

from __future__ import annotations

import difflib
import re
import shutil
import subprocess
from functools import cached_property
from ipaddress import ip_address, ip_network
from typing import Any, Literal
from urllib.parse import urlsplit

from packaging.version import InvalidVersion, Version
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    ValidationInfo,
    field_validator,
    model_validator,
)
from pyinfra.api.exceptions import PyinfraError

from .claude.model_table import DEFAULT_FALLBACK_MODEL, fallback_model_problem

#: Before 0.18.0 a thinking model's tool call comes right after an unclosed thinking block that shares its index
#: (anthropic/anthropic.go@v0.16.3:850-909, fixed by f3f31a8 in v0.18.0): Claude Code rejects the stream.
MIN_OLLAMA_VERSION = Version("0.18.0")
#: From 0.30.0 a GGUF import takes tools/thinking from its embedded chat template (server/images.go@v0.30.0).
MIN_OLLAMA_GGUF_TOOLS = Version("0.30.0")
#: Below this context length Ollama shifts the context and tool calls break (ollama/ollama#13820).
MIN_TOOL_CONTEXT = 64000
#: Keys of ours live under these prefixes; an unknown key there is a typo, not someone else's data.
OWN_PREFIXES = ("ollama_", "claude_", "verify_", "uninstall_")
OWN_KEYS = ("model_override", "https_proxy", "http_proxy", "no_proxy")

# A library model reference: name[:tag][@sha256:digest]; names may carry a namespace (``user/model``).
_MODEL_RE = re.compile(
    r"^(?P<name>[a-z0-9][a-z0-9._-]*(?:/[a-z0-9][a-z0-9._-]*)?)"
    r"(?::(?P<tag>[A-Za-z0-9][A-Za-z0-9._-]{0,127}))?"
    r"(?:@(?:sha256:)?(?P<digest>[0-9a-f]{64}))?$"
)
_ENV_NAME_RE = re.compile(r"^[A-Z_][A-Z0-9_]*$")
# OLLAMA_KEEP_ALIVE as envconfig/config.go@v0.32.15:129-137 reads it: Go's time.ParseDuration, else whole
# seconds (strconv.ParseInt); anything else is silently ignored by the server, so it is refused here.
_GO_DURATION_RE = re.compile(r"^[-+]?(?:(?:\d+(?:\.\d*)?|\.\d+)(?:ns|us|\u00b5s|\u03bcs|ms|s|m|h))+$")
_WHOLE_SECONDS_RE = re.compile(r"^[-+]?\d+$")
_HF_PREFIXES = ("hf.co/", "huggingface.co/")
# A Hugging Face GGUF import: hf.co/<user>/<repository>[:<quantization>] (repository names keep their case).
_GGUF_RE = re.compile(
    r"^(?P<name>(?:hf\.co|huggingface\.co)/[A-Za-z0-9][A-Za-z0-9._-]*/[A-Za-z0-9][A-Za-z0-9._-]*)"
    r"(?::(?P<tag>[A-Za-z0-9][A-Za-z0-9._-]{0,127}))?"
    r"(?:@(?:sha256:)?(?P<digest>[0-9a-f]{64}))?$"
)

#: Environment the drop-in manages itself; ``ollama_environment`` may not override it.
MANAGED_OLLAMA_ENV = ("OLLAMA_HOST", "OLLAMA_CONTEXT_LENGTH", "OLLAMA_KEEP_ALIVE", "OLLAMA_MODELS")


class SettingsError(PyinfraError):
    """Invalid group_data: the message names every host and field at fault."""


class ModelRef(BaseModel):
    """One declared model: library name, tag (default ``latest``) and an optional pinned manifest digest."""

    model_config = ConfigDict(frozen=True)

    name: str
    tag: str = "latest"
    digest: str | None = None

    @classmethod
    def parse(cls, text: str) -> ModelRef:
        match = _MODEL_RE.match(text.strip()) or _GGUF_RE.match(text.strip())
        if not match:
            raise ValueError(f"{text!r} is not a library model reference (name[:tag][@sha256:<digest>])")
        return cls(name=match["name"], tag=match["tag"] or "latest", digest=match["digest"])

    @property
    def full(self) -> str:
        """``name:tag``, the form the server's /api/tags lists."""
        return f"{self.name}:{self.tag}"

    @property
    def is_gguf_import(self) -> bool:
        """A Hugging Face GGUF reference (``hf.co/<user>/<repo>``): tools only from its embedded template."""
        return self.name.startswith(_HF_PREFIXES)

    @property
    def is_cloud(self) -> bool:
        """Cloud models run on ollama.com and need a signed-in server (``:cloud`` or ``-cloud`` suffix)."""
        return self.tag == "cloud" or self.tag.endswith("-cloud") or self.name.endswith("-cloud")

    def __str__(self) -> str:
        return self.full


class ClaudeUser(BaseModel):
    """An account on the host that gets Claude Code configured."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str
    #: None: the account's own (getent passwd on Linux, dscl on macOS, where homes are /Users/<name>)
    home: str | None = None
    #: None: the account's login shell (zsh on a Mac since 10.15); any shell other than zsh/fish gets bash's files
    shell: Literal["bash", "zsh", "fish"] | None = None
    anthropic_api_key: str | None = Field(default=None, repr=False)

    @field_validator("name")
    @classmethod
    def _valid_name(cls, value: str) -> str:
        if not re.match(r"^[a-z_][a-z0-9_.-]*$", value):
            raise ValueError(f"{value!r} is not a valid user name")
        if value == "root":
            raise ValueError("root cannot run the edit test: Claude Code refuses its headless flags as root")
        return value


class Settings(BaseModel):
    """All options, with the defaults documented in README.md (the README table is checked against this)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    # --- Ollama install and service -------------------------------------------------------------------------
    ollama_enabled: bool = Field(True, description="Install and run Ollama on this host (off: use a remote one)")
    ollama_version: str = Field("0.32.15", description="Pinned Ollama release (>= 0.18.0)")
    ollama_download_url: str = Field(
        "https://github.com/ollama/ollama/releases/download",
        description="Release base URL: archives and sha256sum.txt are fetched from <url>/v<version>/",
    )
    ollama_checksum: Literal["required", "off"] = Field(
        "required", description="Verify the archive against sha256sum.txt (or ollama_sha256) before installing"
    )
    ollama_sha256: dict[str, str] = Field(
        default_factory=dict, description="Pinned sha256 per archive file name; overrides sha256sum.txt"
    )
    ollama_install_zstd: bool = Field(
        True, description="Linux: install zstd with the host's package manager when missing (releases are .tar.zst "
        "only); off: fail the host up front"
    )
    ollama_context_length: int = Field(64000, description="OLLAMA_CONTEXT_LENGTH (64000 or 128000 for tools)")
    ollama_host: str = Field("127.0.0.1", description="Bind address; a LAN address needs ollama_allow_lan")
    ollama_port: int = Field(11434, description="Listen port")
    ollama_allow_lan: bool = Field(False, description="Allow binding beyond loopback (laptops using a GPU box)")
    ollama_allowed_clients: list[str] = Field(
        default_factory=list, description="With LAN access: the only client networks (CIDR) that reach the port; "
        "enforced on Linux by an nftables table of ours (nftables installed when missing), else the host fails"
    )
    ollama_allow_unenforced_lan: bool = Field(
        False, description="Where ollama_allowed_clients cannot be enforced (no usable nftables, macOS): warn and "
        "serve every client that reaches the port instead of failing the host"
    )
    ollama_keep_alive: str = Field("30m", description="OLLAMA_KEEP_ALIVE: keep the model loaded between turns")
    ollama_models_dir: str | None = Field(None, description="OLLAMA_MODELS (default: the service user's)")
    ollama_environment: dict[str, str] = Field(
        default_factory=dict, description="Extra server environment (e.g. OLLAMA_FLASH_ATTENTION)"
    )
    ollama_gpu: Literal["auto", "nvidia", "amd", "cpu"] = Field(
        "auto", description="GPU variant: auto detects NVIDIA/AMD; amd adds the ROCm archive"
    )
    ollama_health_timeout: int = Field(60, description="Seconds to wait for /api/version after a restart")
    ollama_macos_user: str | None = Field(
        None, description="macOS: the account whose LaunchAgent runs Ollama (default: the SSH or local user; "
        "connected as root: the first of claude_users)"
    )
    ollama_macos_app: Literal["fail", "stop"] = Field(
        "fail", description="macOS with Ollama.app installed: fail the host naming the choice, or stop: quit the "
        "app, disable its login item and serve from our pinned LaunchAgent"
    )

    # --- Models ---------------------------------------------------------------------------------------------
    ollama_models: list[str] = Field(
        default_factory=lambda: ["glm-4.7-flash"], description="Library models: name[:tag][@sha256:digest]"
    )
    ollama_cloud_models: list[str] = Field(
        default_factory=list, description="Cloud models (e.g. glm-5.2:cloud); need `ollama signin`"
    )
    ollama_default_model: str | None = Field(None, description="Default model (first of ollama_models)")
    ollama_prune: bool = Field(False, description="Remove models that are not declared")
    ollama_pull_retries: int = Field(3, description="Retries of a failed pull, with backoff")
    ollama_models_mirror: str | None = Field(
        None,
        description="Fan-out: mirror URL holding models from `mirror sync --model`; hosts copy their blobs and "
        "manifest from it over the LAN, sha256-verified, and pull normally if that fails",
    )

    # --- Claude Code ----------------------------------------------------------------------------------------
    claude_users: list[ClaudeUser] = Field(default_factory=list, description="Accounts to configure")
    claude_code_version: str = Field(
        "2.1.332", description="Pinned Claude Code release (the newest published for every platform we install)"
    )
    claude_code_install: Literal["native", "npm", "off"] = Field(
        "native", description="native: platform binary, no Node; npm: global npm install; off: leave as is"
    )
    claude_code_registry: str | None = Field(
        None, description="npm registry (or mirror) URL; default: the control machine's npm registry"
    )
    claude_code_dir: str = Field("/opt/claude-code", description="Versioned install root (native)")
    claude_model: str | None = Field(None, description="Claude Code's model (default: ollama_default_model)")
    claude_role_models: dict[str, str] = Field(
        default_factory=dict, description="haiku/sonnet/opus/subagent -> model (default: all claude_model)"
    )
    ollama_base_url: str | None = Field(None, description="Ollama URL for Claude Code (default: this host's)")
    claude_auth_token: str = Field("ollama", repr=False, description="ANTHROPIC_AUTH_TOKEN (sent as Bearer)")
    claude_telemetry_off: bool = Field(True, description="Set DISABLE_TELEMETRY & co.")
    claude_permission_mode: Literal["acceptEdits", "default", "plan", "dontAsk", "auto"] = Field(
        "acceptEdits", description="permissions.defaultMode (headless edits need acceptEdits)"
    )
    claude_config_isolation: bool = Field(False, description="Use a separate CLAUDE_CONFIG_DIR and a wrapper")
    claude_config_dir: str = Field(
        "${XDG_DATA_HOME:-$HOME/.local/share}/claude-ollama", description="Isolated CLAUDE_CONFIG_DIR"
    )
    claude_wrapper_name: str = Field("claude-local", description="Wrapper command when isolation is on")
    claude_managed_settings: bool = Field(False, description="Enforce base URL/telemetry machine-wide")
    claude_max_output_tokens: int | None = Field(None, description="CLAUDE_CODE_MAX_OUTPUT_TOKENS")

    # --- LiteLLM proxy route --------------------------------------------------------------------------------
    claude_route: Literal["direct", "litellm"] = Field(
        "direct",
        description="direct: Claude Code talks to Ollama's Anthropic API; litellm: through a LiteLLM proxy on "
        "this host (its ollama_chat provider calls Ollama's /api/chat)",
    )
    claude_litellm_version: str = Field("1.106.12", description="Pinned LiteLLM release (`litellm[proxy]`)")
    claude_litellm_host: str = Field("127.0.0.1", description="Proxy bind address (loopback only)")
    claude_litellm_port: int = Field(4000, description="Proxy port")
    claude_litellm_master_key: str | None = Field(
        None,
        repr=False,
        description="Proxy master key (sk-...), required with route litellm; stored 0600 on the host and used "
        "as Claude Code's ANTHROPIC_AUTH_TOKEN, never printed",
    )
    claude_litellm_wheelhouse: str | None = Field(
        None,
        description="Wheels for the proxy's virtualenv: a URL (pip --find-links, e.g. a mirror serving "
        "`ollama-claude litellm wheelhouse`) or a control-machine directory uploaded to the host; unset: the "
        "host's own pip index",
    )

    # --- Proxy ---------------------------------------------------------------------------------------------
    https_proxy: str | None = Field(
        None,
        repr=False,
        description="Proxy for every download the deploy makes on the host (Ollama releases, Claude Code, pip, "
        "the package manager) and for the Ollama service (model pulls), e.g. http://user:pass@proxy:3128; "
        "credentials are never printed",
    )
    http_proxy: str | None = Field(
        None, repr=False, description="Proxy for plain-http URLs (a LAN mirror); default: https_proxy"
    )
    no_proxy: list[str] = Field(
        default_factory=list,
        description="Hosts, domains (.corp.example) or networks reached without the proxy; 127.0.0.1, localhost, "
        "::1 and the Ollama bind address are always added",
    )

    # --- Verify and fallback --------------------------------------------------------------------------------
    verify_edit_test: bool = Field(True, description="Run the real edit test as each user")
    verify_timeout: int = Field(120, description="Seconds allowed per edit test")
    verify_fallback: list[str] = Field(
        default_factory=lambda: ["local", "cloud", "claude"], description="Fallback chain order"
    )
    verify_anthropic_model: str = Field(
        DEFAULT_FALLBACK_MODEL, description="The chain's Claude link (checked against Claude Code's model table)"
    )
    verify_allow_anthropic: bool = Field(False, description="Policy: may the chain fall back to Anthropic")
    verify_anthropic_base_url: str = Field("https://api.anthropic.com", description="Claude link's endpoint")
    verify_write_default: bool = Field(True, description="Write the passing link's model as the default")
    verify_report_dir: str = Field("reports", description="Where the JSON and JUnit reports go")
    model_override: str | None = Field(None, description="Force one chain link: local, cloud or claude")

    # --- Uninstall (deploys/uninstall.py) -----------------------------------------------------------------------
    uninstall_scope: Literal["claude-config", "ollama", "everything"] = Field(
        "claude-config",
        description="What deploys/uninstall.py removes: claude-config (users' and managed settings, env, rc "
        "blocks, wrapper), ollama (the service, binaries, service user) or everything (both + Claude Code)",
    )
    uninstall_remove_models: bool = Field(
        False, description="With scope ollama/everything: also delete the pulled models (kept by default)"
    )

    # --- Validators -----------------------------------------------------------------------------------------
    @field_validator("ollama_version", "claude_code_version", "claude_litellm_version")
    @classmethod
    def _is_version(cls, value: str) -> str:
        try:
            Version(value)
        except InvalidVersion:
            raise ValueError(f"{value!r} is not a version like 0.16.3") from None
        return value

    @field_validator("ollama_version")
    @classmethod
    def _tools_capable(cls, value: str) -> str:
        if Version(value) < MIN_OLLAMA_VERSION:
            raise ValueError(
                f"{value} is below {MIN_OLLAMA_VERSION}: Claude Code's tool calls after thinking are malformed "
                f"before {MIN_OLLAMA_VERSION} (its Edit/Bash fail with thinking models such as glm-4.7-flash)"
            )
        return value

    @field_validator("ollama_context_length")
    @classmethod
    def _positive_context(cls, value: int) -> int:
        if value < 2048:
            raise ValueError(f"{value} is too small; use 64000 or 128000")
        return value

    @field_validator("ollama_port", "claude_litellm_port")
    @classmethod
    def _port(cls, value: int) -> int:
        if not 0 < value < 65536:
            raise ValueError(f"{value} is not a TCP port")
        return value

    @field_validator("ollama_host")
    @classmethod
    def _bind_address(cls, value: str) -> str:
        try:
            ip_address(value)
        except ValueError:
            raise ValueError(f"{value!r} is not an IP address to bind (e.g. 127.0.0.1 or 0.0.0.0)") from None
        return value

    @field_validator("claude_litellm_host")
    @classmethod
    def _loopback(cls, value: str) -> str:
        try:
            loopback = ip_address(value).is_loopback
        except ValueError:
            loopback = False
        if not loopback:
            raise ValueError(f"{value!r} is not a loopback address: the proxy serves this host only (127.0.0.1)")
        return value

    @field_validator("https_proxy", "http_proxy")
    @classmethod
    def _proxy_url(cls, value: str | None) -> str | None:
        if value is None:
            return value
        from .proxy import redact

        parts = urlsplit(value)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError(f"{redact(value)!r} is not a proxy URL like http://proxy.example:3128")
        return value

    @field_validator("no_proxy")
    @classmethod
    def _no_proxy_entries(cls, value: list[str]) -> list[str]:
        for item in value:
            if not item or any(c in item for c in ", \t\n"):
                raise ValueError(f"{item!r}: one host, domain or network per entry, no commas or spaces")
        return value

    @field_validator("ollama_allowed_clients")
    @classmethod
    def _networks(cls, value: list[str]) -> list[str]:
        for item in value:
            try:
                ip_network(item, strict=False)
            except ValueError:
                raise ValueError(f"{item!r} is not a network (CIDR like 10.0.0.0/24)") from None
        return value

    @field_validator("ollama_sha256")
    @classmethod
    def _sha256_pins(cls, value: dict[str, str]) -> dict[str, str]:
        for name, digest in value.items():
            if "/" in name or not re.fullmatch(r"[0-9a-f]{64}", digest.lower()):
                raise ValueError(f"{name}: {digest!r} must map an archive file name to a 64-hex sha256")
        return {name: digest.lower() for name, digest in value.items()}

    @field_validator("ollama_keep_alive")
    @classmethod
    def _duration(cls, value: str) -> str:
        text = str(value)
        if not (_GO_DURATION_RE.match(text) or _WHOLE_SECONDS_RE.match(text)):
            raise ValueError(
                f"{value!r} is not what Ollama accepts: a Go duration (30m, 1h30m, 90s; -1 = forever) or whole "
                "seconds (1800); Ollama would ignore it and unload models after 5m"
            )
        return text

    @field_validator("ollama_environment")
    @classmethod
    def _env(cls, value: dict[str, str]) -> dict[str, str]:
        for key in value:
            if not _ENV_NAME_RE.match(key):
                raise ValueError(f"{key!r} is not an environment variable name")
            if key in MANAGED_OLLAMA_ENV:
                raise ValueError(f"{key} is managed; set it through its own option instead")
        return value

    @field_validator("ollama_models", "ollama_cloud_models")
    @classmethod
    def _model_refs(cls, value: list[str], info: ValidationInfo) -> list[str]:
        version = info.data.get("ollama_version")  # None when the version itself was invalid
        for item in value:
            if ModelRef.parse(item).is_gguf_import and version and Version(version) < MIN_OLLAMA_GGUF_TOOLS:
                raise ValueError(
                    f"{item!r} is a Hugging Face GGUF import: Ollama {version} gives such imports no tools "
                    f"capability (from {MIN_OLLAMA_GGUF_TOOLS} they take it from their chat template); raise "
                    f"ollama_version to {MIN_OLLAMA_GGUF_TOOLS} or later, or use a library model such as glm-4.7-flash"
                )
        return value

    @field_validator(
        "ollama_download_url", "claude_code_registry", "ollama_base_url", "verify_anthropic_base_url",
        "ollama_models_mirror",
    )
    @classmethod
    def _url(cls, value: str | None) -> str | None:
        if value is not None and not re.match(r"^https?://[^/\s]+", value):
            raise ValueError(f"{value!r} is not an http(s) URL")
        return value.rstrip("/") if value else value

    @field_validator("verify_anthropic_model")
    @classmethod
    def _current_claude_model(cls, value: str) -> str:
        problem = fallback_model_problem(value)
        if problem:
            raise ValueError(problem)
        return value

    @field_validator("claude_role_models")
    @classmethod
    def _roles(cls, value: dict[str, str]) -> dict[str, str]:
        unknown = set(value) - set(ROLES)
        if unknown:
            raise ValueError(f"unknown role(s) {sorted(unknown)}; roles are {', '.join(ROLES)}")
        return value

    @field_validator("claude_users", mode="before")
    @classmethod
    def _user_shorthand(cls, value: Any) -> Any:
        return [{"name": item} if isinstance(item, str) else item for item in value or []]

    @field_validator("verify_fallback")
    @classmethod
    def _chain(cls, value: list[str]) -> list[str]:
        unknown = [link for link in value if link not in CHAIN_LINKS]
        if unknown or not value or len(set(value)) != len(value):
            raise ValueError(f"must list distinct links from {', '.join(CHAIN_LINKS)}")
        return value

    @field_validator("model_override")
    @classmethod
    def _override(cls, value: str | None) -> str | None:
        if value is not None and value not in CHAIN_LINKS:
            raise ValueError(f"must be one of {', '.join(CHAIN_LINKS)}")
        return value

    @model_validator(mode="after")
    def _consistent(self) -> Settings:
        declared = {ref.full for ref in self.library_models + self.cloud_models}
        if self.ollama_default_model and ModelRef.parse(self.ollama_default_model).full not in declared:
            raise ValueError(
                f"ollama_default_model {self.ollama_default_model!r} is not declared in ollama_models or "
                "ollama_cloud_models"
            )
        if not ip_address(self.ollama_host).is_loopback and not self.ollama_allow_lan:
            raise ValueError(
                f"ollama_host {self.ollama_host} exposes Ollama beyond this machine; set ollama_allow_lan = True "
                "(and ideally ollama_allowed_clients) to confirm"
            )
        for model in self.ollama_models:
            if ModelRef.parse(model).is_cloud:
                raise ValueError(f"ollama_models: {model!r} is a cloud model; list it in ollama_cloud_models")

        for model in self.ollama_cloud_models:
            if not ModelRef.parse(model).is_cloud:
                raise ValueError(f"ollama_cloud_models: {model!r} does not end in :cloud or -cloud")
        if self.model_override == "cloud" and not self.cloud_models:
            raise ValueError("model_override 'cloud' needs a model in ollama_cloud_models")
        if self.uninstall_remove_models and self.uninstall_scope == "claude-config":
            raise ValueError(
                "uninstall_remove_models needs uninstall_scope 'ollama' or 'everything' (models belong to the server)"
            )
        if self.claude_route == "litellm":
            key = self.claude_litellm_master_key
            if not key or not key.startswith("sk-") or not re.fullmatch(r"[A-Za-z0-9_.~+/=-]{16,}", key):
                raise ValueError(
                    "claude_litellm_master_key: route litellm needs a key starting with sk- (letters, digits, "
                    "-_.~+/=; 16 or more), e.g. python3 -c \"import secrets; print('sk-' + "
                    "secrets.token_urlsafe(24))\"; keep it in a group_data file that is not committed"
                )
        if self.claude_users and not self.default_model:
            raise ValueError("claude_users need a model: declare ollama_models or set claude_model")
        return self

    # --- Derived values -------------------------------------------------------------------------------------
    @cached_property
    def library_models(self) -> list[ModelRef]:
        return [ModelRef.parse(item) for item in self.ollama_models]

    @cached_property
    def cloud_models(self) -> list[ModelRef]:
        return [ModelRef.parse(item) for item in self.ollama_cloud_models]

    @property
    def default_model(self) -> str | None:
        """The model Claude Code uses: claude_model, else ollama_default_model, else the first declared."""
        if self.claude_model:
            return self.claude_model
        if self.ollama_default_model:
            return ModelRef.parse(self.ollama_default_model).full
        declared = self.library_models or self.cloud_models
        return declared[0].full if declared else None

    @property
    def role_models(self) -> dict[str, str]:
        """Every Claude Code role mapped, so no haiku/sonnet/opus request names an Anthropic model."""
        return {role: self.claude_role_models.get(role, self.default_model or "") for role in ROLES}

    @property
    def base_url(self) -> str:
        """Where Claude Code finds Ollama: the option, else this host's own server on its bind address."""
        return self.ollama_base_url or self.listen_url

    @property
    def litellm_url(self) -> str:
        """The LiteLLM proxy's URL on this host."""
        return f"http://{host_port(self.claude_litellm_host, self.claude_litellm_port)}"

    @property
    def claude_base_url(self) -> str:
        """Where Claude Code sends its requests: the proxy on route litellm, else Ollama (``base_url``)."""
        return self.litellm_url if self.claude_route == "litellm" else self.base_url

    @property
    def claude_token(self) -> str:
        """Claude Code's bearer token: the proxy's master key on route litellm, else claude_auth_token."""
        if self.claude_route == "litellm" and self.claude_litellm_master_key:
            return self.claude_litellm_master_key
        return self.claude_auth_token

    @property
    def listen_url(self) -> str:
        """The local server's own URL, as seen from the host it runs on."""
        bound = ip_address(self.ollama_host)  # loopback for a wildcard bind, as ConnectableHost (config.go@v0.32.15:62-80)
        host = ("::1" if bound.version == 6 else "127.0.0.1") if bound.is_unspecified else self.ollama_host
        return f"http://{host_port(host, self.ollama_port)}"

    @property
    def bind_address(self) -> str:
        """OLLAMA_HOST as the server parses it (envconfig/config.go@v0.32.15:22-60, net.SplitHostPort): an
        IPv6 address needs brackets, ``[::1]:11434``; unbracketed, Ollama falls back to 127.0.0.1."""
        return host_port(self.ollama_host, self.ollama_port)

    @property
    def context_warning(self) -> str | None:
        if self.ollama_context_length < MIN_TOOL_CONTEXT:
            return (
                f"ollama_context_length {self.ollama_context_length} is below {MIN_TOOL_CONTEXT}: "
                "tool calls break once the context shifts (ollama/ollama#13820)"
            )
        return None

    def npm_registry(self) -> str:
        """The registry Claude Code is installed from: the option, else the control machine's npm config."""
        if self.claude_code_registry:
            return self.claude_code_registry
        npm = shutil.which("npm")
        if npm:
            found = subprocess.run([npm, "config", "get", "registry"], capture_output=True, text=True, timeout=30, check=False)
            if found.returncode == 0 and found.stdout.strip().startswith("http"):
                return found.stdout.strip().rstrip("/")
        raise SettingsError(
            "claude_code_registry is not set and npm is not configured on this machine: set it to your npm "
            "registry or mirror URL"
        )


def host_port(host: str, port: int) -> str:
    """``host:port`` with an IPv6 address in brackets, as URLs and OLLAMA_HOST need it."""
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


ROLES = ("haiku", "sonnet", "opus", "subagent")
CHAIN_LINKS = ("local", "cloud", "claude")


def _field_path(loc: tuple[Any, ...]) -> str:
    return ".".join(str(part) for part in loc) or "settings"


def _unknown_keys(data: dict[str, Any]) -> list[str]:
    known = set(Settings.model_fields)
    problems = []
    for key in data:
        if (key.startswith(OWN_PREFIXES) or key in OWN_KEYS) and key not in known:
            close = difflib.get_close_matches(key, known, n=1)
            hint = f"; did you mean {close[0]!r}?" if close else ""
            problems.append(f"{key}: unknown option{hint}")
    return problems


def parse_settings(data: dict[str, Any], host_name: str) -> Settings:
    """Validate one host's merged data; raise SettingsError listing every problem as ``host: field: why``."""
    problems = _unknown_keys(data)
    ours = {key: value for key, value in data.items() if key in Settings.model_fields}
    try:
        settings = Settings(**ours)
    except ValidationError as error:
        for item in error.errors():
            message = str(item["msg"]).removeprefix("Value error, ")
            problems.append(f"{_field_path(item['loc'])}: {message}")
        settings = None
    if problems:
        raise SettingsError("\n".join(f"host {host_name}: {problem}" for problem in problems))
    assert settings is not None
    return settings


def fleet_settings(state: Any) -> dict[str, Settings]:
    """Validate every host of the inventory once per run, so one bad host stops the run before any change."""
    cached = getattr(state, "_ollama_claude_settings", None)
    if cached is not None:
        return cached
    parsed: dict[str, Settings] = {}
    problems: list[str] = []
    for inventory_host in state.inventory:
        try:
            parsed[inventory_host.name] = parse_settings(inventory_host.data.dict(), inventory_host.name)
        except SettingsError as error:
            problems.append(str(error))
    if problems:
        raise SettingsError("invalid settings, nothing was changed:\n" + "\n".join(problems))
    state._ollama_claude_settings = parsed
    return parsed
