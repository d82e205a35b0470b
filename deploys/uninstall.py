"""
Take ollama-claude off the hosts, as far as ``uninstall_scope`` says (claude-config, ollama or everything).

    pyinfra inventories/gpu.py deploys/uninstall.py --dry     # list every change first
    pyinfra inventories/gpu.py deploys/uninstall.py
"""

from ollama_claude.factcache import prefetch_facts
from ollama_claude.uninstall.deploy import uninstall

prefetch_facts("uninstall")  # facts this deploy read last time, in one batched command (README: Fewer round trips)

uninstall()
