"""The fallback chain: order, blocked links, model_override, the Claude link's hidden settings, item 7."""

from __future__ import annotations

from ollama_claude.settings import ClaudeUser, parse_settings
from ollama_claude.verify import chain
from ollama_claude.verify.facts import EditTestResult

DEV = ClaudeUser(name="dev")
KEYED = ClaudeUser(name="dev", anthropic_api_key="sk-ant-test-key")
FINE = chain.Prerequisites(common=None, ollama=None, local=None, signin={"signed_in": True})
OK = EditTestResult(True, 0, False, "Created test.txt", "hi", 1.5)
REFUSED = EditTestResult(False, 1, True, "API Error: Unable to connect to API (ConnectionRefused)", None)


def settings(**data):
    return parse_settings({"claude_users": ["dev"], "ollama_cloud_models": ["glm-5:cloud"], **data}, "h1")


def run(links, results):
    tried = []

    def try_link(link):
        tried.append(link.name)
        return results[link.name]
    return chain.run_chain(links, try_link), tried


def test_first_passing_link_wins_and_later_links_are_not_tried():
    links = chain.plan_links(settings(), DEV, FINE)
    attempts, tried = run(links, {"local": OK})
    assert tried == ["local"] and chain.chosen(attempts).link.model == "glm-4.7-flash:latest"
    assert chain.edit_test_item(DEV, attempts, 120).status == "pass"


def test_local_broken_and_cloud_signed_in_picks_the_cloud_model():
    links = chain.plan_links(settings(), DEV, FINE)
    attempts, tried = run(links, {"local": REFUSED, "cloud": OK})
    assert tried == ["local", "cloud"]
    winner = chain.chosen(attempts)
    assert winner.link.name == "cloud" and winner.link.model == "glm-5:cloud"
    item = chain.edit_test_item(DEV, attempts, 120)
    assert item.status == "pass" and "local glm-4.7-flash:latest: API Error" in item.message


def test_blocked_local_link_is_not_tried():
    prereq = chain.Prerequisites(None, None, "glm-4.7-flash:latest lacks the tools capability (item 3)",
                                 {"signed_in": True})
    attempts, tried = run(chain.plan_links(settings(), DEV, prereq), {"cloud": OK})
    assert tried == ["cloud"] and attempts[0].status == "skipped"


def test_both_broken_without_anthropic_credential_fails_with_the_chains_reasons():
    prereq = chain.Prerequisites(None, None, None, {"signed_in": False, "signin_url": "https://x/connect"})
    attempts, tried = run(chain.plan_links(settings(verify_allow_anthropic=True), DEV, prereq),
                          {"local": REFUSED})
    assert tried == ["local"]
    item = chain.edit_test_item(DEV, attempts, 120)
    assert item.status == "fail"
    assert "local glm-4.7-flash:latest: API Error: Unable to connect" in item.message
    assert "cloud: the Ollama server is not signed in (https://x/connect)" in item.message
    assert "claude: no anthropic_api_key for dev" in item.message


def test_no_link_tried_is_a_skip_naming_the_blockers():
    prereq = chain.Prerequisites("Claude Code is not installed (item 9)", None, None, None)
    attempts, _ = run(chain.plan_links(settings(ollama_cloud_models=[]), DEV, prereq), {})
    item = chain.edit_test_item(DEV, attempts, 120)
    assert item.status == "skip" and "local: Claude Code is not installed (item 9)" in item.message
    assert "cloud: no model in ollama_cloud_models" in item.message


def test_anthropic_link_needs_policy_and_key():
    assert chain.plan_links(settings(), KEYED, FINE)[2].blocked == "verify_allow_anthropic is off (policy)"
    link = chain.plan_links(settings(verify_allow_anthropic=True), KEYED, FINE)[2]
    assert link.blocked is None and link.model == "claude-haiku-5-5"
    assert str(link.api_key) == "***" and "sk-ant" not in repr(link)
    assert link.api_key.unmask() == "sk-ant-test-key" and link.base_url == "https://api.anthropic.com"


def test_model_override_forces_one_link():
    links = chain.plan_links(settings(model_override="cloud"), DEV, FINE)
    assert [link.name for link in links] == ["cloud"]


def test_configured_order_is_followed():
    links = chain.plan_links(settings(verify_fallback=["cloud", "local"]), DEV, FINE)
    assert [link.name for link in links] == ["cloud", "local"]


def test_root_refusal_and_timeout_get_their_own_fix():
    refusal = EditTestResult(False, 1, None, "--dangerously-skip-permissions cannot be used with root/sudo "
                                               "privileges for security reasons", None)
    links = chain.plan_links(settings(ollama_cloud_models=[]), DEV, FINE)
    item = chain.edit_test_item(DEV, run(links, {"local": refusal})[0], 120)
    assert item.status == "fail" and "root/sudo" in item.message and "unprivileged user" in item.fix
    timeout = EditTestResult(False, 124, None, "", None)
    item = chain.edit_test_item(DEV, run(links, {"local": timeout})[0], 7)
    assert "timed out after 7 s" in item.message and "verify_timeout" in item.fix


def test_cloud_link_blocked_by_unreachable_ollama_com_says_so_not_signin():
    prereq = chain.Prerequisites(None, None, None, {"signed_in": False, "signin_url": None, "unreachable": True})
    attempts, tried = run(chain.plan_links(settings(), DEV, prereq), {"local": REFUSED})
    assert tried == ["local"]
    item = chain.edit_test_item(DEV, attempts, 120)
    assert "cloud: ollama.com unreachable from this host's Ollama server" in item.message
    assert "ollama signin" not in item.message
