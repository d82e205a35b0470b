"""
Models for fan-out: `mirror sync --model` fetches each model once from the registry (its /v2 manifest and
sha256-named blobs, each blob verified by its digest) into `<root>/models/`, laid out like Ollama's own store:

    <root>/models/manifests/<namespace>/<model>/<tag>   the manifest bytes exactly as the registry sent them
    <root>/models/blobs/sha256-<hex>                     config and layers

Hosts then copy from the mirror over the LAN (`ollama_models_mirror`), verifying every blob again.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

from ollama_claude.settings import ModelRef

from .sync import MirrorSyncError, SyncReport, download_verified, read_url

MANIFEST_MEDIA = "application/vnd.docker.distribution.manifest.v2+json"
DEFAULT_MODEL_REGISTRY = "https://registry.ollama.ai"


def model_path(ref: ModelRef) -> tuple[str, str, str]:
    """(namespace, model, tag) of a library reference: `glm-4.7-flash` is library/glm-4.7-flash/latest."""
    namespace, _, model = ref.name.rpartition("/")
    return namespace or "library", model, ref.tag


def sync_model(root: Path, registry: str, text: str, report: SyncReport) -> str:
    """Fetch one model's manifest and blobs; returns the manifest digest (what `ollama list` shows)."""
    ref = ModelRef.parse(text)
    namespace, model, tag = model_path(ref)
    base = f"{registry.rstrip('/')}/v2/{namespace}/{model}"
    raw = read_url(f"{base}/manifests/{tag}", MANIFEST_MEDIA)
    digest = hashlib.sha256(raw).hexdigest()
    if ref.digest and ref.digest != digest:
        raise MirrorSyncError(
            f"{base}/manifests/{tag}: manifest sha256 is {digest}, not the pinned {ref.digest}; "
            "update the pin in ollama_models or the --model argument"
        )
    try:
        manifest = json.loads(raw)
    except ValueError:
        raise MirrorSyncError(f"{base}/manifests/{tag} is not a JSON manifest") from None
    store = root / "models"
    for layer in [manifest["config"], *manifest["layers"]]:
        algorithm, _, hex_digest = layer["digest"].partition(":")
        if algorithm != "sha256":
            raise MirrorSyncError(f"{base}: blob {layer['digest']} is not sha256-addressed")
        target = store / "blobs" / f"sha256-{hex_digest}"
        download_verified(f"{base}/blobs/{layer['digest']}", target, "sha256", hex_digest, report)
    manifest_file = store / "manifests" / namespace / model / tag
    manifest_file.parent.mkdir(parents=True, exist_ok=True)
    manifest_file.write_bytes(raw)  # last: a manifest in the mirror means all its blobs are there
    return digest
