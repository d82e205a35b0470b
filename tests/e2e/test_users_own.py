"""
Never break what users own: a user's override.conf (what `systemctl edit ollama` writes) and a ~/.bashrc that is a
symlink into a dotfiles repository survive two deploys and an uninstall; an override.conf an earlier version of
this toolkit wrote is migrated into our own drop-in.

Run with OLLAMA_CLAUDE_TEST_LAB=fleet OLLAMA_CLAUDE_TEST_SUBNET=10.213.41.0/24.
"""

from __future__ import annotations

import pytest

from ollama_claude.lab.release_mirror import serve_release_mirror
from ollama_claude.ollama.config import DROP_IN_PATH, LEGACY_DROP_IN_PATH

USERS_HOST, MIGRATED_HOST = "gpu1", "gpu2"
HOME = "/home/dev"
RC, TARGET = f"{HOME}/.bashrc", f"{HOME}/dotfiles/bash/.bashrc"
USERS_OVERRIDE = '[Service]\nEnvironment="OLLAMA_ORIGINS=http://notebook.lab" "OLLAMA_NUM_PARALLEL=3"\n'
OLD_OURS = ("# Managed by ollama-claude: change group_data and re-run the deploy instead of editing this file.\n"
            '[Service]\nEnvironment="OLLAMA_HOST=127.0.0.1:11434"\nEnvironment="OLLAMA_CONTEXT_LENGTH=64000"\n'
            'Environment="OLLAMA_KEEP_ALIVE=30m"\n')
BEGIN = "# BEGIN ollama-claude: Claude Code on Ollama"


def on(lab, host: str, command: str) -> str:
    return lab.ssh(host, command, check=True).stdout.strip()


def service_env(lab, host: str) -> str:
    return on(lab, host, "systemctl show ollama.service -p Environment --value")


@pytest.fixture(scope="module")
def prepared(lab):
    """The user's things before the first deploy: their override.conf and a stow-style ~/.bashrc link."""
    serve_release_mirror(lab)
    on(lab, USERS_HOST, f"mkdir -p /etc/systemd/system/ollama.service.d && printf '%s' '{USERS_OVERRIDE}' > "
                        f"{LEGACY_DROP_IN_PATH}")
    on(lab, USERS_HOST, f"su dev -c 'mkdir -p {HOME}/dotfiles/bash && cp {RC} {TARGET} && "
                        f"echo \"alias ll=\\\"ls -l\\\"\" >> {TARGET} && ln -sfn dotfiles/bash/.bashrc {RC}'")
    on(lab, MIGRATED_HOST, f"mkdir -p /etc/systemd/system/ollama.service.d && printf '%s' '{OLD_OURS}' > "
                           f"{LEGACY_DROP_IN_PATH}")
    return on(lab, USERS_HOST, f"sha256sum < {LEGACY_DROP_IN_PATH}")


def test_two_deploys_keep_the_users_settings_and_dotfiles_link(lab, pyinfra_run, prepared):
    for _ in range(2):
        run = pyinfra_run("deploys/ollama_claude.py")
        assert run.rc == 0, run
    assert on(lab, USERS_HOST, f"sha256sum < {LEGACY_DROP_IN_PATH}") == prepared
    env = service_env(lab, USERS_HOST)
    for setting in ("OLLAMA_ORIGINS=http://notebook.lab", "OLLAMA_NUM_PARALLEL=3", "OLLAMA_CONTEXT_LENGTH=64000"):
        assert setting in env, env
    assert on(lab, USERS_HOST, f"readlink {RC}") == "dotfiles/bash/.bashrc"
    target = on(lab, USERS_HOST, f"cat {TARGET}")
    assert target.count(BEGIN) == 1 and 'alias ll="ls -l"' in target
    assert on(lab, USERS_HOST, f"stat -c %U {TARGET}") == "dev"
    backups = on(lab, USERS_HOST, f"ls {RC}.*.ollama-claude.bak").split()
    assert len(backups) == 1 and BEGIN not in on(lab, USERS_HOST, f"cat {backups[0]}")
    # The drop-in an earlier version wrote is gone once ours holds the settings.
    assert on(lab, MIGRATED_HOST, f"ls {LEGACY_DROP_IN_PATH} 2>/dev/null || echo gone") == "gone"
    assert "OLLAMA_CONTEXT_LENGTH=64000" in on(lab, MIGRATED_HOST, f"cat {DROP_IN_PATH}")


def test_user_setting_a_variable_we_manage_is_told_group_data_wins(lab, pyinfra_run, prepared):
    on(lab, USERS_HOST, f"printf '%s' '{USERS_OVERRIDE}Environment=OLLAMA_CONTEXT_LENGTH=4096\n' > "
                        f"{LEGACY_DROP_IN_PATH} && systemctl daemon-reload")
    run = pyinfra_run("deploys/ollama_claude.py", hosts=[USERS_HOST])
    assert run.rc == 0, run
    assert f"{LEGACY_DROP_IN_PATH} sets OLLAMA_CONTEXT_LENGTH, which ollama-claude manages" in run.output
    assert "OLLAMA_CONTEXT_LENGTH=64000" in service_env(lab, USERS_HOST)
    on(lab, USERS_HOST, f"printf '%s' '{USERS_OVERRIDE}' > {LEGACY_DROP_IN_PATH} && systemctl daemon-reload")


def test_uninstall_leaves_the_users_files(lab, pyinfra_run, prepared):
    run = pyinfra_run("deploys/uninstall.py", data={"uninstall_scope": "everything"})
    assert run.rc == 0, run
    assert on(lab, USERS_HOST, f"sha256sum < {LEGACY_DROP_IN_PATH}") == prepared
    assert on(lab, USERS_HOST, f"ls {DROP_IN_PATH} 2>/dev/null || echo gone") == "gone"
    assert on(lab, USERS_HOST, f"readlink {RC}") == "dotfiles/bash/.bashrc"
    target = on(lab, USERS_HOST, f"cat {TARGET}")
    assert BEGIN not in target and 'alias ll="ls -l"' in target
    again = pyinfra_run("deploys/uninstall.py", data={"uninstall_scope": "everything"})
    assert again.rc == 0 and again.changes == 0, again
