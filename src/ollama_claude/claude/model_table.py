"""
Claude models as the pinned Claude Code binary knows them: which exist, which Anthropic has retired, and what
replaces them. The chain's Claude link (``verify_anthropic_model``) is checked against this at settings time,
so a retired name is refused before a host is touched instead of failing the fallback when it is needed.

Copied from the 2.1.332 binary (``strings`` of ``@anthropic-ai/claude-code-linux-x64@2.1.332`` ``package/claude``):
the baked model catalogue (``{id:"claude-…",family:"…"`` entries, ``latest_per_family``) and the deprecation
table (``"claude-3-5-haiku":{modelName:"Claude 3.5 Haiku",retirementDates:{firstParty:"February 19, 2026",…``),
first-party dates only. ``tests/standin/test_claude_binary_facts.py`` re-reads both from the binary.
"""

from __future__ import annotations

import datetime
import re

#: The Claude Code release this table was read from (keep equal to the claude_code_version default).
TABLE_VERSION = "2.1.332"

#: Catalogue ids per family, and the binary's ``latest_per_family``.
FAMILIES: dict[str, tuple[str, ...]] = {
    "haiku": ("claude-3-5-haiku", "claude-haiku-4-5", "claude-haiku-5-5"),
    "sonnet": ("claude-3-5-sonnet", "claude-3-7-sonnet", "claude-sonnet-4-0", "claude-sonnet-4-5",
               "claude-sonnet-4-6", "claude-sonnet-5", "claude-sonnet-5-5"),
    "opus": ("claude-opus-4-0", "claude-opus-4-1", "claude-opus-4-5", "claude-opus-4-6", "claude-opus-4-7",
             "claude-opus-4-8", "claude-opus-5", "claude-opus-5-5"),
    "fable": ("claude-fable-5", "claude-fable-5-1", "claude-fable-5-2"),
    "mythos": ("claude-mythos-5", "claude-mythos-5-1", "claude-mythos-5-2"),
}
LATEST = {"haiku": "claude-haiku-5-5", "sonnet": "claude-sonnet-5-5", "opus": "claude-opus-5-5",
          "fable": "claude-fable-5-2", "mythos": "claude-mythos-5-2"}
#: First-party model ids the catalogue maps to (dated snapshots) besides the ids themselves.
FIRST_PARTY_IDS = {
    "claude-3-5-haiku-20241022": "claude-3-5-haiku",
    "claude-3-5-sonnet-20241022": "claude-3-5-sonnet",
    "claude-3-7-sonnet-20250219": "claude-3-7-sonnet",
    "claude-haiku-4-5-20251001": "claude-haiku-4-5",
    "claude-opus-4-1-20250805": "claude-opus-4-1",
    "claude-opus-4-20250514": "claude-opus-4-0",
    "claude-opus-4-5-20251101": "claude-opus-4-5",
    "claude-sonnet-4-20250514": "claude-sonnet-4-0",
    "claude-sonnet-4-5-20250929": "claude-sonnet-4-5",
}
#: First-party retirement dates of the binary's deprecation table (models without one are left out).
RETIREMENT = {
    "claude-opus-4-5": datetime.date(2027, 1, 22),
    "claude-opus-4-0": datetime.date(2026, 6, 15),
    "claude-sonnet-4-5": datetime.date(2026, 11, 30),
    "claude-sonnet-4-0": datetime.date(2026, 6, 15),
    "claude-3-opus": datetime.date(2026, 1, 5),
    "claude-3-7-sonnet": datetime.date(2026, 2, 19),
    "claude-3-5-sonnet": datetime.date(2025, 10, 28),
    "claude-3-5-haiku": datetime.date(2026, 2, 19),
}
#: Default of verify_anthropic_model: the binary's default (and latest) haiku, cheap for a one-file edit test.
DEFAULT_FALLBACK_MODEL = LATEST["haiku"]


def canonical(model: str) -> str | None:
    """The catalogue id a name stands for (``-latest`` and dated snapshots included); None when unknown."""
    name = model.strip().lower()
    name = name.removesuffix("-latest")
    if name in FIRST_PARTY_IDS:
        return FIRST_PARTY_IDS[name]
    if name in RETIREMENT or any(name in ids for ids in FAMILIES.values()):
        return name
    undated = re.sub(r"-\d{8}$", "", name)
    return undated if undated != name and canonical(undated) else None


def family(model_id: str) -> str | None:
    for name, ids in FAMILIES.items():
        if model_id in ids:
            return name
    match = re.match(r"claude-(?:\d+-)*(haiku|sonnet|opus)", model_id)
    return match[1] if match else None


def fallback_model_problem(model: str, today: datetime.date | None = None) -> str | None:
    """Why ``model`` cannot be the chain's Claude link (retired or unknown to the pinned binary), else None."""
    model_id = canonical(model)
    if model_id is None:
        known = ", ".join(sorted(LATEST.values()))
        return (f"{model!r} is not a model Claude Code {TABLE_VERSION} knows (its model table); current "
                f"models include {known}")
    retired = RETIREMENT.get(model_id)
    if retired and retired <= (today or datetime.date.today()):
        replacement = LATEST.get(family(model_id) or "", DEFAULT_FALLBACK_MODEL)
        return (f"{model!r} was retired on {retired:%B} {retired.day}, {retired.year} (Claude Code "
                f"{TABLE_VERSION}'s model table); use {replacement!r}")
    return None
