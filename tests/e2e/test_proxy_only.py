"""
The proxy-only topology (`lab up --proxy-only`): the release mirror is fenced off from the hosts (an nftables
table of the lab rejects the mirror port on the bridge) and an authenticating tinyproxy on the lab gateway is the
only way to it. With the proxy settings (user:password@ in the URL) the whole deploy on a bookworm/trixie fleet is
green, its release and Claude Code downloads (and apt's zstd package, from the site's repository, on the trixie host) are in the proxy's log, and the password is in no pyinfra output even
at -vv; without them the host fails naming the download.

Run with OLLAMA_CLAUDE_TEST_LAB=trixie OLLAMA_CLAUDE_TEST_SUBNET=10.213.71.0/24.
"""

from __future__ import annotations

import hashlib
import json
import re
import subprocess
from pathlib import Path

import pytest
from pyinfra_cli_run import PYINFRA, REPO, PyinfraRun

from ollama_claude.lab.proxy import PROXY_PORT, proxied_requests, serve_proxy_only
from ollama_claude.lab.release_mirror import mirror_root, mirror_url
from ollama_claude.ollama.config import DROP_IN_PATH

ALL_PASS = {item: "pass" for item in range(1, 10)}


@pytest.fixture(scope="module")
def lab(mixed_lab):
    """gpu1 on Debian 12, gpu2 on Debian 13: every lab fixture of this module uses that fleet."""
    return mixed_lab


@pytest.fixture(scope="module")
def proxy(lab):
    return serve_proxy_only(lab)


@pytest.fixture(scope="module")
def deploy(lab, proxy, tmp_path_factory):
    def run(*options: str, **data) -> tuple[PyinfraRun, Path]:
        reports = tmp_path_factory.mktemp("verify")
        data = {"verify_report_dir": str(reports), **data}
        argv = [str(PYINFRA), "-y", *options]
        argv += [item for key, value in data.items() for item in ("--data", f"{key}={json.dumps(value)}")]
        done = subprocess.run([*argv, "inventories/lab.py", "deploys/ollama_claude.py"], cwd=REPO,
                              env=lab.pyinfra_env(), text=True, capture_output=True, timeout=900, check=False)
        return PyinfraRun(done.returncode, done.stdout, done.stderr), reports

    return run


def password(proxy: str) -> str:
    return proxy.split("@", 1)[0].rsplit(":", 1)[1]


def site_repository(lab, host: str) -> None:
    """A flat apt repository on the lab mirror holding the host's own zstd package, and the host's apt sources
    pointing only there (a fleet's internal repository; nothing reaches a public archive)."""
    deb = subprocess.run([*lab.ssh_argv(host), "--", "cat /var/cache/apt/archives/zstd_*.deb"],
                         capture_output=True, check=True).stdout
    repository = mirror_root(lab) / "apt"
    repository.mkdir(exist_ok=True)
    version = sh(lab, host, "dpkg-query -W -f '${Version}' zstd").stdout.strip().split(":")[-1]
    name = f"zstd_{version}_{sh(lab, host, 'dpkg --print-architecture').stdout.strip()}.deb"
    (repository / name).write_bytes(deb)
    control = subprocess.run(["dpkg-deb", "-f", str(repository / name)], capture_output=True, text=True,
                             check=True).stdout
    (repository / "Packages").write_text(f"{control.rstrip()}\nFilename: ./{name}\nSize: {len(deb)}\n"
                                         f"SHA256: {hashlib.sha256(deb).hexdigest()}\n\n")
    sources = f"deb [trusted=yes] {mirror_url(lab)}/apt ./"
    assert sh(lab, host, f"rm -f /etc/apt/sources.list.d/* && echo '{sources}' > /etc/apt/sources.list && "
                         "rm -rf /var/lib/apt/lists/*").returncode == 0


def sh(lab, host: str, command: str) -> subprocess.CompletedProcess:
    return lab.ssh(host, command, timeout=60)


def test_hosts_reach_the_mirror_only_through_the_proxy_and_only_with_its_credentials(lab, proxy):
    url = f"{mirror_url(lab)}/npm/"
    direct = sh(lab, "gpu1", f"curl -sS -m 5 -o /dev/null {url}")
    assert direct.returncode == 7 and "Failed to connect" in direct.stderr, direct
    gateway = lab.require_state().gateway.split("/")[0]
    anonymous = sh(lab, "gpu2", f"http_proxy=http://{gateway}:{PROXY_PORT} curl -s -m 5 -o /dev/null -w '%{{http_code}}' {url}")
    assert anonymous.stdout == "407", anonymous
    ours = sh(lab, "gpu2", f"http_proxy='{proxy}' curl -s -m 5 -o /dev/null -w '%{{http_code}}' {url}")
    assert ours.stdout in ("200", "404"), ours  # the mirror answered
    assert ("GET", url) in proxied_requests(lab)


def test_without_the_proxy_setting_the_host_fails_naming_the_download(lab, deploy):
    run, _ = deploy("--limit", "gpu1", http_proxy=None, https_proxy=None)
    assert run.rc != 0 and run.failed_hosts == {"gpu1"}, run
    assert re.search(rf"gpu1: cannot read sha256sum\.txt \({re.escape(mirror_url(lab))}/ollama/releases/download/"
                     r"v0\.32\.15/sha256sum\.txt: curl: \(7\) Failed to connect", run.output), run
    assert "needs https_proxy" in run.output
    assert sh(lab, "gpu1", "[ -e /usr/local/bin/ollama ] || echo absent").stdout.strip() == "absent"


def test_proxy_only_fleet_deploys_green_with_every_download_through_the_proxy(lab, proxy, deploy):
    # gpu2 (trixie) without zstd, its apt sources naming only the site's own repository (served beside the
    # releases, so reachable only through the proxy): the deploy installs zstd with apt, through the proxy
    site_repository(lab, "gpu2")
    gone = sh(lab, "gpu2", "apt-get remove -y -q zstd >/dev/null && apt-get clean && ! command -v zstd")
    assert gone.returncode == 0, gone
    before = len(proxied_requests(lab))
    run, reports = deploy("-vv")  # debug output prints every command: the password must be masked there too
    assert run.rc == 0, run
    records = json.loads((reports / "verify.json").read_text())["records"]
    assert {(r["host"], r["item"]): r["status"] for r in records} == {
        (host, item): "pass" for host in ("gpu1", "gpu2") for item in ALL_PASS}, run
    urls = [url for _, url in proxied_requests(lab)[before:]]
    base = mirror_url(lab)
    for pattern in (rf"{base}/ollama/releases/download/v0\.32\.15/sha256sum\.txt",
                    rf"{base}/ollama/releases/download/v0\.32\.15/ollama-linux-\w+\.tar\.zst",
                    rf"{base}/npm/@anthropic-ai/claude-code-linux-\w+/-/claude-code-linux-\w+-2\.1\.332\.tgz"):
        # one per host: each host downloads for itself
        assert len([u for u in urls if re.fullmatch(pattern, u)]) >= 2, (pattern, urls)
    assert [u for u in urls if re.fullmatch(rf"{base}/apt/(\./)?zstd_[^/]+\.deb", u)], urls
    assert sh(lab, "gpu2", "command -v zstd").stdout.strip() == "/usr/bin/zstd"
    assert password(proxy) not in run.output
    assert "http://***@" in run.output  # the masked form is what -vv shows

    for host in ("gpu1", "gpu2"):
        drop_in = sh(lab, host, f"stat -c %a {DROP_IN_PATH}; systemctl show ollama -p Environment")
        mode, environment = drop_in.stdout.split("\n", 1)
        assert mode == "600", drop_in  # it holds the proxy password
        assert f"HTTPS_PROXY={proxy}" in environment and "NO_PROXY=127.0.0.1,localhost,::1" in environment


def test_second_run_changes_nothing_and_downloads_nothing(lab, deploy):
    before = len(proxied_requests(lab))
    run, _ = deploy()
    assert run.rc == 0 and run.changes == 0, run
    downloads = [url for _, url in proxied_requests(lab)[before:] if url.endswith((".tar.zst", ".tgz"))]
    assert downloads == []


def test_litellm_route_installs_its_wheels_through_the_proxy(lab, proxy, deploy):
    """pip for the LiteLLM route: a wheelhouse on the (fenced) mirror, reached through the proxy only."""
    from ollama_claude.lab.release_mirror import mirror_root
    from ollama_claude.litellm.wheelhouse import build_wheelhouse
    from ollama_claude.settings import Settings

    version = Settings.model_fields["claude_litellm_version"].default
    wheels = mirror_root(lab) / "wheels"
    wheels.mkdir(exist_ok=True)
    link = wheels / f"litellm-{version}"
    if not link.exists():  # resolved for gpu1's Python (bookworm's, the control machine's own)
        link.symlink_to(build_wheelhouse(version, pythons=("/usr/bin/python3",)))
    wheelhouse = f"{mirror_url(lab)}/wheels/litellm-{version}/"
    before = len(proxied_requests(lab))
    run, reports = deploy("--limit", "gpu1", claude_route="litellm", claude_litellm_wheelhouse=wheelhouse,
                          claude_litellm_master_key="sk-lab-proxy-route")
    assert run.rc == 0, run
    edit = next(r for r in json.loads((reports / "verify.json").read_text())["records"] if r["item"] == 7)
    assert edit["status"] == "pass", edit
    fetched = [url for _, url in proxied_requests(lab)[before:] if url.startswith(wheelhouse)]
    assert any(url.rsplit("/", 1)[1].startswith("litellm-1") and url.endswith(".whl") for url in fetched), fetched
    assert password(proxy) not in run.output
