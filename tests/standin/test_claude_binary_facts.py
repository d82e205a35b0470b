"""
What the toolkit relies on, read back from the pinned Claude Code binary itself (its bundled JavaScript): the env
names settings_merge writes, the provider switches it removes, and the model table model_table copies. A new pin
whose binary differs fails here first.
"""

from __future__ import annotations

import re

import pytest

from ollama_claude.claude import model_table
from ollama_claude.claude.settings_merge import CONFLICTING_ENV, CONTEXT_ENV, OLLAMA_ROUTE_ENV
from ollama_claude.lab.releases import CLAUDE_CODE_VERSION, claude_cli_path
from ollama_claude.settings import Settings

pytestmark = pytest.mark.claude


@pytest.fixture(scope="module")
def bundle() -> str:
    return claude_cli_path(CLAUDE_CODE_VERSION).read_bytes().decode("latin-1")


def test_the_table_is_the_pinned_binarys():
    assert model_table.TABLE_VERSION == CLAUDE_CODE_VERSION == Settings.model_fields["claude_code_version"].default


def test_the_window_variable_is_read_for_models_claude_code_does_not_know(bundle):
    # ik(): a model it does not know (and not named like a Claude model) gets CLAUDE_CODE_MAX_CONTEXT_TOKENS,
    # parsed as a plain int (no minimum), else 1,000,000 (lG).
    assert re.search(r"if\(!ak\(e\)\)return nDt;let y=s\." + CONTEXT_ENV + r";if\(y!==void 0&&y>0\)return y", bundle)
    assert re.search(r"CLAUDE_CODE_MAX_CONTEXT_TOKENS:\(\)=>(\w+)", bundle)
    name = re.search(r"CLAUDE_CODE_MAX_CONTEXT_TOKENS:\(\)=>(\w+)", bundle)[1]
    assert f",{name}=H.int()," in bundle
    assert "lG=1e6" in bundle and "nDt=200000" in bundle


def test_tool_search_and_attribution_switches(bundle):
    assert OLLAMA_ROUTE_ENV == {"ENABLE_TOOL_SEARCH": "false", "CLAUDE_CODE_ATTRIBUTION_HEADER": "0"}
    assert 'let e=process.env.ENABLE_TOOL_SEARCH' in bundle and 'if(pi(e))return"standard"' in bundle
    assert "function Ok(){return pi(process.env.CLAUDE_CODE_ATTRIBUTION_HEADER)}" in bundle
    assert 'return["0","false","no","off"].includes(n)' in bundle  # pi(): what counts as off
    assert "x-anthropic-billing-header: cc_version=" in bundle


def test_every_provider_switch_of_the_binary_is_removed(bundle):
    # The binary's CLAUDE_CODE_USE_* names: seven providers, plus two that are not (cowork plugins, PowerShell).
    switches = set(re.findall(r'"(CLAUDE_CODE_USE_[A-Z_]+)"', bundle))
    not_providers = {"CLAUDE_CODE_USE_COWORK_PLUGINS", "CLAUDE_CODE_USE_POWERSHELL_TOOL"}
    assert switches - not_providers == {name for name in CONFLICTING_ENV if name.startswith("CLAUDE_CODE_USE_")}
    assert {"ANTHROPIC_MODEL", "ANTHROPIC_SMALL_FAST_MODEL"} <= set(CONFLICTING_ENV)


def test_model_table_matches_the_binarys_catalogue_and_retirements(bundle):
    catalogue = set(re.findall(r'\{id:"(claude-[a-z0-9-]+)",family:"[a-z]+"', bundle))
    assert catalogue == {model for ids in model_table.FAMILIES.values() for model in ids}
    latest = re.search(r"latest_per_family:\{([^}]*)\}", bundle)[1]
    assert dict(re.findall(r'(\w+):"(claude-[a-z0-9-]+)"', latest)) == {
        family: model for family, model in model_table.LATEST.items() if family != "mythos"}
    dates = dict(re.findall(r'"(claude-[a-z0-9-]+)":\{modelName:"[^"]+",retirementDates:\{firstParty:"([^"]+)"',
                            bundle))
    assert {model: f"{date:%B} {date.day}, {date.year}" for model, date in model_table.RETIREMENT.items()} == dates
    assert 'haiku:{default:"claude-haiku-5-5"' in bundle
