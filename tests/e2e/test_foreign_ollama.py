"""
An Ollama that is not ours: a server a user started on the Ollama port (no ollama.service) fails that host before
anything changes, naming what holds the port and the two ways out; once it is stopped, the deploy goes through.

Run with OLLAMA_CLAUDE_TEST_LAB=fleet OLLAMA_CLAUDE_TEST_SUBNET=10.213.41.0/24.
"""

from __future__ import annotations

import base64

from ollama_claude.lab.release_mirror import serve_release_mirror

HOST = "gpu1"
#: A stand-in for a user's own `ollama serve`: answers /api/version, runs as dev outside any service unit.
FOREIGN = ("import http.server as h\n"
           "class A(h.BaseHTTPRequestHandler):\n"
           "    def do_GET(self):\n"
           "        self.send_response(200); self.end_headers(); self.wfile.write(b'{\"version\":\"0.9.0\"}')\n"
           "h.HTTPServer(('127.0.0.1', 11434), A).serve_forever()\n")
#: What a deploy writes first; none of it may exist after the refused run.
WRITTEN = ("/usr/local/lib/ollama-claude", "/usr/local/bin/ollama", "/etc/systemd/system/ollama.service",
           "/etc/systemd/system/ollama.service.d", "/home/dev/.claude", "/home/dev/.config/ollama-claude")


def on(lab, command: str, check: bool = True) -> str:
    return lab.ssh(HOST, command, check=check).stdout.strip()


def test_foreign_server_on_the_port_fails_the_host_and_changes_nothing(lab, pyinfra_run):
    serve_release_mirror(lab)
    script = base64.b64encode(FOREIGN.encode()).decode()
    on(lab, f"echo {script} | base64 -d > /tmp/foreign.py && "
            "su dev -c 'setsid nohup python3 /tmp/foreign.py >/dev/null 2>&1 < /dev/null &' && "
            "for i in $(seq 50); do curl -fs http://127.0.0.1:11434/api/version && break; sleep 0.1; done")
    pid = on(lab, "pgrep -u dev -f foreign.py")
    before = on(lab, "find / -xdev -newer /tmp/foreign.py -type f -not -path '/proc/*' -not -path '/var/log/*' "
                     "-not -path '/run/*' -not -path '/tmp/*' -not -path '/var/lib/systemd/*' 2>/dev/null | sort")

    run = pyinfra_run("deploys/ollama_claude.py", hosts=[HOST])
    assert run.rc != 0, run
    assert f"{HOST}: port 11434 is already held by python3 (pid {pid}" in run.output, run
    assert "ollama_enabled = False" in run.output and "ollama_base_url" in run.output
    assert on(lab, f"ls -d {' '.join(WRITTEN)} 2>/dev/null", check=False) == ""
    after = on(lab, "find / -xdev -newer /tmp/foreign.py -type f -not -path '/proc/*' -not -path '/var/log/*' "
                    "-not -path '/run/*' -not -path '/tmp/*' -not -path '/var/lib/systemd/*' 2>/dev/null | sort")
    assert after == before
    assert on(lab, "pgrep -u dev -f foreign.py") == pid  # left running: it is the user's
    # No restart loop: nothing of ours was started.
    assert on(lab, "systemctl is-active ollama.service", check=False) in ("inactive", "unknown")

    on(lab, f"kill {pid}")
    again = pyinfra_run("deploys/ollama_claude.py", hosts=[HOST])
    assert again.rc == 0, again
    assert "port 11434 is already held" not in again.output
