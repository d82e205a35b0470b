"""The rootfs cache key and mirror lookup: a changed recipe means a new tree; the build uses this machine's mirror."""

import pytest

from ollama_claude.lab.errors import LabError
from ollama_claude.lab.rootfs import PACKAGES, SUITE, debian_mirror, ensure_rootfs, rootfs_key


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


def test_trixie_is_built_from_the_same_archive_as_the_machine_release(tmp_path, monkeypatch):
    """A bookworm machine has no trixie stanza; the archive URI of its own release serves every suite."""
    monkeypatch.delenv("OLLAMA_CLAUDE_DEBIAN_MIRROR", raising=False)
    sources = tmp_path / "debian.sources"
    sources.write_text("Types: deb\nURIs: http://mirror.invalid/debian\nSuites: trixie trixie-updates\n")
    assert debian_mirror(sources) == "http://mirror.invalid/debian"


def test_each_suite_has_its_own_cached_tree(tmp_path, monkeypatch):
    monkeypatch.setenv("OLLAMA_CLAUDE_CACHE", str(tmp_path))
    for suite in ("bookworm", "trixie"):
        tree = tmp_path / "rootfs" / rootfs_key(suite=suite)
        (tree / "etc").mkdir(parents=True)
        (tree / "etc" / "os-release").write_text(f"VERSION_CODENAME={suite}\n")
    assert ensure_rootfs(suite="trixie").name == rootfs_key(suite="trixie")
    assert ensure_rootfs().name == rootfs_key(suite="bookworm")
    with pytest.raises(LabError, match="not 'sid'"):
        ensure_rootfs(suite="sid")
