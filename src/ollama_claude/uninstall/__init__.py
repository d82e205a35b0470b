"""Uninstall: remove exactly what the toolkit put on a host, restoring the user's own settings."""
