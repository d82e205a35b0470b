"""
The model the verify step chose for a user when the configured default failed its edit test (a fallback link).

Verify records it in a small file under the user's home; the Claude Code step reads that record on the next
run and keeps the chosen model as the user's default instead of writing the configured one back, so the two
steps never undo each other. When the configured default passes again, verify removes the record.
"""

from __future__ import annotations

from ..settings import Settings

#: Name of the record beside our env files (paths.ENV_DIR), holding one model name.
CHOSEN_MODEL_FILE = "chosen-model"


def parse_record(lines: list[str] | None) -> str | None:
    """The model named in the record file's lines (FileContents), None when there is no record."""
    return next((line.strip() for line in lines or () if line.strip()), None)


def record_for(settings: Settings, model: str | None) -> str | None:
    """
    What the record should hold for a chain winner: nothing when the winner is the configured default, when
    writing the default is off, or when the model is not served by Ollama here (the Claude link needs
    Anthropic's endpoint and a key, which a user's default settings must not carry).
    """
    declared = {ref.full for ref in settings.library_models + settings.cloud_models}
    if not settings.verify_write_default or model is None or model == settings.default_model:
        return None
    return model if model in declared else None


def with_chosen_model(settings: Settings, record: str | None) -> Settings:
    """Settings whose default model (and the roles following it) is the recorded one, when it still applies."""
    chosen = record_for(settings, record)
    if chosen is None:
        return settings
    return Settings.model_validate({**settings.model_dump(), "claude_model": chosen})
