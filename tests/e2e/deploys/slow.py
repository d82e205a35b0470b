"""A deploy that keeps every host busy for a while, so a test can crash a host in the middle of the run."""

from pyinfra.operations import server

server.shell(name="Marker before the long step", commands=["touch /tmp/slow-deploy-started"])
server.shell(name="Long step", commands=["sleep 8"])
server.shell(name="Marker after the long step", commands=["touch /tmp/slow-deploy-finished"])
