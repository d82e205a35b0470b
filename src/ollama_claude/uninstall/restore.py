"""
Which settings.json keys are ours, and the user's file as it was before our first deploy: pure functions, so
the restore rules are tested without a host. A key the user had before comes back with its old value, a key
we added goes, a key the user added since stays.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass
from typing import Any

from ..claude.settings_merge import CONFLICTING_ENV, machine_settings, user_settings
from ..settings import Settings

Path = tuple[str, ...]


def key_paths(tree: dict[str, Any], prefix: Path = ()) -> list[Path]:
    """Every leaf of a nested dict as a key path: {"env": {"A": 1}} -> [("env", "A")]."""
    paths: list[Path] = []
    for key, value in tree.items():
        if isinstance(value, dict):
            paths += key_paths(value, (*prefix, key))
        else:
            paths.append((*prefix, key))
    return paths


@dataclass(frozen=True)
class ManagedKeys:
    """``written``: every key a deploy may write; ``always``: the keys every deploy writes; ``dropped``: removed."""

    written: tuple[Path, ...]
    always: tuple[Path, ...]
    dropped: tuple[Path, ...] = tuple(("env", key) for key in CONFLICTING_ENV)


def _managed_keys(shape) -> ManagedKeys:
    """The keys ``shape`` (user_settings or machine_settings) writes with every option on, and with all off."""
    widest = Settings(claude_telemetry_off=True, claude_max_output_tokens=1)
    narrowest = Settings(claude_telemetry_off=False)
    return ManagedKeys(written=tuple(key_paths(shape(widest))), always=tuple(key_paths(shape(narrowest))))


USER_KEYS = _managed_keys(user_settings)
MACHINE_KEYS = _managed_keys(machine_settings)


def _has(tree: dict[str, Any], path: Path) -> bool:
    for key in path:
        if not isinstance(tree, dict) or key not in tree:
            return False
        tree = tree[key]
    return True


def _get(tree: dict[str, Any], path: Path) -> Any:
    for key in path:
        tree = tree[key]
    return tree


def _set(tree: dict[str, Any], path: Path, value: Any) -> None:
    for key in path[:-1]:
        if not isinstance(tree.get(key), dict):
            tree[key] = {}
        tree = tree[key]
    tree[path[-1]] = copy.deepcopy(value)


def _delete(tree: dict[str, Any], path: Path) -> None:
    if _has(tree, path):
        del _get(tree, path[:-1])[path[-1]]


def written_by_us(data: dict[str, Any] | None, keys: ManagedKeys) -> bool:
    """Whether a settings object carries every key our merge always writes (so it was our output)."""
    return data is not None and all(_has(data, path) for path in keys.always)


def restored(current: dict[str, Any], original: dict[str, Any] | None, keys: ManagedKeys) -> dict[str, Any] | None:
    """
    ``current`` with our keys back to ``original`` (the file before our first change; None: there was none).
    Objects we created and left empty go too; None means the file itself should go (it was ours alone).
    """
    result = copy.deepcopy(current)
    before = original or {}
    for path in keys.written:
        if _has(before, path):
            _set(result, path, _get(before, path))
        else:
            _delete(result, path)
    for path in keys.dropped:
        if _has(before, path) and not _has(result, path):
            _set(result, path, _get(before, path))
    for parent in {path[:-1] for path in keys.written if len(path) > 1}:
        if _has(result, parent) and _get(result, parent) == {} and not _has(before, parent):
            _delete(result, parent)
    if original is None and not result:
        return None
    return result
