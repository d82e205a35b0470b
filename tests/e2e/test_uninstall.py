"""
Uninstall and rollback on real lab hosts: deploy, then take the Claude Code configuration off (the user's own
settings.json comes back identical), then everything (no unit, no binary, no rc block; models stay unless
asked); and an Ollama downgrade pinned in group_data and back, keeping models and settings.
"""

from __future__ import annotations

import json
import re
import shlex
import subprocess
import sys
from pathlib import Path

import pytest

from ollama_claude.lab.release_mirror import serve_release_mirror

pytestmark = [pytest.mark.lab]

CONFIG_HOST, ROLLBACK_HOST = "gpu1", "gpu2"
SETTINGS_JSON = "/home/dev/.claude/settings.json"
MODELS = "/usr/share/ollama/.ollama/models"
USER_FILE = {
    "env": {"EDITOR": "vim", "ANTHROPIC_MODEL": "my-own-model"},
    "model": "opus",
    "permissions": {"allow": ["Bash(make:*)"]},
}
#: The files a config-scope uninstall must leave as they were before the deploy (sha256, or "absent").
MANAGED_FILES = (
    SETTINGS_JSON, "/home/dev/.bashrc", "/home/dev/.profile", "/home/dev/.bash_profile", "/home/dev/.zshenv",
    "/home/dev/.config/ollama-claude", "/home/dev/.local/bin/claude-local",
    "/home/dev/.local/share/claude-ollama/settings.json", "/etc/claude-code/managed-settings.json",
)
CHAIN = """\
from ollama_claude.claude.deploy import configure_claude_code
from ollama_claude.models.deploy import manage_models
from ollama_claude.ollama.deploy import install_ollama

install_ollama()
manage_models()
configure_claude_code()
"""


@pytest.fixture(scope="module")
def chain(lab, pyinfra_run, tmp_path_factory):
    serve_release_mirror(lab)
    path = tmp_path_factory.mktemp("uninstall") / "chain.py"
    path.write_text(CHAIN)
    return lambda host, **data: pyinfra_run(str(path), data=data, hosts=[host])


@pytest.fixture(scope="module")
def uninstall(lab, pyinfra_run):
    return lambda host, **data: pyinfra_run("deploys/uninstall.py", data=data, hosts=[host])


def dry_uninstall(lab, host: str) -> str:
    """`--dry` without -y: pyinfra only detects changes when it is not told to go ahead blindly."""
    argv = [str(Path(sys.executable).parent / "pyinfra"), "--limit", host, "inventories/lab.py",
            "deploys/uninstall.py", "--dry"]
    done = subprocess.run(argv, cwd=Path(__file__).resolve().parents[2], env=lab.pyinfra_env(), text=True,
                          capture_output=True, timeout=300, check=False)
    assert done.returncode == 0, done.stdout + done.stderr
    return done.stdout + done.stderr


def sh(lab, host: str, command: str) -> str:
    result = lab.ssh(host, command, timeout=120)
    assert result.returncode == 0, f"{command}\n{result.stdout}\n{result.stderr}"
    return result.stdout


def snapshot(lab, host: str) -> dict[str, str]:
    """Each managed path's content hash, mode and owner (directories: their listing), or absent."""
    script = " ".join(
        f"p={shlex.quote(path)}; if [ -d $p ]; then echo \"$p dir $(ls -A $p | tr '\\n' ' ')\"; "
        f"elif [ -e $p ]; then echo \"$p $(sha256sum < $p | cut -c1-16) $(stat -c '%a %U' $p)\"; "
        f"else echo \"$p absent\"; fi;"
        for path in MANAGED_FILES
    )
    return dict(line.split(" ", 1) for line in sh(lab, host, script).splitlines())


def test_config_scope_leaves_the_users_files_as_before_the_deploy(lab, chain, uninstall):
    sh(lab, CONFIG_HOST, f"mkdir -p /home/dev/.claude && printf %s {shlex.quote(json.dumps(USER_FILE, indent=1))} "
                         f"> {SETTINGS_JSON} && chown -R dev:dev /home/dev/.claude && chmod 640 {SETTINGS_JSON}")
    before = snapshot(lab, CONFIG_HOST)
    original_text = sh(lab, CONFIG_HOST, f"cat {SETTINGS_JSON}")
    deployed = chain(CONFIG_HOST, claude_managed_settings=True)
    assert deployed.rc == 0, deployed
    after_deploy = snapshot(lab, CONFIG_HOST)
    assert after_deploy != before
    deployed_settings = json.loads(sh(lab, CONFIG_HOST, f"cat {SETTINGS_JSON}"))
    # The user's own ANTHROPIC_MODEL would outrank settings.json model: it goes while we manage the file.
    assert deployed_settings["model"] == "glm-4.7-flash:latest" and "ANTHROPIC_MODEL" not in deployed_settings["env"]

    dry = dry_uninstall(lab, CONFIG_HOST)
    for change in ("dev: our keys out of /home/dev/.claude/settings.json", "dev: ollama-claude block out of ~/.bashrc",
                   "dev: remove /home/dev/.config/ollama-claude/env.sh",
                   "Remove our policy keys from /etc/claude-code/managed-settings.json"):
        assert re.search(rf"{re.escape(change)}\s+1 \({CONFIG_HOST}\)", dry), dry
    assert re.search(r"dev: ollama-claude block out of ~/\.zshenv\s+-\s", dry), dry  # nothing of ours there
    assert snapshot(lab, CONFIG_HOST) == after_deploy  # --dry changed nothing

    run = uninstall(CONFIG_HOST)
    assert run.rc == 0 and run.changes > 0, run
    assert snapshot(lab, CONFIG_HOST) == before
    assert sh(lab, CONFIG_HOST, f"cat {SETTINGS_JSON}") == original_text  # byte for byte, own ANTHROPIC_MODEL
    assert sh(lab, CONFIG_HOST, "ls -A /home/dev/.claude | grep -c ollama-claude.bak || true").strip() == "0"
    assert "0.32.15" in sh(lab, CONFIG_HOST, "curl -fsS 127.0.0.1:11434/api/version")  # the server stays

    again = uninstall(CONFIG_HOST)
    assert again.rc == 0 and again.changes == 0, again


def test_full_uninstall_leaves_no_unit_binary_or_rc_block_and_keeps_models_unless_asked(lab, chain, uninstall):
    assert chain(CONFIG_HOST).rc == 0
    assert sh(lab, CONFIG_HOST, f"ls {MODELS}/manifests")
    run = uninstall(CONFIG_HOST, uninstall_scope="everything")
    assert run.rc == 0, run
    gone = ("/etc/systemd/system/ollama.service", "/etc/systemd/system/ollama.service.d", "/usr/local/bin/ollama",
            "/usr/local/bin/claude", "/usr/local/lib/ollama-claude", "/opt/claude-code",
            "/usr/local/libexec/ollama-claude", "/home/dev/.config/ollama-claude", "/var/lib/ollama-claude")
    assert sh(lab, CONFIG_HOST, " ".join(f"[ -e {p} ] && echo {p};" for p in gone) + " true").split() == []
    assert sh(lab, CONFIG_HOST, "grep -l ollama-claude /home/dev/.bashrc /home/dev/.profile || true").strip() == ""
    assert sh(lab, CONFIG_HOST, "id ollama >/dev/null 2>&1 && echo user || echo none").strip() == "none"
    assert sh(lab, CONFIG_HOST, "systemctl is-active ollama || true").strip() != "active"
    assert sh(lab, CONFIG_HOST, f"ls {MODELS}/manifests")  # models kept

    again = uninstall(CONFIG_HOST, uninstall_scope="everything")
    assert again.rc == 0 and again.changes == 0, again
    removal = uninstall(CONFIG_HOST, uninstall_scope="everything", uninstall_remove_models=True)
    assert removal.rc == 0 and removal.changes == 1, removal
    assert sh(lab, CONFIG_HOST, f"[ -e {MODELS} ] && echo kept || echo gone").strip() == "gone"


def test_pinning_an_older_ollama_switches_back_and_forth_keeping_models_and_settings(lab, chain):
    def state():
        version = json.loads(sh(lab, ROLLBACK_HOST, "curl -fsS 127.0.0.1:11434/api/version"))["version"]
        models = {m["name"] for m in json.loads(sh(lab, ROLLBACK_HOST, "curl -fsS 127.0.0.1:11434/api/tags"))["models"]}
        return version, models, sh(lab, ROLLBACK_HOST, f"sha256sum {SETTINGS_JSON}")

    assert chain(ROLLBACK_HOST, ollama_version="0.32.15").rc == 0
    version, models, settings = state()
    assert version == "0.32.15" and "glm-4.7-flash:latest" in models

    down = chain(ROLLBACK_HOST, ollama_version="0.18.0")
    assert down.rc == 0, down
    assert state() == ("0.18.0", models, settings)
    assert sh(lab, ROLLBACK_HOST, "readlink /usr/local/bin/ollama").strip().endswith("/0.18.0/bin/ollama")

    up = chain(ROLLBACK_HOST, ollama_version="0.32.15")
    assert up.rc == 0, up
    assert state() == ("0.32.15", models, settings)
