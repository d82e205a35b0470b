"""The README's option table, generated from the Settings model so documentation and defaults cannot drift."""

from __future__ import annotations

from .settings import Settings


def _shown(default: object) -> str:
    if default is None:
        return "—"
    return f'`"{default}"`' if isinstance(default, str) else f"`{default!r}`"


def options_table() -> str:
    """Markdown table: option, default, what it does."""
    rows = ["| option | default | what it does |", "|---|---|---|"]
    for name, field in Settings.model_fields.items():
        default = field.get_default(call_default_factory=True)
        rows.append(f"| `{name}` | {_shown(default)} | {field.description} |")
    return "\n".join(rows)


if __name__ == "__main__":
    print(options_table())
