"""Model references as group_data declares them, and the facts read from the server's API answers."""

import json

import pytest

from ollama_claude.models.facts import ModelCapabilities, ModelShow, OllamaModels, OllamaSignin
from ollama_claude.models.operations import model_name, needs_pull
from ollama_claude.settings import ModelRef, SettingsError, parse_settings

DIGEST = "0" * 63 + "1"


def answer(body: str, status: int) -> list[str]:
    """curl's output as ollama_api.api_command shapes it: body lines, then the status line."""
    return [*body.splitlines(), f"__HTTP_STATUS__{status}"]


@pytest.mark.parametrize(
    ("text", "full", "digest"),
    [
        ("glm-4.7-flash", "glm-4.7-flash:latest", None),
        ("gpt-oss:20b", "gpt-oss:20b", None),
        ("library-user/my-model:q4_K_M", "library-user/my-model:q4_K_M", None),
        (f"qwen3:8b@sha256:{DIGEST}", "qwen3:8b", DIGEST),
        (f"qwen3@{DIGEST}", "qwen3:latest", DIGEST),
    ],
)
def test_library_references_parse_to_the_name_the_server_lists(text: str, full: str, digest: str | None) -> None:
    ref = ModelRef.parse(text)
    assert (ref.full, ref.digest) == (full, digest)
    assert model_name(text) == full


@pytest.mark.parametrize("text", ["GLM-4.7", "glm 4.7", "qwen3:", "qwen3@sha256:abc", ":latest", "a/b/c"])
def test_malformed_references_are_refused(text: str) -> None:
    with pytest.raises(ValueError, match="not a library model reference"):
        ModelRef.parse(text)


def test_hugging_face_import_is_refused_below_030_with_the_reason() -> None:
    with pytest.raises(SettingsError, match="ollama_models.*Hugging Face GGUF import: Ollama 0.18.0 gives"):
        parse_settings({"ollama_models": ["hf.co/unsloth/GLM-4.7-Flash-GGUF:Q4_K_M"], "ollama_version": "0.18.0"},
                       "gpu1")


@pytest.mark.parametrize(
    ("data", "problem"),
    [
        ({"ollama_default_model": "qwen3"}, "ollama_default_model 'qwen3' is not declared"),
        ({"ollama_models": ["glm-5:cloud"]}, "is a cloud model; list it in ollama_cloud_models"),
        ({"ollama_cloud_models": ["glm-5"]}, "does not end in :cloud or -cloud"),
    ],
)
def test_inconsistent_model_settings_stop_the_run(data: dict, problem: str) -> None:
    with pytest.raises(SettingsError, match=f"host gpu1: .*{problem}"):
        parse_settings(data, "gpu1")


def test_default_model_may_be_a_declared_cloud_model() -> None:
    settings = parse_settings({"ollama_cloud_models": ["glm-5:cloud"], "ollama_default_model": "glm-5:cloud"}, "h")
    assert settings.default_model == "glm-5:cloud"
    assert set(settings.role_models.values()) == {"glm-5:cloud"}


@pytest.mark.parametrize(
    ("listed", "stale"),
    [({}, True), ({"qwen3:8b": DIGEST}, False), ({"qwen3:8b": "f" * 64}, True), ({"qwen3:latest": DIGEST}, True)],
)
def test_a_pinned_model_is_stale_unless_listed_with_its_digest(listed: dict, stale: bool) -> None:
    assert needs_pull(ModelRef.parse(f"qwen3:8b@sha256:{DIGEST}"), listed) is stale


def test_an_unpinned_model_is_stale_only_when_missing() -> None:
    assert not needs_pull(ModelRef.parse("qwen3:8b"), {"qwen3:8b": "f" * 64})


def test_models_fact_maps_names_to_manifest_digests() -> None:
    body = json.dumps({"models": [{"name": "glm-4.7-flash:latest", "model": "glm-4.7-flash:latest", "digest": DIGEST}]})
    assert OllamaModels().process(answer(body, 200)) == {"glm-4.7-flash:latest": DIGEST}
    assert OllamaModels().process(answer('{"models":[]}', 200)) == {}


@pytest.mark.parametrize("output", [["__HTTP_STATUS__000"], answer("<html>bad gateway</html>", 502)])
def test_models_fact_is_unknown_while_the_server_is_down(output: list[str]) -> None:
    assert OllamaModels().process(output) is None


def test_capabilities_fact_reads_show_and_is_unknown_for_a_missing_model() -> None:
    assert ModelCapabilities().process(answer('{"capabilities":["completion","tools"]}', 200)) == ["completion", "tools"]
    assert ModelCapabilities().process(answer('{"model_info":{}}', 200)) == []
    assert ModelCapabilities().process(answer('{"error":"model \'x:latest\' not found"}', 404)) is None


def test_signin_fact_reads_api_me() -> None:
    link = "https://ollama.com/connect?name=gpu1&key=abc"
    assert OllamaSignin().process(answer('{"name":"dev"}', 200)) == {
        "signed_in": True, "signin_url": None, "unreachable": False}
    unauthorized = answer(json.dumps({"error": "unauthorized", "signin_url": link}), 401)
    assert OllamaSignin().process(unauthorized) == {"signed_in": False, "signin_url": link, "unreachable": False}
    assert OllamaSignin().process(["__HTTP_STATUS__000"]) == {
        "signed_in": None, "signin_url": None, "unreachable": False}


@pytest.mark.parametrize(("body", "status"), [("null", 200), ('{"error":"account unavailable"}', 503),
                                              ('{"name":""}', 200), ("{}", 200)])
def test_signin_fact_is_unreachable_not_signed_in_without_an_account_name(body: str, status: int) -> None:
    """200 null (0.15-0.23.1) and 503 (0.23.2+) are what /api/me answers when ollama.com cannot be reached."""
    assert OllamaSignin().process(answer(body, status)) == {"signed_in": False, "signin_url": None, "unreachable": True}


def test_show_fact_reads_num_ctx_and_the_trained_context() -> None:
    body = json.dumps({"capabilities": ["completion", "tools"], "parameters": "temperature 1\nnum_ctx 4096",
                       "model_info": {"general.architecture": "glm4moelite", "glm4moelite.context_length": 202752}})
    shown = ModelShow().process(answer(body, 200))
    assert (shown.capabilities, shown.num_ctx, shown.trained_context) == (["completion", "tools"], 4096, 202752)
    assert shown.context_in_effect(64000) == 4096
    plain = ModelShow().process(answer('{"capabilities":["tools"],"model_info":{}}', 200))
    assert (plain.num_ctx, plain.trained_context, plain.context_in_effect(64000)) == (None, None, 64000)
