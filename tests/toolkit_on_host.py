"""
The toolkit installed on a lab host itself, for `pyinfra @local` runs there: its wheelhouse (toolkit_wheelhouse:
no package index on the hosts) uploaded, a venv made by the account that will run pyinfra, deploys/ and
group_data/ beside it as in a checkout.
"""

from __future__ import annotations

import io
import shlex
import subprocess
import tarfile
from pathlib import Path

from pyinfra_cli_run import REPO

WHEELS = "/var/tmp/ollama-claude-wheels"


def upload(lab, host: str, files: dict[str, Path], dest: str, owner: str) -> None:
    """Files from this machine into ``dest`` on the host (tar over the lab's SSH), owned by ``owner``."""
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as archive:
        for name, path in files.items():
            archive.add(path, arcname=name)
    subprocess.run([*lab.ssh_argv(host), f"mkdir -p {dest} && tar -xf - -C {dest} && chown -R {owner}: {dest}"],
                   input=buffer.getvalue(), check=True, capture_output=True, timeout=120)


def as_user(user: str, command: str) -> str:
    """``command`` for root's SSH session to run as ``user`` in a login shell."""
    return command if user == "root" else f"su - {user} -c {shlex.quote(command)}"


def install_toolkit(lab, host: str, user: str, project: str, wheels: Path) -> None:
    """The toolkit from its wheel into ``<project>/.venv`` (made by ``user``), deploys/ and group_data/ beside it."""
    pip = next(wheels.glob("pip-*.whl")).name
    upload(lab, host, {p.name: p for p in wheels.glob("*.whl")}, WHEELS, "root")
    upload(lab, host, {"deploys": REPO / "deploys", "group_data": REPO / "group_data"}, project, user)
    lab.ssh(host, f"chmod -R a+rX {WHEELS}", check=True)
    lab.ssh(host, as_user(user, f"cd {project} && python3 -m venv --without-pip .venv && .venv/bin/python "
                                f"{WHEELS}/{pip}/pip install -q --no-index --find-links {WHEELS} ollama_claude pip"),
            check=True)
