"""The Write tool Claude Code offers, in the two wire formats the stand-in tests speak."""

WRITE_SCHEMA = {
    "type": "object",
    "properties": {"file_path": {"type": "string"}, "content": {"type": "string"}},
    "required": ["file_path", "content"],
}
#: Anthropic Messages API (`/v1/messages`).
ANTHROPIC_WRITE_TOOL = {"name": "Write", "description": "Write a file", "input_schema": WRITE_SCHEMA}
#: Ollama's native chat API (`/api/chat`, LiteLLM's ollama_chat provider).
OLLAMA_WRITE_TOOL = {
    "type": "function",
    "function": {"name": "Write", "description": "Write a file", "parameters": WRITE_SCHEMA},
}
