"""The server's configuration files and the install decisions that are not operations."""

from __future__ import annotations

import plistlib

import pytest
from harness import FakeHost
from pyinfra.context import ctx_host

from ollama_claude.ollama import config, operations
from ollama_claude.ollama.facts import INSTALL_ROOT as ROOT
from ollama_claude.settings import SettingsError, parse_settings


def _settings(**data):
    return parse_settings(data, "gpu1")


def test_drop_in_sets_the_checklist_environment():
    text = config.drop_in(config.server_environment(_settings(ollama_context_length=128000), "nvidia"), [])
    assert '[Service]\nEnvironment="OLLAMA_HOST=127.0.0.1:11434"\n' in text
    assert 'Environment="OLLAMA_CONTEXT_LENGTH=128000"' in text
    assert 'Environment="OLLAMA_KEEP_ALIVE=30m"' in text
    assert "OLLAMA_MODELS" not in text and "IPAddress" not in text and "VISIBLE_DEVICES" not in text


def test_drop_in_escapes_values_and_limits_clients():
    settings = _settings(
        ollama_host="0.0.0.0",
        ollama_allow_lan=True,
        ollama_allowed_clients=["10.1.0.0/24"],
        ollama_models_dir="/srv/models",
        ollama_environment={"OLLAMA_ORIGINS": 'a"b\\c 100%'},
    )
    text = config.drop_in(config.server_environment(settings, "cpu"), settings.ollama_allowed_clients)
    assert 'Environment="OLLAMA_ORIGINS=a\\"b\\\\c 100%%"' in text
    assert 'Environment="OLLAMA_MODELS=/srv/models"' in text
    assert 'Environment="CUDA_VISIBLE_DEVICES=-1"' in text  # gpu cpu: Ollama's documented invalid device id
    assert "IPAddressDeny=any\nIPAddressAllow=localhost 10.1.0.0/24\n" in text


def test_unit_is_install_sh_s_running_the_stable_path():
    text = config.unit_file()
    for line in (
        "ExecStart=/usr/local/bin/ollama serve",
        "User=ollama",
        "Group=ollama",
        "Restart=always",
        "WantedBy=default.target",
    ):
        assert line in text.splitlines()


def test_launchd_plist_is_valid_and_carries_the_environment():
    env = config.server_environment(_settings(ollama_environment={"OLLAMA_FLASH_ATTENTION": "1"}), "metal")
    plist = plistlib.loads(config.launchd_plist(env, "/Users/dev").encode())
    assert plist["ProgramArguments"] == ["/usr/local/bin/ollama", "serve"]
    assert plist["EnvironmentVariables"]["OLLAMA_CONTEXT_LENGTH"] == "64000"
    assert plist["EnvironmentVariables"]["OLLAMA_FLASH_ATTENTION"] == "1"
    assert plist["KeepAlive"] is True and plist["StandardErrorPath"] == "/Users/dev/.ollama/logs/server.log"


@pytest.mark.parametrize(
    ("data", "field"),
    [
        ({"ollama_version": "0.16.3"}, "ollama_version: 0.16.3 is below 0.18.0"),
        ({"ollama_host": "0.0.0.0"}, "ollama_allow_lan"),
        ({"ollama_allowed_clients": ["10.1.0.0/33"]}, "ollama_allowed_clients"),
        ({"ollama_checksum": "maybe"}, "ollama_checksum"),
        ({"ollama_sha256": {"ollama-linux-amd64.tgz": "abc"}}, "ollama_sha256"),
        ({"ollama_gpu": "intel"}, "ollama_gpu"),
        ({"ollama_environment": {"OLLAMA_HOST": "0.0.0.0"}}, "OLLAMA_HOST is managed"),
        ({"ollama_download_url": "ftp://mirror"}, "ollama_download_url"),
    ],
)
def test_invalid_ollama_settings_name_host_and_field(data, field):
    with pytest.raises(SettingsError) as error:
        _settings(**data)
    assert "host gpu1:" in str(error.value) and field in str(error.value)


def test_context_below_64000_warns():
    assert "below 64000" in _settings(ollama_context_length=32768).context_warning
    assert _settings().context_warning is None


@pytest.mark.parametrize(
    ("kernel", "setting", "detected", "mode", "name"),
    [
        ("Linux", "auto", "amd", "amd", "0.16.3+rocm"),
        ("Linux", "auto", "nvidia", "nvidia", "0.16.3"),
        ("Linux", "auto", "none", "none", "0.16.3"),
        ("Linux", "cpu", "nvidia", "cpu", "0.16.3"),
        ("Linux", "amd", "none", "amd", "0.16.3+rocm"),  # an explicit setting wins over detection
        ("Darwin", "amd", "none", "metal", "0.16.3"),
    ],
)
def test_gpu_mode_and_release_directory(kernel, setting, detected, mode, name):
    with ctx_host.use(FakeHost({"Kernel": kernel, "GpuVendor": detected})):
        platform = operations.current_platform()
        assert operations.gpu_mode(setting, platform) == mode
    assert operations.release_name("0.16.3", mode) == name


def _install(layout, **values):
    return {
        "layout": layout,
        "version": None,
        "current": None,
        "link": None,
        "releases": [],
        "legacy_lib": False,
        **values,
    }


def test_rollback_target_is_what_ran_before():
    managed = _install("managed", version="0.15.2", current="0.15.2", link=f"{ROOT}/0.15.2/bin/ollama")
    assert operations.previous_binary(managed, "0.16.3") == f"{ROOT}/0.15.2/bin/ollama"
    assert operations.previous_binary(managed, "0.15.2") is None  # no switch, nothing to roll back
    old = _install("installsh", version="0.14.3", legacy_lib=True)
    assert operations.previous_binary(old, "0.16.3") == f"{ROOT}/0.14.3+installsh/bin/ollama"
    assert operations.previous_binary(_install("none"), "0.16.3") is None
