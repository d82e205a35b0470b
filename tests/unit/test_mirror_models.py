"""`mirror sync --model`: a registry-shaped upstream (/v2/<ns>/<model>/manifests|blobs) served by the lab
mirror on 127.0.0.1; manifests kept byte for byte, blobs verified by digest, tampering and stale pins refused."""

import hashlib
import json
import threading

import pytest

from ollama_claude.lab import mirror
from ollama_claude.mirror.models import sync_model
from ollama_claude.mirror.sync import MirrorSyncError, SyncReport

WEIGHTS, CONFIG = b"weights " * 5000, b'{"model_family":"glm"}'


def digest(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


@pytest.fixture(scope="module")
def registry(tmp_path_factory):
    """(URL, root, manifest bytes) of a registry holding library/tiny:latest."""
    root = tmp_path_factory.mktemp("registry")
    manifest = json.dumps({
        "schemaVersion": 2,
        "config": {"digest": digest(CONFIG), "size": len(CONFIG)},
        "layers": [{"mediaType": "application/vnd.ollama.image.model", "digest": digest(WEIGHTS), "size": len(WEIGHTS)}],
    }).encode()
    model = root / "v2" / "library" / "tiny"
    (model / "manifests").mkdir(parents=True)
    (model / "blobs").mkdir()
    (model / "manifests" / "latest").write_bytes(manifest)
    for data in (WEIGHTS, CONFIG):
        (model / "blobs" / digest(data)).write_bytes(data)
    server = mirror.make_server(root)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}", root, manifest
    server.shutdown()
    server.server_close()


def test_model_lands_in_store_layout_with_the_registry_manifest_bytes(tmp_path, registry):
    url, _, manifest = registry
    report = SyncReport()
    assert sync_model(tmp_path, url, "tiny", report) == hashlib.sha256(manifest).hexdigest()
    assert (tmp_path / "models/manifests/library/tiny/latest").read_bytes() == manifest
    assert (tmp_path / f"models/blobs/sha256-{hashlib.sha256(WEIGHTS).hexdigest()}").read_bytes() == WEIGHTS
    assert report.bytes_fetched == len(WEIGHTS) + len(CONFIG)
    again = SyncReport()
    sync_model(tmp_path, url, "tiny:latest", again)
    assert again.fetched == [] and len(again.kept) == 2


def test_tampered_blob_is_refused_and_no_manifest_is_written(tmp_path, registry):
    url, root, _ = registry
    mirror.write_faults(root, corrupt=[f"v2/library/tiny/blobs/{digest(WEIGHTS)}"])
    try:
        with pytest.raises(MirrorSyncError) as error:
            sync_model(tmp_path, url, "tiny", SyncReport())
    finally:
        mirror.write_faults(root)
    assert f"sha256 mismatch for {url}/v2/library/tiny/blobs/{digest(WEIGHTS)}: expected " in str(error.value)
    assert not (tmp_path / "models/manifests/library/tiny/latest").exists()


def test_pinned_digest_other_than_the_registrys_is_refused(tmp_path, registry):
    url, _, manifest = registry
    with pytest.raises(MirrorSyncError, match=f"manifest sha256 is {hashlib.sha256(manifest).hexdigest()}, not the pinned"):
        sync_model(tmp_path, url, "tiny@sha256:" + "0" * 64, SyncReport())


def test_unknown_model_names_the_url(tmp_path, registry):
    url, _, _ = registry
    with pytest.raises(MirrorSyncError, match=f"cannot fetch {url}/v2/library/nope/manifests/latest"):
        sync_model(tmp_path, url, "nope", SyncReport())
