"""Every operation honours the connection's privilege settings: none hard-codes `_sudo` (or su) for itself."""

from __future__ import annotations

import ast
from pathlib import Path

from harness import FakeHost, FakeState
from pyinfra.context import ctx_host, ctx_state
from pyinfra_cli_run import REPO

from ollama_claude.privilege import system_privilege, user_privilege

PACKAGE = REPO / "src" / "ollama_claude"
PRIVILEGE_ARGS = {"_sudo", "_sudo_user", "_sudo_password", "_use_sudo_login", "_su_user", "_doas", "_doas_user"}


def privilege_keywords(path: Path) -> list[str]:
    found = []
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Call):
            found += [f"{path.relative_to(REPO)}:{node.lineno} {kw.arg}=" for kw in node.keywords
                      if kw.arg in PRIVILEGE_ARGS]
        if isinstance(node, ast.Dict):  # **{"_sudo": ...} spelled as a dict literal
            found += [f"{path.relative_to(REPO)}:{node.lineno} {key.value!r}" for key in node.keys
                      if isinstance(key, ast.Constant) and key.value in PRIVILEGE_ARGS]
    return found


def test_no_operation_sets_its_own_privilege():
    """Only the seam in privilege.py may say who runs an operation; the lab (not deployed code) is exempt."""
    offenders = [
        hit for path in sorted(PACKAGE.rglob("*.py"))
        if path.name != "privilege.py" and "lab" not in path.relative_to(PACKAGE).parts
        for hit in privilege_keywords(path)
    ]
    assert offenders == []


def on_host(kernel: str, connected_as: str):
    """Run a privilege question on a fake host of that kernel reached as that user."""
    def ask(question, *args):
        with ctx_state.use(FakeState()), ctx_host.use(FakeHost({"Kernel": kernel, "ConnectionUser": connected_as})):
            return question(*args)
    return ask


def test_linux_operations_take_the_connections_privilege():
    """Root SSH or `_sudo` (+ `_sudo_password`) in host data: nothing is added, so nothing is overridden."""
    for user in ("root", "dev"):
        assert on_host("Linux", user)(system_privilege) == {}
        assert on_host("Linux", user)(user_privilege, "dev") == {}


def test_macos_system_parts_take_sudo():
    """A Mac is reached as its laptop user: the system parts (/usr/local, /opt, /Library) take sudo."""
    assert on_host("Darwin", "dev")(system_privilege) == {"_sudo": True}


def test_macos_user_files_take_sudo_only_for_another_user():
    """The laptop user's own files are written as that user (not as root, whose HOME is /var/root under sudo -H);
    another user's, or any when connected as root (MDM), through sudo."""
    assert on_host("Darwin", "dev")(user_privilege, "dev") == {}
    assert on_host("Darwin", "dev")(user_privilege, "ada") == {"_sudo": True}
    assert on_host("Darwin", "root")(user_privilege, "dev") == {"_sudo": True}
