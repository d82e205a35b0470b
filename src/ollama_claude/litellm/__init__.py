"""The optional LiteLLM proxy route: Claude Code -> LiteLLM on loopback -> Ollama's native /api/chat."""
