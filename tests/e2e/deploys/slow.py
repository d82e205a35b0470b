"""A deploy that keeps every host busy for a while, so a test can crash a host in the middle of the run.

The marker is written by the long step itself: a test that sees it kills the host while that command runs. (Killed
between two commands, while pyinfra opens the next SSH channel, paramiko can raise EOFError, which pyinfra 3.10
does not catch: the whole run stops with an internal exception instead of failing that host.)
"""

from pyinfra.operations import server

server.shell(name="Long step", commands=["touch /tmp/slow-deploy-started && sleep 8"])
server.shell(name="Marker after the long step", commands=["touch /tmp/slow-deploy-finished"])
