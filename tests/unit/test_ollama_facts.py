"""Ollama facts parse what hosts really print: install layouts, `ollama -v`, PCI listings, sha256sum.txt."""

from __future__ import annotations

import pytest

from ollama_claude.ollama.facts import (
    GpuVendor,
    OllamaInstall,
    OllamaReleaseSums,
    OllamaServerVersion,
    UnifiedCgroups,
)

ROOT = "/usr/local/lib/ollama-claude/ollama"


def test_managed_install_reads_release_from_the_link():
    facts = OllamaInstall().process(
        [f"link {ROOT}/0.16.3+rocm/bin/ollama", "release 0.15.2", "release 0.16.3+rocm"]
    )
    assert facts["layout"] == "managed"
    assert facts["current"] == "0.16.3+rocm" and facts["version"] == "0.16.3"
    assert facts["releases"] == ["0.15.2", "0.16.3+rocm"]


def test_installsh_layout_takes_the_client_version_not_the_servers():
    output = [
        "file",
        "binary ollama version is 0.16.3",
        "binary Warning: client version is 0.14.3",
        "legacy-lib",
    ]
    facts = OllamaInstall().process(output)
    assert facts["layout"] == "installsh" and facts["version"] == "0.14.3" and facts["legacy_lib"] is True


def test_installsh_layout_without_a_server_answer():
    output = [
        "file",
        "binary Warning: could not connect to a running Ollama instance",
        "binary Warning: client version is 0.14.3",
    ]
    assert OllamaInstall().process(output)["version"] == "0.14.3"


def test_symlink_elsewhere_is_foreign_and_nothing_is_none():
    assert (
        OllamaInstall().process(["link /opt/homebrew/Cellar/ollama/0.16.3/bin/ollama"])["layout"] == "foreign"
    )
    assert OllamaInstall().process([])["layout"] == "none"


@pytest.mark.parametrize(
    ("output", "vendor"),
    [
        (["nvidia-smi", "pci 8086:3e92 0300:"], "nvidia"),
        (["pci 8086:3e92 0300:", "pci 10de:2684 0300:"], "nvidia"),
        (["pci 1002:744c 0300:", "pci 1022:1480 0600:"], "amd"),
        (["pci 0x1002 0x038000"], "amd"),  # /sys/bus/pci/devices without lspci
        (["pci 0x1002 0x040300"], "none"),  # an AMD HDMI audio function is no GPU
        (["pci 0x8086 0x030000"], "none"),
        ([], "none"),
    ],
)
def test_gpu_vendor_from_display_devices(output, vendor):
    assert GpuVendor().process(output) == vendor


def test_release_sums_parse_and_unreachable_names_the_url():
    sums = OllamaReleaseSums().process(
        [f"{'a' * 64}  ./ollama-linux-amd64.tar.zst", f"{'b' * 64} *Ollama-darwin.zip"]
    )
    assert sums == {"sums": {"ollama-linux-amd64.tar.zst": "a" * 64, "Ollama-darwin.zip": "b" * 64}}
    url = "http://10.0.0.1/v0.16.3/sha256sum.txt"
    failed = OllamaReleaseSums().process([f"__OLLAMA_CLAUDE_FETCH_FAILED__ {url}: curl: (22) 404 "])
    assert failed["error"].startswith(url) and "404" in failed["error"]


def test_server_version_is_none_unless_the_api_answers():
    assert OllamaServerVersion().process(['{"version":"0.16.3"}', "__HTTP_STATUS__200"]) == "0.16.3"
    assert OllamaServerVersion().process(["__HTTP_STATUS__000"]) is None
    assert OllamaServerVersion().process(["404 page not found", "__HTTP_STATUS__404"]) is None


def test_unified_cgroups_only_for_cgroup2fs():
    assert UnifiedCgroups().process(["cgroup2fs"]) is True
    assert UnifiedCgroups().process(["tmpfs"]) is False  # cgroup v1: systemd ignores IPAddressAllow=
