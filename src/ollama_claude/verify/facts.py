"""
Read-only facts for the checklist: what the host, its Ollama service and each user's Claude Code really see.

Every fact exits 0 and returns a "missing" value instead of failing, because the checklist must report a broken
host item by item rather than stop at the first fact pyinfra could not load.
"""

from __future__ import annotations

import json
import re
import shlex
import time
from dataclasses import dataclass
from typing import Any

from pyinfra.api import FactBase, QuoteString, StringCommand
from pyinfra.api.hiddenvalue import HiddenValue

from ..accounts import OWN_HOME, OWN_SHELL
from ..ollama_api import api_command, parse_response
from ..templating import render

#: The seed's edit test prompt and the content the file must hold afterwards.
EDIT_PROMPT = "Create test.txt with content hi"
EDIT_CONTENT = "hi"
_RC_MARK = "__OCV_RC__"
_FILE_MARK = "__OCV_FILE__"
_START_MARK = "__OCV_START__"
_ENV_LINE = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*=")


def as_user(user: str, script: str, quoted_script: str | None = None) -> str:
    """
    Run ``script`` in a login shell of ``user``, as a terminal would: directly when the deploy already is that
    user (a Mac reached as its laptop user, whose ``su`` would ask for a password), else with runuser (Linux)
    or su (macOS, as root). ``quoted_script`` is the script already quoted for the outer shell, when that shell
    must expand parts of it.
    """
    quoted_user, quoted_script = shlex.quote(user), quoted_script or shlex.quote(script)
    return (
        f'if [ "$(id -un)" = {quoted_user} ]; then (h=$({OWN_HOME}) && s=$({OWN_SHELL}) && s=${{s:-/bin/sh}} && '
        f'cd "$h" && env -i HOME="$h" USER={quoted_user} LOGNAME={quoted_user} SHELL="$s" '
        f'PATH=/usr/bin:/bin:/usr/sbin:/sbin TMPDIR="${{TMPDIR:-/tmp}}" "$s" -l -c {quoted_script}); '
        f"elif command -v runuser >/dev/null 2>&1; then runuser -l {quoted_user} -c {quoted_script}; "
        f"else su -l {quoted_user} -c {quoted_script}; fi"
    )


#: ``<TIMEOUT> <seconds> <command...>``: GNU timeout's contract (exit 124 when time ran out, the command's whole
#: process group stopped) in perl, which every Linux host (Debian: perl-base is essential) and every Mac has;
#: macOS ships no ``timeout`` (../shared/reference/macos.md, "Userland differences").
TIMEOUT = ("perl -e '$t = shift; $p = fork; defined $p or exit 125; if (!$p) { setpgrp(0, 0); exec @ARGV; exit 127 } "
           "$SIG{ALRM} = sub { kill \"TERM\", -$p; sleep 2; kill \"KILL\", -$p; exit 124 }; alarm $t; "
           "waitpid($p, 0); exit($? & 127 ? 128 + ($? & 127) : $? >> 8)'")


class LoadedModels(FactBase[dict[str, int] | None]):
    """Models the server has loaded with the context length it gave each (``/api/ps``); None if no answer."""

    @staticmethod
    def default() -> None:
        return None

    def command(self, base_url: str) -> str:
        return api_command(base_url, "/api/ps", timeout=5)

    def process(self, output: list[str]) -> dict[str, int] | None:
        response = parse_response(output)
        if not response.ok:
            return None
        try:
            models = (response.json() or {}).get("models") or []
        except (ValueError, AttributeError):
            return None
        return {item["name"]: item["context_length"] for item in models
                if isinstance(item.get("context_length"), int)}


def parse_unit_environment(line: str) -> dict[str, str]:
    """``systemctl show -p Environment --value`` prints ``A=1 "B=x y"``: systemd's quoting is shell-like."""
    pairs = (item.split("=", 1) for item in shlex.split(line) if "=" in item)
    return {key: value for key, value in pairs}


class OllamaServiceEnvironment(FactBase[dict[str, str] | None]):
    """
    The environment the init system gives the Ollama service: systemd (unit + drop-ins) or, on macOS, our
    LaunchAgent's ``EnvironmentVariables`` read from its plist (``launchctl getenv`` never shows a plist's
    variables: ../shared/reference/macos.md, "launchd"); None when there is no such service.
    """

    @staticmethod
    def default() -> None:
        return None

    def command(self, plist: str = "") -> str:
        launchd = (f"elif [ -f {shlex.quote(plist)} ]; then echo launchd; "
                   f"plutil -extract EnvironmentVariables json -o - {shlex.quote(plist)}; ") if plist else ""
        return (
            "if command -v systemctl >/dev/null 2>&1 && systemctl cat ollama.service >/dev/null 2>&1; then "
            "echo systemd; systemctl show ollama.service -p Environment --value; "
            f"{launchd}fi; true"
        )

    def process(self, output: list[str]) -> dict[str, str] | None:
        if not output:
            return None
        kind, rest = output[0].strip(), output[1:]
        if kind == "systemd":
            return parse_unit_environment(" ".join(rest))
        try:
            variables = json.loads("\n".join(rest) or "{}")
        except ValueError:
            return {}
        return {key: str(value) for key, value in variables.items()} if isinstance(variables, dict) else {}


def parse_env_lines(output: list[str]) -> dict[str, str]:
    """``env`` output; a line that does not start a variable continues the previous (multi-line) value."""
    env: dict[str, str] = {}
    last = None
    for line in output:
        if _ENV_LINE.match(line):
            last, value = line.split("=", 1)
            env[last] = value
        elif last is not None:
            env[last] += "\n" + line
    return env


class LoginEnvironment(FactBase[dict[str, str]]):
    """The environment of a login shell of the user: what ``claude`` started from a terminal inherits."""

    default = dict

    def command(self, user: str) -> str:
        return f"{as_user(user, 'env')} 2>/dev/null || true"

    def process(self, output: list[str]) -> dict[str, str]:
        return parse_env_lines(output)


@dataclass(frozen=True)
class JsonDocument:
    """A JSON file on the host: its expanded path, its content (None when absent) and any parse error."""

    path: str
    data: dict[str, Any] | None = None
    error: str | None = None

    @property
    def mapping(self) -> dict[str, Any]:
        return self.data if isinstance(self.data, dict) else {}


class JsonFile(FactBase[JsonDocument | None]):
    """
    A JSON file, read as root or (when ``user`` is given) in the user's login shell so that ``$HOME`` and
    ``${XDG_DATA_HOME:-...}`` in the path expand the way Claude Code expands them for that user.
    """

    @staticmethod
    def default() -> None:
        return None

    def command(self, path: str, user: str | None = None) -> str:
        script = f'f="{path}"; echo "$f"; if [ -f "$f" ]; then echo {_START_MARK}; cat "$f"; fi'
        return (as_user(user, script) if user else script) + " 2>/dev/null; true"

    def process(self, output: list[str]) -> JsonDocument:
        path = output[0].strip()
        if _START_MARK not in output:
            return JsonDocument(path=path)
        text = "\n".join(output[output.index(_START_MARK) + 1:])
        try:
            return JsonDocument(path=path, data=json.loads(text) if text.strip() else {})
        except ValueError as error:
            return JsonDocument(path=path, error=str(error))


class JsonDirectory(FactBase[tuple[JsonDocument, ...]]):
    """Every ``*.json`` in a directory, in name order (managed-settings.d drop-ins); empty when there is none."""

    default = tuple

    def command(self, directory: str) -> str:
        return (f"for f in {shlex.quote(directory)}/*.json; do [ -f \"$f\" ] || continue; "
                f'echo "{_FILE_MARK}$f"; cat "$f"; echo; done 2>/dev/null; true')

    def process(self, output: list[str]) -> tuple[JsonDocument, ...]:
        documents: list[tuple[str, list[str]]] = []
        for line in output:
            if line.startswith(_FILE_MARK):
                documents.append((line[len(_FILE_MARK):], []))
            elif documents:
                documents[-1][1].append(line)
        result = []
        for path, lines in sorted(documents):
            text = "\n".join(lines)
            try:
                result.append(JsonDocument(path=path, data=json.loads(text) if text.strip() else {}))
            except ValueError as error:
                result.append(JsonDocument(path=path, error=str(error)))
        return tuple(result)


class HttpHeadStatus(FactBase[int]):
    """The HTTP status of ``HEAD url`` from the host (0: nothing answered), like Claude Code's preflight."""

    default = int

    def command(self, url: str, timeout: int = 5) -> str:
        return (
            f"curl -sS -o /dev/null -I --max-time {int(timeout)} -w '%{{http_code}}' {shlex.quote(url)} "
            "2>/dev/null || true"
        )

    def process(self, output: list[str]) -> int:
        digits = "".join(output).strip()[-3:]
        return int(digits) if digits.isdigit() else 0


class ClaudeCodeVersion(FactBase[str | None]):
    """The Claude Code version a login shell of the user runs (``claude --version``); None when missing."""

    @staticmethod
    def default() -> None:
        return None

    def command(self, user: str, executable: str = "claude") -> str:
        return f"{as_user(user, f'{shlex.quote(executable)} --version')} 2>/dev/null || true"

    def process(self, output: list[str]) -> str | None:
        match = re.search(r"\b(\d+\.\d+\.\d+)\b", " ".join(output))
        return match[1] if match else None


@dataclass(frozen=True)
class EditTestResult:
    """One run of the seed's edit test: passed only when test.txt holds ``hi`` afterwards."""

    passed: bool
    exit_code: int
    is_error: bool | None
    result: str
    file_content: str | None
    seconds: float = 0.0


def parse_edit_test(output: list[str]) -> EditTestResult:
    """Split the edit test's output: Claude Code's JSON (or error text), its exit code, the file it wrote."""
    rc_index = next((i for i, line in enumerate(output) if line.startswith(_RC_MARK)), len(output))
    claude_lines = output[:rc_index]
    exit_code = int(output[rc_index][len(_RC_MARK):] or 1) if rc_index < len(output) else 1
    file_content = None
    if _FILE_MARK in output:
        file_content = "\n".join(output[output.index(_FILE_MARK) + 1:])
    is_error, result = None, "\n".join(line for line in claude_lines if line.strip()).strip()
    api_errors = []
    for line in claude_lines:
        if not line.startswith("{"):
            continue
        try:
            body = json.loads(line)
        except ValueError:
            continue
        if isinstance(body, dict) and body.get("type") == "result":
            is_error, result = bool(body.get("is_error")), str(body.get("result", ""))
        elif isinstance(body, dict) and body.get("type") == "assistant":
            api_errors += [text for text in _assistant_texts(body) if text.startswith(_API_ERROR)]
    if api_errors:  # a broken stream Claude Code got past (Ollama < 0.18.0): the turn did not complete cleanly
        is_error, result = True, api_errors[0]
    passed = file_content is not None and file_content.strip() == EDIT_CONTENT and exit_code == 0 and not is_error
    return EditTestResult(passed, exit_code, is_error, result, file_content)


#: How Claude Code marks an API failure in its transcript (stream-json): a text block of an assistant message.
_API_ERROR = "API Error"


def _assistant_texts(event: dict[str, Any]) -> list[str]:
    content = (event.get("message") or {}).get("content") or []
    return [str(block.get("text", "")) for block in content if isinstance(block, dict) and block.get("type") == "text"]


#: Where Claude Code looks for machine policy (managed-settings.json, managed-settings.d/*.json, the macOS MDM
#: profile): it beats every other settings source, ``--settings`` and ``--managed-settings`` included (measured
#: with 2.1.332: a policy base URL received the ``--settings`` key).
MANAGED_POLICY_DIRS = ("/etc/claude-code", "/Library/Application Support/ClaudeCode")
MANAGED_POLICY_FILES = (
    *(f"{directory}/managed-settings.json" for directory in MANAGED_POLICY_DIRS),
    "/Library/Managed Preferences/com.anthropic.claudecode.plist",
)
#: Run as root: a private mount namespace where /etc/claude-code is an empty tmpfs, so Claude Code reads no
#: policy there; the link script itself refuses the key if a policy file is still visible.
_HIDE_POLICY = (
    "mount --make-rprivate / 2>/dev/null; "
    '[ ! -d /etc/claude-code ] || mount -t tmpfs -o mode=0755 tmpfs /etc/claude-code 2>/dev/null; exec "$@"'
)


class EditTest(FactBase[EditTestResult]):
    """
    The seed's edit test, for real, as the user in a fresh temporary directory that is removed afterwards.

    Bounded by ``timeout`` and ``CLAUDE_CODE_MAX_RETRIES=0`` (Claude Code otherwise retries an unreachable
    server for minutes). With ``anthropic_base_url`` and ``api_key`` (a HiddenValue, kept out of pyinfra's
    output) it is the chain's Claude link, which no setting may redirect: it runs templates/claude/
    claude-link.sh with a config dir of its own and an environment it builds itself, in a mount namespace
    that hides the machine policy (Linux), and the script refuses to use the key while any policy file is
    visible. The key reaches its file through the shell's builtin printf and the environment through the
    script, so it never shows in a process list.
    """

    prefetch = False  # side effects and a secret: never batched by ollama_claude.factcache, always run live

    @staticmethod
    def default() -> EditTestResult:
        return EditTestResult(False, 1, None, "the edit test did not run", None)

    def command(self, user: str, model: str, timeout: int, executable: str = "claude",
                anthropic_base_url: str | None = None, api_key: HiddenValue | None = None) -> StringCommand:
        bits: list[Any] = [
            'd=$(mktemp -d "${TMPDIR:-/tmp}/ollama-claude-verify.XXXXXX") || exit 0;',
            "chown", shlex.quote(user), '"$d";',
        ]
        if anthropic_base_url is not None and api_key is not None:
            link = render("claude/claude-link.sh", base_url=anthropic_base_url, timeout=int(timeout), timeout_command=TIMEOUT,
                          claude=executable, prompt=EDIT_PROMPT, model=model,
                          managed_paths=MANAGED_POLICY_FILES,
                          managed_dirs=[f"{d}/managed-settings.d" for d in MANAGED_POLICY_DIRS])
            bits += ["(umask 077; printf %s", QuoteString(api_key), '> "$d/.anthropic-key");',
                     f"printf %s {shlex.quote(link)} > \"$d/.claude-link.sh\";",
                     "chown", shlex.quote(user), '"$d/.anthropic-key" "$d/.claude-link.sh";']
            quoted_user = shlex.quote(user)
            plain = as_user(user, "", quoted_script='"sh $d/.claude-link.sh"')
            run = (f'if [ "$(uname -s)" = Linux ] && unshare -m true 2>/dev/null; then '
                   f"unshare -m sh -c {shlex.quote(_HIDE_POLICY)} sh "
                   f'runuser -l {quoted_user} -c "sh $d/.claude-link.sh"; else {plain}; fi')
        else:
            claude = [
                shlex.quote(executable), "-p", shlex.quote(EDIT_PROMPT), "--model", shlex.quote(model),
                "--allowedTools", "Read,Edit,Bash", "--dangerously-skip-permissions",
                # the transcript, not only the result: Claude Code records a broken stream there and exits 0
                "--output-format", "stream-json", "--verbose",
            ]
            script = f"cd @DIR@ && CLAUDE_CODE_MAX_RETRIES=0 {TIMEOUT} {int(timeout)} {' '.join(claude)} </dev/null"
            run = as_user(user, script, quoted_script=_with_dir(script))
        bits += [
            f"{{ {run}; }} 2>&1; echo {_RC_MARK}$?;",
            f'if [ -f "$d/test.txt" ]; then echo {_FILE_MARK}; cat "$d/test.txt"; fi;',
            'rm -rf "$d"; true',
        ]
        return StringCommand(*bits)

    def process(self, output: list[str]) -> EditTestResult:
        return parse_edit_test(output)


def _with_dir(script: str) -> str:
    """Quote ``script`` as one double-quoted word for the root shell, which fills in ``@DIR@`` from ``$d``."""
    escaped = "".join("\\" + char if char in '\\"`$' else char for char in script)
    return '"' + escaped.replace("@DIR@", "'$d'") + '"'


def timed(call: Any) -> tuple[Any, float]:
    """Run ``call()`` and return its value with the seconds it took (facts run synchronously)."""
    started = time.monotonic()
    value = call()
    return value, time.monotonic() - started
