"""
Operations that bring a server's models to the declared set: pull what is missing or stale, prove that the
models Claude Code uses can call tools, require a signed-in server for cloud models, prune the undeclared.

Host-state failures (a model without tools, an unknown model, a server not signed in) fail only their host:
the operation yields a command that prints the one-line reason and fix, then exits 1.
"""

from __future__ import annotations

import json
import shlex
from collections.abc import Iterable, Iterator

from jinja2 import Environment, FileSystemLoader, StrictUndefined
from pyinfra import host
from pyinfra.api import operation

from .. import templating
from ..hostfail import fail_host, host_reason
from ..ollama.config import SERVICE_HOME, SERVICE_USER
from ..settings import ModelRef
from .facts import ModelCapabilities, OllamaModels, OllamaSignin

TEMPLATES = templating.TEMPLATES / "models"
#: The pull script: streaming progress, error lines, retries with backoff (uploaded by the deploy).
PULL_SCRIPT_SOURCE = TEMPLATES / "ollama-pull.sh"
PULL_SCRIPT = "/usr/local/libexec/ollama-claude/ollama-pull"
#: Where a key can be linked by hand when the server gave no signin_url.
DEFAULT_SIGNIN_URL = "https://ollama.com/settings/keys"


def model_name(model: str) -> str:
    """``name:tag`` as the server lists it; a name that is no library reference (an HF import) stays as is."""
    try:
        return ModelRef.parse(model).full
    except ValueError:
        return model


_COMMANDS = Environment(loader=FileSystemLoader(TEMPLATES), undefined=StrictUndefined, autoescape=False)
_COMMANDS.filters["q"] = shlex.quote


def shell_template(name: str, **values: str) -> str:
    """A shell command from templates/models/<name> (shell stays shell; values are quoted with ``| q``)."""
    return _COMMANDS.get_template(name).render(**values).strip()


def _json(body: dict[str, str]) -> str:
    return json.dumps(body, separators=(",", ":"))


def needs_pull(ref: ModelRef, present: dict[str, str]) -> bool:
    """Missing, or pinned to a manifest digest other than the one the server lists."""
    listed = present.get(ref.full)
    return listed is None or (ref.digest is not None and listed != ref.digest)


@operation()
def models_pulled(models: list[str], base_url: str, retries: int = 3, script: str = PULL_SCRIPT) -> Iterator[str]:
    """
    Pull the declared models the server lacks, or whose pinned digest differs, with readable progress.

    + models: references ``name[:tag][@sha256:<digest>]`` (a digest pins the manifest the server must list)
    + base_url: the host's own Ollama server
    + retries: retries of a transient failure (connection, 5xx), with exponential backoff
    + script: the pull script on the host (templates/models/ollama-pull.sh, uploaded by the deploy)

    **Example:**

    .. code:: python

        models_pulled(models=["glm-4.7-flash", "qwen3:8b"], base_url="http://127.0.0.1:11434")
    """
    refs = [ModelRef.parse(model) for model in models]
    present = host.get_fact(OllamaModels, base_url=base_url) or {}
    stale = [ref for ref in refs if needs_pull(ref, present)]
    if not stale:
        host.noop(f"models present: {', '.join(ref.full for ref in refs)}")
        return
    for ref in stale:
        arguments = [script, host.name, base_url, ref.full, str(retries), *([ref.digest] if ref.digest else [])]
        yield "sh " + " ".join(shlex.quote(argument) for argument in arguments)


def _tools_advice(model: str, base_url: str) -> str:
    return (
        f"claude_model/claude_role_models: {model} on {base_url} does not list the tools capability, "
        "so Edit/Bash in Claude Code would fail; fix: pull a library model with tools (`ollama pull "
        "glm-4.7-flash`), not a Hugging Face GGUF import, and declare it in ollama_models"
    )


@operation()
def tools_capable(models: Iterable[str], base_url: str) -> Iterator[str]:
    """
    Fail the host if a model Claude Code will use lacks the ``tools`` capability (``/api/show``).

    A model the server does not list yet (prepare time, before the pull) is checked by a command on the host;
    at execution time the facts are read again after the pull, so a capable model yields nothing.

    + models: the models Claude Code's roles use
    + base_url: the host's own Ollama server
    """
    names = list(dict.fromkeys(model_name(model) for model in models))
    commands = []
    for name in names:
        capabilities = host.get_fact(ModelCapabilities, base_url=base_url, model=name)
        if capabilities is None:
            commands.append(shell_template(
                "tools-check.sh.j2", url=f"{base_url}/api/show", body=_json({"model": name}),
                advice=host_reason(_tools_advice(name, base_url)),
            ))
        elif "tools" not in capabilities:
            commands.append(fail_host(_tools_advice(name, base_url)))
    if not commands:
        host.noop(f"models with tools: {', '.join(names)}")
    yield from commands


def _signin_advice(base_url: str, signin_url: str, user: str, home: str) -> str:
    return (
        f"ollama_cloud_models: the Ollama server at {base_url} is not signed in to ollama.com; "
        f"fix: run `ollama signin` as {user} on {host.name} and open {signin_url} (it links the server key "
        f"{home}/.ollama/id_ed25519.pub to your account)"
    )


def _unreachable_advice(base_url: str) -> str:
    return (
        f"ollama_cloud_models: ollama.com unreachable from {host.name}: the Ollama server at "
        f"{base_url} cannot reach ollama.com to check its account (/api/me), so cloud models cannot run; fix: "
        "allow the server outbound HTTPS to ollama.com (behind a proxy: HTTPS_PROXY in ollama_environment), "
        "or drop ollama_cloud_models; signing in again will not help"
    )


@operation()
def cloud_signed_in(base_url: str, user: str = SERVICE_USER, home: str = SERVICE_HOME) -> Iterator[str]:
    """
    Fail the host unless its server is signed in to ollama.com, which cloud models need.

    Never signs in itself: linking a key to an account is the owner's interactive decision.

    + base_url: the host's own Ollama server
    + user: the account the server runs as (its key is the one to link)
    + home: that account's home
    """
    state = host.get_fact(OllamaSignin, base_url=base_url)
    if state["signed_in"]:
        host.noop("Ollama server signed in to ollama.com")
    elif state["unreachable"]:
        yield fail_host(_unreachable_advice(base_url))
    elif state["signed_in"] is False:
        yield fail_host(_signin_advice(base_url, state["signin_url"] or DEFAULT_SIGNIN_URL, user, home))
    else:
        # The server did not answer while planning (not installed yet): the host asks it once it is.
        before, after = host_reason(_signin_advice(base_url, "\0", user, home)).split("\0")
        yield shell_template("signin-check.sh.j2", url=f"{base_url}/api/me", before=before, after=after,
                             default_url=DEFAULT_SIGNIN_URL, unreachable=host_reason(_unreachable_advice(base_url)))


@operation()
def models_pruned(declared: list[str], base_url: str) -> Iterator[str]:
    """
    Remove the models the server holds that are not declared (``DELETE /api/delete``), naming each one.

    + declared: every declared reference, library and cloud
    + base_url: the host's own Ollama server
    """
    keep = {ModelRef.parse(model).full for model in declared}
    present = host.get_fact(OllamaModels, base_url=base_url) or {}
    undeclared = sorted(set(present) - keep)
    if not undeclared:
        host.noop("no undeclared models to prune")
        return
    for name in undeclared:
        yield shell_template(
            "model-delete.sh.j2", url=f"{base_url}/api/delete", body=_json({"model": name}),
            done=f"removed undeclared model {name}",
            advice=host_reason(f"ollama_prune: removing {name} from {base_url} failed; fix: see the Ollama server log"),
        )


# Model fan-out: each declared model crosses the WAN once per fleet (`mirror sync --model` on the control
# machine); every host copies its blobs and manifest from the mirror over the LAN into the server's own store,
# laid out as Ollama keeps it (`blobs/sha256-<hex>`, `manifests/registry.ollama.ai/<namespace>/<model>/<tag>`),
# each blob checked against its digest. The server lists what is in its store, so the model then shows with the
# registry's manifest digest and capabilities; the ordinary pull that follows finds it present and does nothing,
# or pulls it from the registry when fan-out could not complete (no manifest in the mirror, a tampered blob).

REGISTRY_HOST = "registry.ollama.ai"  # the directory a normal pull files library models under


@operation()
def models_fanned_out(models: list[str], base_url: str, mirror_url: str, store: str, owner: str) -> Iterator[str]:
    """
    Copy the declared models the server lacks (or lists with another pinned digest) from the fleet's mirror.

    + models: references ``name[:tag][@sha256:<digest>]``; a pinned digest must match the mirror's manifest
    + base_url: the host's own Ollama server (to see what it lists)
    + mirror_url: the fleet mirror's base URL (models under ``<mirror_url>/models/``)
    + store: the server's OLLAMA_MODELS directory
    + owner: the account the server runs as (owns the store)
    """
    present = host.get_fact(OllamaModels, base_url=base_url) or {}
    wanted = [ref for ref in map(ModelRef.parse, models) if not ref.is_cloud and needs_pull(ref, present)]
    if not wanted:
        host.noop("no model to fan out: all present")
        return
    for ref in wanted:
        namespace, _, model = ref.name.rpartition("/")
        path = f"{namespace or 'library'}/{model}/{ref.tag}"
        yield shell_template(
            "fanout.sh.j2", host=host.name, model=ref.full, source=f"{mirror_url}/models", path=path,
            store=store, manifest_dest=f"{store}/manifests/{REGISTRY_HOST}/{path}", owner=owner,
            pinned=ref.digest or "",
        )
