"""
Claude Code on real lab hosts: the pinned native CLI installed from the lab mirror, settings.json merged for
the unprivileged user, env in a login shell, the real edit test through the Ollama stand-in, isolation, and a
laptop host using the GPU host's Ollama.

Run with your own lab name and subnet (OLLAMA_CLAUDE_TEST_LAB / OLLAMA_CLAUDE_TEST_SUBNET) so parallel suites
never share hosts.
"""

from __future__ import annotations

import json
import shlex

import pytest

from ollama_claude.lab.release_mirror import serve_release_mirror
from ollama_claude.lab.releases import CLAUDE_CODE_VERSION

pytestmark = [pytest.mark.lab, pytest.mark.claude]

GPU, LAPTOP = "gpu1", "gpu2"
SETTINGS_JSON = "/home/dev/.claude/settings.json"
REQUEST_LOG = "/usr/share/ollama/.ollama/standin-requests.jsonl"
EDIT_TEST = (
    'd=$(mktemp -d) && cd "$d" && CLAUDE_CODE_MAX_RETRIES=0 timeout 120 {claude} -p '
    '"Create test.txt with content hi" --model glm-4.7-flash --allowedTools Read,Edit,Bash '
    '--dangerously-skip-permissions >/dev/null; echo "rc=$?"; cat "$d/test.txt"'
)
DEPLOY = """\
from ollama_claude.claude.deploy import configure_claude_code
from ollama_claude.models.deploy import manage_models
from ollama_claude.ollama.deploy import install_ollama

install_ollama()
manage_models()
configure_claude_code()
"""


@pytest.fixture(scope="module")
def claude_lab(lab):
    """The session lab with the release mirror served on its bridge and every host's data pointing at it."""
    serve_release_mirror(lab)
    return lab


@pytest.fixture(scope="module")
def deploy(claude_lab, pyinfra_run, tmp_path_factory):
    """Run the install -> models -> Claude Code chain with extra host data, optionally on one host."""
    path = tmp_path_factory.mktemp("deploy") / "claude_chain.py"
    path.write_text(DEPLOY)

    def run(*, limit: str | None = None, extra: tuple[str, ...] = (), **data):
        return pyinfra_run(str(path), *extra, data=data, hosts=[limit] if limit else [], target=claude_lab)

    return run


def sh(lab, host: str, command: str, timeout: float = 150) -> str:
    result = lab.ssh(host, command, timeout=timeout)
    assert result.returncode == 0, f"{command}\n{result.stdout}\n{result.stderr}"
    return result.stdout


def as_user(lab, host: str, user: str, command: str, timeout: float = 150) -> str:
    return sh(lab, host, f"runuser -l {user} -c {shlex.quote(command)}", timeout)


def claude_ops(run) -> dict[str, dict[str, int]]:
    return {name: row for name, row in run.results().items() if name.startswith("Claude Code")}


def test_fresh_host_gets_env_and_passes_the_edit_test_through_ollama(claude_lab, deploy):
    run = deploy(limit=GPU)
    assert run.rc == 0, run
    link = f"/opt/claude-code/{CLAUDE_CODE_VERSION}/claude"
    assert sh(claude_lab, GPU, "readlink /usr/local/bin/claude").strip() == link
    assert sh(claude_lab, GPU, "claude --version").startswith(f"{CLAUDE_CODE_VERSION} ")
    settings = json.loads(sh(claude_lab, GPU, f"cat {SETTINGS_JSON}"))
    env = settings["env"]
    assert env["ANTHROPIC_BASE_URL"] == "http://127.0.0.1:11434" and env["ANTHROPIC_AUTH_TOKEN"] == "ollama"
    assert env["ANTHROPIC_DEFAULT_HAIKU_MODEL"] == "glm-4.7-flash:latest" and env["DISABLE_AUTOUPDATER"] == "1"
    assert (env["CLAUDE_CODE_MAX_CONTEXT_TOKENS"], env["ENABLE_TOOL_SEARCH"], env["CLAUDE_CODE_ATTRIBUTION_HEADER"]
            ) == ("64000", "false", "0")
    assert settings["model"] == "glm-4.7-flash:latest" and "ANTHROPIC_MODEL" not in env
    # settings.json is what Claude Code reads: the login shell does not carry the token to every process.
    assert "ANTHROPIC_" not in as_user(claude_lab, GPU, "dev", "env")
    assert json.loads(sh(claude_lab, GPU, "cat /home/dev/.claude.json"))["hasCompletedOnboarding"] is True
    assert sh(claude_lab, GPU, f"stat -c '%a %U' {SETTINGS_JSON}").strip() == "600 dev"

    sh(claude_lab, GPU, f": > {REQUEST_LOG}")
    assert as_user(claude_lab, GPU, "dev", EDIT_TEST.format(claude="claude")).split() == ["rc=0", "hi"]
    requests = [json.loads(line) for line in sh(claude_lab, GPU, f"cat {REQUEST_LOG}").splitlines()]
    messages = [r for r in requests if r["path"] == "/v1/messages"]
    assert messages, requests
    assert all(r["headers"]["authorization"].startswith("Bearer ") for r in messages)
    models = {r.get("model") for r in messages}
    assert models == {"glm-4.7-flash"}, models
    # One session, one system prompt: Ollama's KV cache can reuse the prefix (no per-request billing header).
    assert len({json.dumps(r["system"]) for r in messages}) == 1, [r["system"] for r in messages]
    assert not any(word in str(model) for model in models for word in ("haiku", "sonnet", "opus", "claude"))

    second = deploy(limit=GPU)
    assert second.rc == 0 and all(row["success"] == 0 for row in claude_ops(second).values()), second


def test_existing_settings_survive_with_backup_and_second_run_changes_nothing(claude_lab, deploy):
    user_file = {
        "hooks": {"PostToolUse": [{"matcher": "Edit", "hooks": [{"type": "command", "command": "true"}]}]},
        "permissions": {"allow": ["Bash(make:*)"], "deny": ["Read(./.env)"]},
        "env": {"EDITOR": "vim", "CLAUDE_CODE_USE_BEDROCK": "1", "ANTHROPIC_API_KEY": "sk-ant-api03-leakme"},
        "statusLine": {"type": "command", "command": "date"},
    }
    sh(
        claude_lab,
        GPU,
        f"rm -f /home/dev/.claude/settings.json.*.bak; "
        f"printf %s {shlex.quote(json.dumps(user_file))} > {SETTINGS_JSON}",
    )
    run = deploy(limit=GPU, claude_auth_token="tok-not-for-logs", extra=("-vv",))
    assert run.rc == 0, run
    assert (
        "removed env.CLAUDE_CODE_USE_BEDROCK" in run.output and "replaced env.ANTHROPIC_API_KEY" in run.output
    )
    assert "sk-ant-api03-leakme" not in run.output and "tok-not-for-logs" not in run.output
    merged = json.loads(sh(claude_lab, GPU, f"cat {SETTINGS_JSON}"))
    for key in ("hooks", "statusLine"):
        assert merged[key] == user_file[key]
    assert merged["permissions"] == {**user_file["permissions"], "defaultMode": "acceptEdits"}
    assert merged["env"]["EDITOR"] == "vim" and "CLAUDE_CODE_USE_BEDROCK" not in merged["env"]
    assert (
        merged["env"]["ANTHROPIC_API_KEY"] == ""
        and merged["env"]["ANTHROPIC_AUTH_TOKEN"] == "tok-not-for-logs"
    )
    backups = sh(claude_lab, GPU, "ls /home/dev/.claude/ | grep 'settings.json.*.ollama-claude.bak'").split()
    assert len(backups) == 1
    assert json.loads(sh(claude_lab, GPU, f"cat /home/dev/.claude/{backups[0]}")) == user_file

    before = sh(claude_lab, GPU, f"stat -c %Y.%Z {SETTINGS_JSON}")
    again = deploy(limit=GPU, claude_auth_token="tok-not-for-logs")
    assert again.rc == 0 and all(row["success"] == 0 for row in claude_ops(again).values()), again
    assert sh(claude_lab, GPU, f"stat -c %Y.%Z {SETTINGS_JSON}") == before
    assert len(sh(claude_lab, GPU, "ls /home/dev/.claude/ | grep ollama-claude.bak").split()) == 1


def test_broken_settings_json_fails_the_host_and_stays_untouched(claude_lab, deploy):
    sh(claude_lab, GPU, f'printf \'{{"env": {{"A": 1,}}\' > {SETTINGS_JSON}')
    before = sh(claude_lab, GPU, f"sha256sum {SETTINGS_JSON}; stat -c %Y {SETTINGS_JSON}")
    run = deploy(limit=GPU)
    assert run.rc != 0
    assert f"host {GPU}: {SETTINGS_JSON}: invalid JSON (" in run.output, run
    assert sh(claude_lab, GPU, f"sha256sum {SETTINGS_JSON}; stat -c %Y {SETTINGS_JSON}") == before
    sh(claude_lab, GPU, f"rm {SETTINGS_JSON}")


def test_rc_block_once_after_three_runs_and_fish_gets_its_own_file(claude_lab, deploy):
    sh(claude_lab, GPU, "id fishy >/dev/null 2>&1 || useradd -m -s /bin/sh fishy")
    users = ["dev", {"name": "fishy", "shell": "fish"}]
    for _ in range(3):
        assert deploy(limit=GPU, claude_users=users).rc == 0
    for rc_file in ("/home/dev/.bashrc", "/home/dev/.profile", "/home/fishy/.config/fish/config.fish"):
        text = sh(claude_lab, GPU, f"cat {rc_file}")
        assert text.count("# BEGIN ollama-claude") == 1 and text.count("# END ollama-claude") == 1, rc_file
    env_fish = sh(claude_lab, GPU, "cat /home/fishy/.config/ollama-claude/env.fish")
    assert "ANTHROPIC_" not in env_fish  # settings.json carries the env
    assert "and source '/home/fishy/.config/ollama-claude/env.fish'" in sh(
        claude_lab, GPU, "cat /home/fishy/.config/fish/config.fish"
    )
    assert (
        sh(claude_lab, GPU, "stat -c '%a %U' /home/fishy/.config/ollama-claude/env.fish").strip()
        == "600 fishy"
    )


def test_isolation_leaves_claude_dir_alone_and_the_wrapper_works(claude_lab, deploy):
    sh(
        claude_lab,
        GPU,
        "id iso >/dev/null 2>&1 || useradd -m -s /bin/bash iso; "
        "install -d -o iso -g iso -m 700 /home/iso/.claude; "
        'printf \'{"theme":"dark"}\' > /home/iso/.claude/settings.json; '
        "chown iso:iso /home/iso/.claude/settings.json",
    )
    before = sh(claude_lab, GPU, "cd /home/iso/.claude && find . -printf '%p %s %T@\\n' | sort")
    run = deploy(limit=GPU, claude_users=["iso"], claude_config_isolation=True)
    assert run.rc == 0, run
    assert sh(claude_lab, GPU, "cd /home/iso/.claude && find . -printf '%p %s %T@\\n' | sort") == before
    isolated = json.loads(sh(claude_lab, GPU, "cat /home/iso/.local/share/claude-ollama/settings.json"))
    assert isolated["env"]["ANTHROPIC_BASE_URL"] == "http://127.0.0.1:11434"
    assert "ANTHROPIC_BASE_URL" not in as_user(claude_lab, GPU, "iso", "env")
    assert as_user(claude_lab, GPU, "iso", EDIT_TEST.format(claude="claude-local")).split() == ["rc=0", "hi"]
    assert (
        sh(claude_lab, GPU, "test -f /home/iso/.local/share/claude-ollama/.claude.json && echo yes").strip()
        == "yes"
    )
    assert sh(claude_lab, GPU, "cd /home/iso/.claude && find . -printf '%p %s %T@\\n' | sort") == before


def test_laptop_uses_the_gpu_hosts_ollama(claude_lab, deploy):
    state = claude_lab.require_state()
    gpu_address = state.host(GPU).address
    gpu = deploy(
        limit=GPU, ollama_host=gpu_address, ollama_allow_lan=True, ollama_allowed_clients=[claude_lab.subnet]
    )
    assert gpu.rc == 0, gpu
    laptop = deploy(limit=LAPTOP, ollama_enabled=False, ollama_base_url=f"http://{gpu_address}:11434")
    assert laptop.rc == 0, laptop
    laptop_settings = json.loads(sh(claude_lab, LAPTOP, f"cat {SETTINGS_JSON}"))
    assert laptop_settings["env"]["ANTHROPIC_BASE_URL"] == f"http://{gpu_address}:11434"
    sh(claude_lab, GPU, f": > {REQUEST_LOG}")
    assert as_user(claude_lab, LAPTOP, "dev", EDIT_TEST.format(claude="claude")).split() == ["rc=0", "hi"]
    clients = {json.loads(line)["client"] for line in sh(claude_lab, GPU, f"cat {REQUEST_LOG}").splitlines()}
    assert clients == {state.host(LAPTOP).address}
    assert sh(claude_lab, LAPTOP, "test -e /usr/local/bin/ollama && echo yes || echo no").strip() == "no"
