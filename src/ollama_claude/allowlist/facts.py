"""Whether nftables can be used on a host, and our table as the kernel has it now."""

from __future__ import annotations

import json
from typing import Any

from pyinfra.api import FactBase

from .rules import TABLE, listed


class NftAllowlist(FactBase[dict[str, Any]]):
    """
    ``state``: ``missing`` (no nft command), ``unusable`` (nft cannot read the ruleset: no nf_tables in the
    kernel, no CAP_NET_ADMIN in a container; ``error`` says why), ``absent`` (usable, no table of ours) or
    ``present`` (``table`` is our table reduced by rules.listed).
    """

    def default(self) -> dict[str, Any]:
        return {"state": "missing", "error": None, "table": None}

    def command(self) -> str:
        return (
            "if ! command -v nft >/dev/null 2>&1; then echo missing; "
            f"elif out=$(nft -j list table inet {TABLE} 2>/dev/null); then echo present; printf '%s\\n' \"$out\"; "
            "elif probe=$(nft list tables 2>&1); then echo absent; "
            "else echo unusable; printf '%s\\n' \"$probe\" | tr '\\n' ' '; echo; fi"
        )

    def process(self, output: list[str]) -> dict[str, Any]:
        state = output[0].strip() if output else "missing"
        rest = "\n".join(output[1:]).strip()
        if state == "present":
            try:
                return {"state": state, "error": None, "table": listed(json.loads(rest))}
            except (ValueError, KeyError, TypeError) as error:
                return {"state": "unusable", "error": f"nft -j output not understood: {error}", "table": None}
        if state == "unusable":
            return {"state": state, "error": rest or "nft failed", "table": None}
        return {"state": state if state in ("missing", "absent") else "unusable", "error": None, "table": None}
