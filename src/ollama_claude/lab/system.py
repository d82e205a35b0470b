"""Running host tools with errors a user can act on, and the preconditions the lab needs."""

from __future__ import annotations

import os
import shutil
import subprocess
import time
import urllib.error
import urllib.request

from .errors import LabError

# tool -> Debian package that provides it (the Makefile's apt list is this set plus openssh-client's ssh).
REQUIRED_TOOLS = {
    "debootstrap": "debootstrap",
    "systemd-nspawn": "systemd-container",
    "ip": "iproute2",
    "ssh": "openssh-client",
    "ssh-keygen": "openssh-client",
    "mount": "mount",
}


def require_lab_host() -> None:
    """Fail early, with the fix, when this machine cannot run a lab."""
    if os.geteuid() != 0:
        raise LabError("the lab needs root (network namespaces, bridges, systemd-nspawn): run it with sudo")
    missing = sorted({package for tool, package in REQUIRED_TOOLS.items() if shutil.which(tool) is None})
    if missing:
        raise LabError(f"missing tools for the lab: apt-get install {' '.join(missing)}")


def run(argv: list[str], input: str | None = None) -> str:
    """Run a command; on failure raise LabError with the command and its stderr."""
    result = subprocess.run(argv, check=False, input=input, capture_output=True, text=True)
    if result.returncode != 0:
        raise LabError(f"`{' '.join(argv)}` failed ({result.returncode}): {result.stderr.strip()}")
    return result.stdout


def run_quietly(argv: list[str]) -> bool:
    """Run a teardown step that may find nothing to remove; report whether it succeeded."""
    return subprocess.run(argv, check=False, capture_output=True).returncode == 0


def wait_until_serving(url: str, timeout: float = 20) -> None:
    """Return once url answers HTTP at all (any status); raise the last connection error after timeout."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            urllib.request.urlopen(url, timeout=2).close()
            return
        except urllib.error.HTTPError:  # any HTTP answer means it is serving
            return
        except OSError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.2)
