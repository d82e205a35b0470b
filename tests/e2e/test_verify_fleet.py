"""
deploys/verify.py on a provisioned 2-host lab: all green, zero changes, report files that parse; then one broken
thing per case and exactly that item fails (on that host only); the fallback chain picks the cloud model.

Needs the integrator's fixtures (tests/e2e/conftest.py): ``lab`` and ``pyinfra_run(deploy, data=..., hosts=...)``.
Run with OLLAMA_CLAUDE_TEST_LAB=tver OLLAMA_CLAUDE_TEST_SUBNET=10.213.14.0/24.
"""

from __future__ import annotations

import contextlib
import json
from pathlib import Path

from junitparser import JUnitXml

BROKEN, GOOD = "gpu2", "gpu1"
USER = "dev"
DROPIN = "/etc/systemd/system/ollama.service.d/zz-verify-test.conf"
SERVICE_HOME = "/usr/share/ollama/.ollama"
SETTINGS_JSON = f"/home/{USER}/.claude/settings.json"
CHOSEN_RECORD = f"/home/{USER}/.config/ollama-claude/chosen-model"


def verify(pyinfra_run, report_dir: Path, **data):
    run = pyinfra_run("deploys/verify.py", data={"verify_report_dir": str(report_dir), **data})
    report = json.loads((report_dir / "verify.json").read_text())
    return run, report


def statuses(report, host: str, user: str | None = USER) -> dict[int, str]:
    return {r["item"]: r["status"] for r in report["records"] if r["host"] == host and r["user"] == user}


def failing(report, host: str) -> list[int]:
    return sorted(item for item, status in statuses(report, host).items() if status == "fail")


def broken_records(report) -> list[str]:
    """The failing host's items, readable in an assertion message."""
    return [f"{r['item']} {r['status']}: {r['message']}" for r in report["records"] if r["host"] == BROKEN]


def message(report, host: str, item: int) -> str:
    return next(r["message"] for r in report["records"] if r["host"] == host and r["item"] == item)


@contextlib.contextmanager
def service_environment(lab, host: str, **env: str):
    """A drop-in that overrides the Ollama service's environment, removed (and the service restarted) after."""
    lines = "".join(f'Environment="{key}={value}"\n' for key, value in env.items())
    lab.ssh(host, f"printf '[Service]\\n{lines}' > {DROPIN} && systemctl daemon-reload && "
                  "systemctl restart ollama && sleep 1", check=True)
    try:
        yield
    finally:
        lab.ssh(host, f"rm -f {DROPIN} && systemctl daemon-reload && systemctl restart ollama && sleep 1",
                check=True)


@contextlib.contextmanager
def user_settings_env(lab, host: str, **env: str):
    """Edit the user's settings.json env in place (as a person would), restored afterwards."""
    path = f"/home/{USER}/.claude/settings.json"
    edit = ("import json,sys; p=sys.argv[1]; d=json.load(open(p)); d['env'].update(json.loads(sys.argv[2])); "
            "json.dump(d, open(p, 'w'))")
    lab.ssh(host, f"cp -p {path} {path}.verify-test && python3 -c \"{edit}\" {path} '{json.dumps(env)}'",
            check=True)
    try:
        yield
    finally:
        lab.ssh(host, f"mv {path}.verify-test {path}", check=True)


def test_all_green_zero_changes_and_reports_parse(provisioned, pyinfra_run, tmp_path):
    run, report = verify(pyinfra_run, tmp_path)
    assert run.rc == 0, run
    assert run.changes == 0, run
    for host in (GOOD, BROKEN):
        assert statuses(report, host) == dict.fromkeys(range(1, 10), "pass"), report
    assert {h["model"] for h in report["hosts"]} == {"glm-4.7-flash:latest"}
    xml = JUnitXml.fromfile(str(tmp_path / "verify-junit.xml"))
    assert sum(suite.tests for suite in xml) == 18 and sum(suite.failures for suite in xml) == 0
    assert "verify: 2 passed, 0 failed, 0 unreachable" in run.output


def test_context_4096_fails_item_2_on_that_host_only(provisioned, lab, pyinfra_run, tmp_path):
    with service_environment(lab, BROKEN, OLLAMA_CONTEXT_LENGTH="4096"):
        run, report = verify(pyinfra_run, tmp_path)
    assert run.rc != 0, run
    assert failing(report, BROKEN) == [2] and failing(report, GOOD) == []
    assert "OLLAMA_CONTEXT_LENGTH=4096 < 64000" in message(report, BROKEN, 2)


def test_model_without_tools_fails_item_3(provisioned, lab, pyinfra_run, tmp_path):
    """qwen3 republished without tools (a stand-in catalogue revision), pulled and declared on the host."""
    catalogue = '{"models": {"qwen3:latest": {"capabilities": ["completion"], "revision": 99}}}'
    lab.ssh(BROKEN, f"echo '{catalogue}' > /etc/ollama-verify-catalogue.json", check=True)
    with service_environment(lab, BROKEN, OLLAMA_CONTEXT_LENGTH="64000",
                             OLLAMA_STANDIN_CATALOGUE="/etc/ollama-verify-catalogue.json"):
        lab.ssh(BROKEN, "ollama pull qwen3", check=True)
        run, report = verify(pyinfra_run, tmp_path, ollama_models=["glm-4.7-flash", "qwen3"])
        lab.ssh(BROKEN, "ollama rm qwen3", check=True)
    # qwen3 is trained for 40960 tokens, so item 2 fails for it too: Ollama caps its context there
    assert run.rc != 0 and failing(report, BROKEN) == [2, 3], report
    assert "qwen3:latest lacks the tools capability" in message(report, BROKEN, 3)


def test_api_key_instead_of_auth_token_fails_item_4(provisioned, lab, pyinfra_run, tmp_path):
    with user_settings_env(lab, BROKEN, ANTHROPIC_API_KEY="ollama", ANTHROPIC_AUTH_TOKEN=""):
        _, report = verify(pyinfra_run, tmp_path)
    assert failing(report, BROKEN) == [4]
    assert "ANTHROPIC_API_KEY is set" in message(report, BROKEN, 4)


def test_wrong_base_url_fails_item_4_and_blocks_the_edit_test(provisioned, lab, pyinfra_run, tmp_path):
    with user_settings_env(lab, BROKEN, ANTHROPIC_BASE_URL="http://127.0.0.1:1"):
        _, report = verify(pyinfra_run, tmp_path)
    assert failing(report, BROKEN) == [4] and statuses(report, BROKEN)[7] == "skip"
    assert "http://127.0.0.1:1 does not answer" in message(report, BROKEN, 4)


def test_claude_code_missing_fails_item_9(provisioned, lab, pyinfra_run, tmp_path):
    claude = lab.ssh(BROKEN, f"runuser -l {USER} -c 'command -v claude'", check=True).stdout.strip()
    lab.ssh(BROKEN, f"mv {claude} {claude}.verify-test", check=True)
    try:
        _, report = verify(pyinfra_run, tmp_path)
    finally:
        lab.ssh(BROKEN, f"mv {claude}.verify-test {claude}", check=True)
    assert failing(report, BROKEN) == [9] and statuses(report, BROKEN)[7] == "skip"
    assert "Claude Code missing" in message(report, BROKEN, 9)


def test_edit_test_as_root_fails_item_7(provisioned, lab, pyinfra_run, tmp_path):
    """
    A second name for uid 0, configured by the deploy like any user (in a home of its own, removed after):
    every other item passes, and Claude Code refuses its headless flag as root.
    """
    lab.ssh(BROKEN, "useradd -o -u 0 -g 0 -m -d /home/toor -s /bin/bash toor", check=True)
    try:
        run = pyinfra_run("deploys/ollama_claude.py", data={"claude_users": ["toor"],
                                                             "verify_report_dir": str(tmp_path)}, hosts=[BROKEN])
        report = json.loads((tmp_path / "verify.json").read_text())
    finally:
        # userdel refuses: uid 0 always has processes running (pid 1); drop the alias lines instead.
        lab.ssh(BROKEN, "sed -i '/^toor:/d' /etc/passwd /etc/shadow && rm -rf /home/toor", check=True)
    assert run.rc != 0, run
    failed = [item for item, status in statuses(report, BROKEN, "toor").items() if status == "fail"]
    assert failed == [7] and "root/sudo privileges" in message(report, BROKEN, 7), broken_records(report)


def test_local_broken_and_cloud_signed_in_picks_the_cloud_model(provisioned, lab, pyinfra_run, tmp_path):
    # Declared on both hosts, so both must reach ollama.com (from 0.18.0 /api/show of a cloud model is proxied
    # there) and have it; the lab's ollama.com is unreachable unless a host is told it is signed in.
    for host in (GOOD, BROKEN):
        lab.ssh(host, f"touch {SERVICE_HOME}/standin-signed-in && ollama pull glm-5.2:cloud", check=True)
    try:
        with service_environment(lab, BROKEN, OLLAMA_CONTEXT_LENGTH="4096"):
            run, report = verify(pyinfra_run, tmp_path, ollama_cloud_models=["glm-5.2:cloud"])
    finally:
        for host in (GOOD, BROKEN):
            lab.ssh(host, f"rm -f {SERVICE_HOME}/standin-signed-in", check=True)
    line = next(h for h in report["hosts"] if h["host"] == BROKEN)
    assert line["link"] == "cloud" and line["model"] == "glm-5.2:cloud", broken_records(report)
    assert statuses(report, BROKEN)[2] == "warn" and line["status"] == "pass"
    assert run.rc == 0, run


def test_both_broken_without_credential_fails_with_the_chains_reasons(provisioned, lab, pyinfra_run, tmp_path):
    lab.ssh(BROKEN, "ollama pull glm-5.2:cloud", check=True)
    lab.ssh(BROKEN, "ollama rm glm-4.7-flash", check=True)
    try:
        run, report = verify(pyinfra_run, tmp_path, ollama_cloud_models=["glm-5.2:cloud"],
                             verify_allow_anthropic=True)
    finally:
        lab.ssh(BROKEN, "ollama pull glm-4.7-flash", check=True)
    assert run.rc != 0
    edit = message(report, BROKEN, 7)
    assert "local: glm-4.7-flash:latest is not on the server" in edit
    assert "cloud: ollama.com unreachable from this host's Ollama server" in edit and "claude: no anthropic_api_key for dev" in edit


def default_model(lab, host: str) -> tuple[str, str, str]:
    """
    The user's default as Claude Code reads it: settings.json ``model`` and the role models following it (the
    main model is not in env: ANTHROPIC_MODEL would outrank ``model``, and the env file carries none of it).
    """
    data = json.loads(lab.ssh(host, f"cat {SETTINGS_JSON}", check=True).stdout)
    assert "ANTHROPIC_MODEL" not in data["env"]
    return data["model"], data["env"]["ANTHROPIC_DEFAULT_SONNET_MODEL"], data["env"]["CLAUDE_CODE_SUBAGENT_MODEL"]


def test_deploy_writes_the_chosen_cloud_model_as_default_and_reruns_change_nothing(
    provisioned, lab, pyinfra_run, tmp_path
):
    """
    Local broken + cloud signed in: the deploy makes the cloud model the user's default (recorded, so the
    Claude Code step keeps it); once the local model works again the record goes and the default comes back.
    """
    deploy = {"ollama_cloud_models": ["glm-5.2:cloud"], "verify_report_dir": str(tmp_path)}
    for host in (GOOD, BROKEN):  # the models step needs the sign-in wherever a cloud model is declared
        lab.ssh(host, f"touch {SERVICE_HOME}/standin-signed-in", check=True)
    try:
        with service_environment(lab, BROKEN, OLLAMA_CONTEXT_LENGTH="4096"):
            chose = pyinfra_run("deploys/ollama_claude.py", data=deploy)
            chosen = default_model(lab, BROKEN)
            record = lab.ssh(BROKEN, f"stat -c %U {CHOSEN_RECORD} && cat {CHOSEN_RECORD}", check=True).stdout
            kept = pyinfra_run("deploys/ollama_claude.py", data=deploy)
        restored = pyinfra_run("deploys/ollama_claude.py", data=deploy)
        default = default_model(lab, BROKEN)
        settled = pyinfra_run("deploys/ollama_claude.py", data=deploy)
    finally:
        for host in (GOOD, BROKEN):
            lab.ssh(host, f"rm -f {SERVICE_HOME}/standin-signed-in {CHOSEN_RECORD}", check=True)
    assert chose.rc == 0, chose
    assert chosen == ("glm-5.2:cloud",) * 3 and record.split() == [USER, "glm-5.2:cloud"]
    assert default_model(lab, GOOD) == ("glm-4.7-flash:latest",) * 3
    assert kept.rc == 0 and kept.changes == 0, kept
    assert restored.rc == 0 and default == ("glm-4.7-flash:latest",) * 3, restored
    assert lab.ssh(BROKEN, f"test -e {CHOSEN_RECORD}").returncode != 0
    assert settled.rc == 0 and settled.changes == 0, settled
