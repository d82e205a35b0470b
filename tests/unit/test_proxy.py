"""Proxy settings: every download gets them as pyinfra _env with the credentials masked; loopback never proxied."""

from __future__ import annotations

import pytest
from pyinfra.api.command import StringCommand
from pyinfra.connectors.util import make_unix_command

from ollama_claude.lab.proxy import _REQUEST, proxy_config
from ollama_claude.ollama.config import drop_in, server_environment
from ollama_claude.proxy import download_arguments, no_proxy, redact, service_environment
from ollama_claude.settings import SettingsError, parse_settings

SECRET = "s3cr3t-pass"
URL = f"http://alice:{SECRET}@proxy.corp.example:3128"


def settings(**data):
    return parse_settings(data, "gpu1")


def test_no_proxy_settings_change_nothing():
    plain = settings()
    assert download_arguments(plain) == {} and service_environment(plain) == {}
    assert "PROXY" not in drop_in(server_environment(plain, "auto"), [])


def test_loopback_and_the_ollama_bind_are_always_direct():
    lan = settings(https_proxy=URL, no_proxy=[".corp.example", "10.0.0.0/8"], ollama_host="192.168.1.20",
                   ollama_allow_lan=True)
    assert no_proxy(lan) == [".corp.example", "10.0.0.0/8", "127.0.0.1", "localhost", "::1", "192.168.1.20"]
    assert "0.0.0.0" not in no_proxy(settings(https_proxy=URL, ollama_host="0.0.0.0", ollama_allow_lan=True))
    remote = settings(https_proxy=URL, ollama_base_url="http://gpubox.lan:11434")
    assert "gpubox.lan" in no_proxy(remote)


def test_http_proxy_defaults_to_https_proxy_and_both_spellings_are_exported():
    env = download_arguments(settings(https_proxy=URL))["_env"]
    assert set(env) == {"https_proxy", "HTTPS_PROXY", "http_proxy", "HTTP_PROXY", "no_proxy", "NO_PROXY"}
    assert env["no_proxy"] == "127.0.0.1,localhost,::1"
    separate = download_arguments(settings(https_proxy=URL, http_proxy="http://mirror-proxy:8080"))["_env"]
    assert separate["http_proxy"].unmask() == "http://mirror-proxy:8080"


def test_the_password_reaches_the_host_but_never_pyinfra_output():
    arguments = download_arguments(settings(https_proxy=URL))
    command = make_unix_command(StringCommand("curl", "-fsSL", "http://mirror/x"), **arguments)
    assert SECRET in command.get_raw_value()  # what runs on the host
    shown = command.get_masked_value()  # what pyinfra prints (-vv, errors)
    assert SECRET not in shown and "http://***@proxy.corp.example:3128" in shown
    assert SECRET not in repr(settings(https_proxy=URL))


def test_the_service_gets_the_proxy_in_our_drop_in():
    env = server_environment(settings(https_proxy=URL, no_proxy=["registry.corp"]), "auto")
    assert env["HTTPS_PROXY"] == URL and env["HTTP_PROXY"] == URL
    assert env["NO_PROXY"] == "registry.corp,127.0.0.1,localhost,::1"
    assert f'"HTTPS_PROXY={URL}"' in drop_in(env, [])


@pytest.mark.parametrize("bad", ["proxy:3128", f"alice:{SECRET}@proxy:3128", "socks5://proxy:1080"])
def test_a_proxy_that_is_not_an_http_url_is_refused_without_showing_its_password(bad):
    with pytest.raises(SettingsError, match="https_proxy: .* is not a proxy URL") as error:
        settings(https_proxy=bad)
    assert SECRET not in str(error.value)


def test_no_proxy_entries_are_one_each():
    with pytest.raises(SettingsError, match="no_proxy: 'a,b'"):
        settings(no_proxy=["a,b"])


def test_redact():
    assert redact(URL) == "http://***@proxy.corp.example:3128"
    assert redact("http://proxy:3128") == "http://proxy:3128"


def test_lab_proxy_config_and_its_request_log():
    config = proxy_config("10.213.1.1", 3128, "10.213.1.0/24", "/tmp/p.log", "lab", "pw")  # type: ignore[arg-type]
    assert "Listen 10.213.1.1" in config and "Allow 10.213.1.0/24" in config and "BasicAuth lab pw" in config
    line = "CONNECT   Dec 01 15:48:08.433 [4582]: Request (file descriptor 5): GET http://10.213.1.1:8470/npm/ HTTP/1.1"
    assert _REQUEST.findall(line) == [("GET", "http://10.213.1.1:8470/npm/")]
