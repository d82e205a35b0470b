"""ollama-claude: provision Ollama + Claude Code across a fleet with pyinfra, and prove it with an edit test."""

__version__ = "0.1.0"
