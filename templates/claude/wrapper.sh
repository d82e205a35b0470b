#!/bin/sh
# Managed by ollama-claude: Claude Code on Ollama with its own CLAUDE_CONFIG_DIR, so the claude.ai login in
# ~/.claude stays separate. Overwritten on every deploy.
. {{ env_file|q }}
exec {{ claude|q }} "$@"
