"""
The smallest real deploy: proves the path from pyinfra over SSH to a host (a file, a systemd unit), and that a
second run changes nothing.

    pyinfra inventories/lab.py deploys/hello.py
"""

from io import StringIO

from pyinfra.operations import files, systemd

HELLO_UNIT = """\
[Unit]
Description=ollama-claude hello: reads the hello file once per boot

[Service]
Type=oneshot
RemainAfterExit=yes
ExecStart=/bin/cat /etc/ollama-claude-hello

[Install]
WantedBy=multi-user.target
"""

files.put(
    name="Hello file, readable by group dev only",
    src=StringIO("hello from ollama-claude\n"),
    dest="/etc/ollama-claude-hello",
    user="root",
    group="dev",
    mode="640",
)

unit = files.put(
    name="Hello unit",
    src=StringIO(HELLO_UNIT),
    dest="/etc/systemd/system/ollama-claude-hello.service",
    mode="644",
)

systemd.daemon_reload(name="Reload systemd for a changed hello unit", _if=unit.did_change)

systemd.service(
    name="Hello unit enabled and active",
    service="ollama-claude-hello.service",
    running=True,
    enabled=True,
)
