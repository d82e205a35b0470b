"""Ollama itself: pinned, checksum-verified install and upgrade, service user, unit and overrides, rollback."""
