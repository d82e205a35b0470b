"""The rootfs cache key and mirror lookup: a changed recipe means a new tree; the build uses this machine's mirror."""

import pytest

from ollama_claude.lab.errors import LabError
from ollama_claude.lab.rootfs import PACKAGES, SUITE, debian_mirror, rootfs_key


def test_key_changes_with_the_package_list_and_suite_but_not_their_order():
    assert rootfs_key(PACKAGES) == rootfs_key(tuple(reversed(PACKAGES)))
    assert rootfs_key(PACKAGES) != rootfs_key((*PACKAGES, "less"))
    assert rootfs_key(PACKAGES, SUITE) != rootfs_key(PACKAGES, "trixie")


def test_no_nodejs_in_the_lab_image():
    assert not {"nodejs", "npm"} & set(PACKAGES)


def test_mirror_comes_from_the_bookworm_stanza(tmp_path, monkeypatch):
    monkeypatch.delenv("OLLAMA_CLAUDE_DEBIAN_MIRROR", raising=False)
    sources = tmp_path / "debian.sources"
    sources.write_text(
        "Types: deb\nURIs: http://mirror.invalid/debian-security\nSuites: bookworm-security\n\n"
        "Types: deb\n# a comment: with colon\nURIs: http://mirror.invalid/debian\nSuites: bookworm bookworm-updates\n"
    )
    assert debian_mirror(sources) == "http://mirror.invalid/debian"


def test_missing_sources_file_names_the_override(tmp_path, monkeypatch):
    monkeypatch.delenv("OLLAMA_CLAUDE_DEBIAN_MIRROR", raising=False)
    with pytest.raises(LabError, match="OLLAMA_CLAUDE_DEBIAN_MIRROR"):
        debian_mirror(tmp_path / "missing.sources")
