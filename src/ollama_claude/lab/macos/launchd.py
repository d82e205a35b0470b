"""launchd and Ollama.app on the lab's Mac-shaped host (a lab part): what goes into the Mac root, and the lab's
controls for a test (who is logged in at the GUI, an installed Ollama.app).

The model itself is bin/launchctl (client and the root daemon `lab-launchd.service`, see its header) and
app.py (Ollama.app's program, shipped in the lab's Ollama-darwin.zip). Runtime state lives in /run/lab-launchd
(gone after a reboot: nothing runs until a login), persistent state in /var/db/lab-launchd.
"""

from __future__ import annotations

import os
import shlex
import tempfile
from pathlib import Path

from ..errors import LabError

RUN_DIR = "/run/lab-launchd"
DB_DIR = "/var/db/lab-launchd"
CONSOLE_USER_FILE = f"{RUN_DIR}/console-user"
APP_PATH = "/Applications/Ollama.app"
LOGIN_ITEM_PLIST = "Contents/Library/LaunchAgents/com.ollama.ollama.plist"
ADMIN_GID = 80

LAUNCHD_UNIT = """[Unit]
Description=launchd (ollama-claude lab model: launchctl's daemon)
After=local-fs.target

[Service]
ExecStart=/usr/bin/python3 /usr/bin/launchctl _lab-launchd-serve
Restart=always

[Install]
WantedBy=multi-user.target
"""

#: An SSH login opens a session: launchd loads the user's Background agents into user/<uid>.
PAM_HOOK = "session optional pam_exec.so quiet /usr/bin/launchctl _lab-session\n"


def customise(root: Path) -> None:
    """Make a Mac root's launchd: the daemon unit (enabled), the directories macOS has, the SSH session hook.
    bin/launchctl itself is copied to /usr/bin with the other shims (userland.customise_macos)."""
    root = Path(root)
    unit = root / "etc/systemd/system/lab-launchd.service"
    unit.parent.mkdir(parents=True, exist_ok=True)
    unit.write_text(LAUNCHD_UNIT)
    wants = root / "etc/systemd/system/multi-user.target.wants"
    wants.mkdir(parents=True, exist_ok=True)
    link = wants / "lab-launchd.service"
    link.unlink(missing_ok=True)
    link.symlink_to("/etc/systemd/system/lab-launchd.service")
    for path, mode in (
        ("var/db/lab-launchd", 0o755),
        ("Library/LaunchAgents", 0o755),
        ("Library/LaunchDaemons", 0o755),
        ("var/folders", 0o755),
        ("var/folders/zz", 0o755),
    ):
        (root / path).mkdir(parents=True, exist_ok=True)
        (root / path).chmod(mode)
    applications = root / "Applications"
    applications.mkdir(exist_ok=True)
    applications.chmod(0o775)
    os.chown(applications, 0, ADMIN_GID)
    pam = root / "etc/pam.d/sshd"
    if pam.is_file() and PAM_HOOK not in pam.read_text():
        with open(pam, "a") as handle:
            handle.write("# ollama-claude lab: launchd's user session (user/<uid>) at SSH login\n" + PAM_HOOK)


# ----------------------------------------------------------------------------------------------- lab controls


def _run(lab, host: str, command: str, timeout: float = 60) -> str:
    result = lab.ssh(host, command, timeout=timeout)
    if result.returncode != 0:
        raise LabError(f"{host}: `{command}` failed ({result.returncode}): {result.stderr.strip()}")
    return result.stdout


def console_login(lab, host: str, user: str) -> str:
    """`user` logs in at the GUI of a Mac-shaped host (another console user is logged out first): gui/<uid>
    appears and launchd loads their Aqua agents and login items (and Background agents into user/<uid>).
    Returns launchctl's log of what it loaded."""
    result = lab.ssh(host, f"launchctl _lab-console-login {shlex.quote(user)}", timeout=60)
    if result.returncode != 0:
        raise LabError(f"{host}: console login of {user} failed ({result.returncode}): {result.stderr.strip()}")
    return result.stderr


def console_logout(lab, host: str) -> None:
    """The console user logs out (back to the login window): gui/<uid> and its jobs go away."""
    _run(lab, host, "launchctl _lab-console-logout")


def console_user(lab, host: str) -> str | None:
    result = lab.ssh(host, f"cat {CONSOLE_USER_FILE} 2>/dev/null")
    return result.stdout.strip() or None


def install_app(lab, host: str, user: str, version: str, register_login_item: bool = True) -> str:
    """Put Ollama.app of `version` (the lab's Ollama-darwin.zip) into /Applications, owned by `user` as a
    drag-install leaves it, and register its login item for `user` as the app's first run does
    (SMAppService, app_darwin.m@v0.32.15:372-405). It starts at that user's next console login."""
    from ..releases import darwin_zip

    state = lab.require_state()
    root = Path(state.host(host).root)
    with tempfile.NamedTemporaryFile(dir=root / "var" / "tmp", suffix=".zip", delete=False) as handle:
        handle.write(darwin_zip(version))
    inside = f"/var/tmp/{Path(handle.name).name}"  # the container mounts its own /tmp
    quoted = shlex.quote(user)
    commands = [
        f"rm -rf {APP_PATH}",
        f"unzip -q {inside} -d /Applications",
        f"rm -f {inside}",
        f"chown -R {quoted}:{ADMIN_GID} {APP_PATH}",
    ]
    if register_login_item:
        commands.append(
            f"launchctl _lab-register-login-item $(id -u {quoted}) {APP_PATH} {APP_PATH}/{LOGIN_ITEM_PLIST}"
        )
    _run(lab, host, " && ".join(commands))
    return APP_PATH
