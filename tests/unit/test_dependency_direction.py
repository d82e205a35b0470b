"""Dependencies point one way: product packages never import the lab (the lab and bench import the product).
The console script's entry point (``cli.py``) is the one place that composes both: it offers ``lab up`` too."""

from __future__ import annotations

import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[2] / "src" / "ollama_claude"


def _imported_modules(path: Path) -> set[str]:
    names = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            package = ".".join(path.relative_to(PACKAGE.parent).parts[:-1])
            base = package.rsplit(".", node.level - 1)[0] if node.level else ""
            names.add(f"{base}.{node.module}" if node.level and node.module else node.module or base)
    return names


def test_no_product_module_imports_the_lab():
    offenders = {
        str(path.relative_to(PACKAGE)): sorted(name for name in _imported_modules(path)
                                               if name.startswith("ollama_claude.lab"))
        for path in PACKAGE.rglob("*.py")
        if "lab" not in path.relative_to(PACKAGE).parts and path != PACKAGE / "cli.py"
    }
    assert {path: names for path, names in offenders.items() if names} == {}
