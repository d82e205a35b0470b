"""The first two steps of deploys/ollama_claude.py: Ollama installed and running, then the declared models."""

from ollama_claude.models.deploy import manage_models
from ollama_claude.ollama.deploy import install_ollama

install_ollama()
manage_models()
