"""
Take ollama-claude off the hosts, as far as ``uninstall_scope`` says (claude-config, ollama or everything).

    pyinfra inventories/gpu.py deploys/uninstall.py --dry     # list every change first
    pyinfra inventories/gpu.py deploys/uninstall.py
"""

from ollama_claude.uninstall.deploy import uninstall

uninstall()
