"""The stand-in CLI prints what the real `ollama` prints on the paths the deploy and checklist read."""

import json
import os
import subprocess

import pytest

from ollama_claude.lab.standin_server import baked_standin, free_port, start_standin


@pytest.fixture
def standin(tmp_path):
    server = start_standin(tmp_path / "standin")
    yield server
    server.stop()


def test_version_reachable_unreachable_and_mismatched(standin, tmp_path):
    assert standin.cli("-v").stdout == "ollama version is 0.32.15\n"
    assert standin.cli("--version").returncode == 0
    unreachable = standin.cli("-v", env={"OLLAMA_HOST": f"127.0.0.1:{free_port()}"})
    assert unreachable.stdout == (
        "Warning: could not connect to a running Ollama instance\nWarning: client version is 0.32.15\n"
    )
    old_client = tmp_path / "ollama-0.15.2"
    old_client.write_text(baked_standin("0.15.2"))
    old_client.chmod(0o755)
    mismatch = subprocess.run([old_client, "-v"], env=standin.env, capture_output=True, text=True, check=True)
    assert mismatch.stdout == "ollama version is 0.32.15\nWarning: client version is 0.15.2\n"


def test_pull_progress_list_show_ps_rm(standin):
    pulled = standin.cli("pull", "glm-4.7-flash")
    assert pulled.returncode == 0
    lines = pulled.stderr.splitlines()
    assert lines[0] == "pulling manifest" and lines[-1] == "success"
    assert any(line.startswith("pulling ") and "100%" in line for line in lines)

    listed = standin.cli("list").stdout.splitlines()
    assert listed[0].split() == ["NAME", "ID", "SIZE", "MODIFIED"]
    assert listed[1].startswith("glm-4.7-flash:latest")

    shown = standin.cli("show", "glm-4.7-flash").stdout
    assert "  Capabilities\n    completion\n    tools\n    thinking\n" in shown
    assert "context length      202752" in shown

    assert standin.cli("ps").stdout.split() == ["NAME", "ID", "SIZE", "PROCESSOR", "CONTEXT", "UNTIL"]

    removed = standin.cli("rm", "glm-4.7-flash")
    assert removed.stdout == "deleted 'glm-4.7-flash'\n"
    assert len(standin.cli("list").stdout.splitlines()) == 1


def test_errors_go_to_stderr_with_exit_1(standin):
    failed = standin.cli("pull", "no-such-model")
    assert (failed.returncode, failed.stderr.splitlines()[-1]) == (
        1,
        "Error: pull model manifest: file does not exist",
    )
    missing = standin.cli("show", "nothing-here")
    assert (missing.returncode, missing.stderr) == (1, "Error: model 'nothing-here:latest' not found\n")
    down = standin.cli("list", env={"OLLAMA_HOST": f"127.0.0.1:{free_port()}"})
    assert down.stderr == "Error: could not connect to ollama server, run 'ollama serve' to start it\n"


def test_signin_and_signout(standin):
    offline = standin.cli("signin")
    assert (offline.returncode, offline.stderr) == (1, "Error: account unavailable\n"), "the lab is offline"
    (standin.home / ".ollama/standin-ollama-com-reachable").touch()
    signin = standin.cli("signin")
    assert signin.returncode == 0
    assert signin.stdout.startswith("You need to be signed in to Ollama to run Cloud models.\n")
    assert "    https://ollama.com/connect?name=" in signin.stdout
    assert standin.cli("signout").stdout == "You are not signed in to ollama.com\n\n"
    (standin.home / ".ollama/standin-signed-in").touch()
    assert standin.cli("signin").stdout == "You are already signed in as user 'standin'\n\n"
    assert standin.cli("signout").stdout == "You have signed out of ollama.com\n\n"
    assert not (standin.home / ".ollama/standin-signed-in").exists()


def test_serve_refuses_a_busy_port(standin):
    second = standin.cli("serve", timeout=10)
    assert second.returncode == 1
    assert "bind: address already in use" in second.stderr


def fake_claude(directory):
    """A `claude` that records its arguments and the Anthropic/Claude env it was given."""
    script = directory / "claude"
    script.write_text(
        "#!/usr/bin/env python3\n"
        "import json, os, sys\n"
        "env = {k: v for k, v in os.environ.items() if k.startswith(('ANTHROPIC_', 'CLAUDE_'))}\n"
        "print(json.dumps({'argv': sys.argv[1:], 'env': env}))\n"
    )
    script.chmod(0o755)
    return directory


@pytest.mark.parametrize(
    ("version", "base_url_is_host", "sets_roles"),
    [("0.15.2", False, False), ("0.16.3", True, True)],
)
def test_launch_claude_execs_claude_with_the_release_env(tmp_path, version, base_url_is_host, sets_roles):
    server = start_standin(tmp_path / "standin", version=version)
    try:
        bin_dir = fake_claude(tmp_path)
        launched = server.cli(
            "launch",
            "claude",
            "--model",
            "qwen3-coder",
            "--",
            "-p",
            "hi",
            env={"PATH": f"{bin_dir}:{os.environ['PATH']}"},
        )
        assert launched.returncode == 0, launched.stderr
        seen = json.loads(launched.stdout.splitlines()[-1])
        assert seen["argv"] == ["--model", "qwen3-coder", "-p", "hi"]
        env = seen["env"]
        assert (env["ANTHROPIC_AUTH_TOKEN"], env["ANTHROPIC_API_KEY"]) == ("ollama", "")
        expected_url = server.url if base_url_is_host else "http://localhost:11434"
        assert env["ANTHROPIC_BASE_URL"] == expected_url
        assert ("ANTHROPIC_DEFAULT_HAIKU_MODEL" in env) is sets_roles
        config = json.loads((server.home / ".ollama/config.json").read_text())
        assert config["integrations"]["claude"]["models"] == ["qwen3-coder"]
        assert "qwen3-coder:latest" in server.cli("list").stdout, "launch pulls a missing model"
    finally:
        server.stop()


def test_launch_is_absent_before_0_15_and_needs_claude(tmp_path):
    server = start_standin(tmp_path / "standin", version="0.14.3")
    try:
        old = server.cli("launch", "claude", "--model", "qwen3")
        assert (old.returncode, old.stderr) == (1, 'Error: unknown command "launch" for "ollama"\n')
    finally:
        server.stop()
    server = start_standin(tmp_path / "new", version="0.16.3")
    try:
        no_claude = server.cli("launch", "claude", "--model", "qwen3", env={"PATH": "/usr/bin:/bin"})
        assert no_claude.stderr.endswith(
            "Error: claude is not installed, install from https://code.claude.com/docs/en/quickstart\n"
        )
    finally:
        server.stop()
