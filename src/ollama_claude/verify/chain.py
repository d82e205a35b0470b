"""
The fallback chain: local model -> cloud model -> Claude, in the configured order; the first link whose edit test
passes is the user's working model.

A link is not tried when a check already shows it cannot work (its reason is recorded instead), so a broken
local model costs no timeout and the report says why each link was passed over.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from pyinfra.api.hiddenvalue import HiddenValue

from ..settings import ClaudeUser, Settings
from .checks import ItemResult, failed, passed
from .facts import EDIT_PROMPT, EditTestResult

ROOT_REFUSAL = "cannot be used with root"


@dataclass(frozen=True)
class Link:
    """One way to run Claude Code: which model, through which endpoint, or why it cannot be tried."""

    name: str
    model: str | None
    blocked: str | None = None
    api_key: HiddenValue | None = None  # the Claude link: the user's Anthropic key
    base_url: str | None = None  # the Claude link: the only endpoint the key may reach


@dataclass(frozen=True)
class Attempt:
    link: Link
    result: EditTestResult | None

    @property
    def status(self) -> str:
        if self.result is None:
            return "skipped"
        return "passed" if self.result.passed else "failed"

    def reason(self, timeout: int) -> str:
        if self.result is None:
            return f"{self.link.name}: {self.link.blocked}"
        if self.result.passed:
            return f"{self.link.name} {self.link.model} passed in {self.result.seconds:.1f} s"
        return f"{self.link.name} {self.link.model}: {failure_reason(self.result, timeout)}"


@dataclass(frozen=True)
class Prerequisites:
    """What the checks found that decides which links can be tried at all (None: fine)."""

    common: str | None  # Claude Code missing, user missing
    ollama: str | None  # server or ANTHROPIC_BASE_URL unreachable
    local: str | None  # context too small, model missing or without tools
    signin: dict[str, Any] | None  # OllamaSignin fact; None when no cloud model is configured


def failure_reason(result: EditTestResult, timeout: int) -> str:
    """One line saying why an edit test failed, from Claude Code's JSON result or its error output."""
    if result.exit_code == 124:
        return f"timed out after {timeout} s (server unreachable or the model too slow)"
    first_line = next((line for line in result.result.splitlines() if line.strip()), "")
    if result.is_error or result.exit_code != 0:
        return (first_line or f"claude exited {result.exit_code}")[:240]
    if result.file_content is None:
        return f"test.txt was not created ({first_line[:160] or 'no result'})"
    return f"test.txt holds {result.file_content.strip()[:40]!r}, not 'hi'"


def plan_links(settings: Settings, user: ClaudeUser, prereq: Prerequisites) -> list[Link]:
    """The links to try for this user, in order; ``model_override`` forces a single link."""
    order = [settings.model_override] if settings.model_override else settings.verify_fallback
    return [_link(name, settings, user, prereq) for name in order]


def _link(name: str, settings: Settings, user: ClaudeUser, prereq: Prerequisites) -> Link:
    if name == "local":
        model = settings.default_model
        return Link(name, model, prereq.common or prereq.ollama or prereq.local)
    if name == "cloud":
        model = settings.cloud_models[0].full if settings.cloud_models else None
        if model is None:
            return Link(name, None, "no model in ollama_cloud_models")
        return Link(name, model, prereq.common or prereq.ollama or _signin_problem(prereq.signin))
    model = settings.verify_anthropic_model
    if not settings.verify_allow_anthropic:
        return Link(name, model, "verify_allow_anthropic is off (policy)")
    if not user.anthropic_api_key:
        return Link(name, model, f"no anthropic_api_key for {user.name}")
    return Link(name, model, prereq.common, HiddenValue(user.anthropic_api_key, masked_value="***"),
                settings.verify_anthropic_base_url)


def _signin_problem(signin: dict[str, Any] | None) -> str | None:
    if signin and signin.get("signed_in"):
        return None
    if signin and signin.get("unreachable"):
        return "ollama.com unreachable from this host's Ollama server (/api/me): allow it outbound HTTPS"
    where = f" ({signin['signin_url']})" if signin and signin.get("signin_url") else ""
    return f"the Ollama server is not signed in{where}: run `ollama signin` as the server's user"


def run_chain(links: list[Link], try_link: Callable[[Link], EditTestResult]) -> list[Attempt]:
    """Try the links in order until one passes; blocked links are recorded, not tried."""
    attempts = []
    for link in links:
        attempt = Attempt(link, None if link.blocked else try_link(link))
        attempts.append(attempt)
        if attempt.status == "passed":
            break
    return attempts


def chosen(attempts: list[Attempt]) -> Attempt | None:
    return next((attempt for attempt in attempts if attempt.status == "passed"), None)


def edit_test_item(user: ClaudeUser, attempts: list[Attempt], timeout: int) -> ItemResult:
    """Item 7: the chain's outcome. Skipped (not failed) when no link could be tried: the blocking item fails."""
    winner = chosen(attempts)
    reasons = "; ".join(attempt.reason(timeout) for attempt in attempts)
    if winner is not None:
        return passed(7, reasons)
    tried = [attempt for attempt in attempts if attempt.result is not None]
    if not tried:
        return ItemResult(7, "skip", f"no link could be tried: {reasons}", "fix the failing items above")
    last = tried[-1]
    assert last.result is not None
    if ROOT_REFUSAL in last.result.result:
        fix = f"run the edit test as an unprivileged user: {user.name} has uid 0"
    elif last.result.exit_code == 124:
        fix = "check ANTHROPIC_BASE_URL and that the model loads within verify_timeout"
    else:
        fix = (f"as {user.name} in an empty directory, run: claude -p '{EDIT_PROMPT}' --model {last.link.model} "
               "--allowedTools Read,Edit,Bash --dangerously-skip-permissions")
    return failed(7, f"no link passed: {reasons}", fix)
