"""
The whole job, per host: Ollama, its models, the LiteLLM proxy (route litellm only), Claude Code for each
user, then the checklist with the edit test.

    pyinfra inventories/gpu.py deploys/ollama_claude.py
    pyinfra inventories/laptops.py deploys/ollama_claude.py
"""

from ollama_claude.claude.deploy import configure_claude_code
from ollama_claude.factcache import prefetch_facts
from ollama_claude.litellm.deploy import configure_litellm
from ollama_claude.models.deploy import manage_models
from ollama_claude.ollama.deploy import install_ollama
from ollama_claude.rollout.deploy import pins_before, record_host_pins
from ollama_claude.verify.deploy import verify_host

prefetch_facts("ollama_claude")  # facts this deploy read last time, in one batched command (README: Fewer round trips)

before = pins_before()  # what the host runs before anything changes (state.json)
install_ollama()
manage_models()
configure_litellm()
configure_claude_code()
record_host_pins(before)
verify_host()
