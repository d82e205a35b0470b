"""
Checklist only: prove every host and user of the inventory works, change nothing (but the host's record of the
result, /var/lib/ollama-claude/last-verify.json, when it differs).

    pyinfra inventories/gpu.py deploys/verify.py
"""

from ollama_claude.factcache import prefetch_facts
from ollama_claude.verify.deploy import verify_host

prefetch_facts("verify")  # facts this deploy read last time, in one batched command (README: Fewer round trips)

verify_host(write_default=False)
