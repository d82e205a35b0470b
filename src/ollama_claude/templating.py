"""The project's Jinja2 environment over templates/: file formats live there, decisions in Python."""

from __future__ import annotations

import shlex
from pathlib import Path
from typing import Any

from jinja2 import Environment, FileSystemLoader, StrictUndefined

#: The package's templates/: in a checkout a link to the repository's templates/, in a wheel (`pip install .`,
#: `pyinfra @local` on a box with the toolkit installed) the files themselves.
TEMPLATES = Path(__file__).resolve().parent / "templates"


def fish_quote(value: object) -> str:
    """Single-quoted for fish, where only ``\\'`` and ``\\\\`` are escapes inside single quotes."""
    return "'" + str(value).replace("\\", "\\\\").replace("'", "\\'") + "'"


_templates = Environment(
    loader=FileSystemLoader(str(TEMPLATES)),
    undefined=StrictUndefined,
    trim_blocks=True,
    lstrip_blocks=True,
    keep_trailing_newline=True,
)
_templates.filters["q"] = lambda value: shlex.quote(str(value))
_templates.filters["fishq"] = fish_quote


def render(name: str, **data: Any) -> str:
    """templates/<name> rendered; undefined values are errors, ``| q`` / ``| fishq`` quote for sh / fish."""
    return _templates.get_template(name).render(**data)
