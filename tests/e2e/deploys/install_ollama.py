"""Only the Ollama concern of the deploy, so its e2e tests measure install/upgrade/rollback alone."""

from ollama_claude.ollama.deploy import install_ollama

install_ollama()
