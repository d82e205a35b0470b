# Fleet-wide settings for every host. Every option, its default and what it does: README.md ("Options").
# Values here are the project defaults written out, so a fleet owner sees the pins in one place.

# Pinned releases: bump to upgrade, lower (>= 0.18.0) to roll back; models and user settings are kept.
ollama_version = "0.32.15"
claude_code_version = "2.1.332"  # newest on every platform installed; tested: README "Claude Code versions"

# Tool calls break once Ollama shifts the context (ollama/ollama#13820): 64000, or 128000 with enough memory.
ollama_context_length = 64000

# The fallback chain the verify step walks: local model -> cloud model (needs `ollama signin`) -> Claude.
verify_fallback = ["local", "cloud", "claude"]
