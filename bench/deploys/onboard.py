"""Onboarding as the bench measures it: the same end state the naive script reaches (no edit test)."""

from ollama_claude.claude.deploy import configure_claude_code
from ollama_claude.models.deploy import manage_models
from ollama_claude.ollama.deploy import install_ollama

install_ollama()
manage_models()
configure_claude_code()
