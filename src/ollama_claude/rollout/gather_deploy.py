"""Facts only, for `ollama-claude status` and `rollout`: see ollama_claude.rollout.gather. Changes nothing."""

from ollama_claude.rollout.gather import gather_host

gather_host()
