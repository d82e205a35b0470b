"""The proxy route's decisions: settings, Claude Code's environment, the proxy config, the wheelhouse index."""

from __future__ import annotations

import threading
import urllib.request

import pytest
import yaml

from ollama_claude.claude.settings_merge import claude_env, machine_settings
from ollama_claude.lab.mirror import make_server
from ollama_claude.litellm.deploy import KEY_PATH, proxy_config, proxy_models, proxy_unit
from ollama_claude.litellm.wheelhouse import write_index
from ollama_claude.settings import SettingsError, parse_settings

KEY = "sk-unit-" + "x" * 24
ROUTE = {"claude_route": "litellm", "claude_litellm_master_key": KEY}


def test_direct_is_the_default_and_needs_no_key():
    settings = parse_settings({}, "gpu1")
    assert settings.claude_route == "direct"
    assert claude_env(settings)["ANTHROPIC_BASE_URL"] == "http://127.0.0.1:11434"
    assert claude_env(settings)["ANTHROPIC_AUTH_TOKEN"] == "ollama"


@pytest.mark.parametrize("key", [None, "not-sk-prefixed-key", "sk-short", "sk-with space inside"])
def test_route_litellm_requires_a_usable_master_key(key):
    with pytest.raises(SettingsError, match="gpu1: .*claude_litellm_master_key: route litellm needs a key"):
        parse_settings({"claude_route": "litellm", "claude_litellm_master_key": key}, "gpu1")


def test_master_key_never_shows_in_the_settings_repr():
    assert KEY not in repr(parse_settings(ROUTE, "gpu1"))


def test_proxy_binds_loopback_only():
    with pytest.raises(SettingsError, match="claude_litellm_host: '0.0.0.0' is not a loopback address"):
        parse_settings({**ROUTE, "claude_litellm_host": "0.0.0.0"}, "gpu1")


def test_claude_code_points_at_the_proxy_with_the_master_key():
    settings = parse_settings({**ROUTE, "claude_litellm_port": 4100}, "gpu1")
    env = claude_env(settings)
    assert env["ANTHROPIC_BASE_URL"] == "http://127.0.0.1:4100"
    assert env["ANTHROPIC_AUTH_TOKEN"] == KEY
    assert env["ANTHROPIC_API_KEY"] == ""
    assert machine_settings(settings)["env"]["ANTHROPIC_BASE_URL"] == "http://127.0.0.1:4100"


def test_config_maps_every_name_claude_code_sends_to_ollama_chat():
    settings = parse_settings({
        **ROUTE, "ollama_models": ["glm-4.7-flash", "qwen3-coder"], "ollama_cloud_models": ["glm-5:cloud"],
        "claude_role_models": {"haiku": "qwen3-coder"}, "ollama_base_url": "http://gpu-box:11434",
    }, "gpu1")
    config = yaml.safe_load(proxy_config(settings))
    routes = {entry["model_name"]: entry["litellm_params"] for entry in config["model_list"]}
    assert list(routes) == ["glm-4.7-flash:latest", "qwen3-coder", "qwen3-coder:latest", "glm-5:cloud", "claude-*"]
    assert routes["qwen3-coder"] == {"model": "ollama_chat/qwen3-coder", "api_base": "http://gpu-box:11434"}
    assert routes["claude-*"]["model"] == "ollama_chat/glm-4.7-flash:latest"
    assert set(claude_env(settings).values()) & set(routes) >= {"glm-4.7-flash:latest", "qwen3-coder"}
    # The key is read from the environment file, never written into the world-readable config.
    assert config["general_settings"]["master_key"] == "os.environ/LITELLM_MASTER_KEY"
    assert KEY not in proxy_config(settings)


def test_unit_runs_the_pinned_virtualenv_on_loopback_with_the_key_file():
    settings = parse_settings({**ROUTE, "claude_litellm_version": "1.106.12"}, "gpu1")
    unit = proxy_unit(settings)
    assert "ExecStart=/opt/ollama-claude/litellm/1.106.12/bin/litellm " in unit
    assert "--host 127.0.0.1 --port 4000" in unit
    assert f"EnvironmentFile={KEY_PATH}" in unit
    assert KEY not in unit
    assert proxy_models(settings) == ["glm-4.7-flash:latest"]


def test_mirror_serves_a_wheelhouse_index_pip_can_read(tmp_path):
    wheels = tmp_path / "wheels" / "litellm-1.0"
    wheels.mkdir(parents=True)
    for name in ("pip-26.3-py3-none-any.whl", "litellm-1.0-py3-none-any.whl"):
        (wheels / name).write_bytes(b"PK")
    write_index(wheels)
    server = make_server(tmp_path)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        url = f"http://127.0.0.1:{server.server_address[1]}/wheels/litellm-1.0/"
        with urllib.request.urlopen(url) as response:
            page = response.read().decode()
            assert response.headers["Content-Type"].startswith("text/html")
        assert '<a href="pip-26.3-py3-none-any.whl">' in page and "litellm-1.0-py3-none-any.whl" in page
    finally:
        server.shutdown()
        server.server_close()
