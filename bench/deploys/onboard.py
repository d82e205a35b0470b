"""Onboarding as the bench measures it: the same end state the naive script reaches (no edit test)."""

from ollama_claude.claude.deploy import configure_claude_code
from ollama_claude.factcache import prefetch_facts
from ollama_claude.models.deploy import manage_models
from ollama_claude.ollama.deploy import install_ollama

# as deploys/ollama_claude.py: the facts this deploy read last run, in one batched command
prefetch_facts("bench_onboard")
install_ollama()
manage_models()
configure_claude_code()
