"""The bench end to end at its smallest (one host, a fast WAN): results, table and ratios come out right."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from ollama_claude.lab.errors import LabError
from ollama_claude.lab.system import require_lab_host

pytestmark = pytest.mark.lab
REPO = Path(__file__).resolve().parents[2]
# The spare lab's name and subnet (tests/conftest.py): free whenever no test holds `spare_lab`.
SPARE_LAB = f"{os.environ.get('OLLAMA_CLAUDE_TEST_LAB', 'test')}-spare"
SPARE_SUBNET = os.environ.get("OLLAMA_CLAUDE_TEST_SPARE_SUBNET", "10.213.2.0/24")
WAN_SUBNET = os.environ.get("OLLAMA_CLAUDE_TEST_WAN_SUBNET", "10.213.4.0/30")


def test_bench_runs_end_to_end_at_one_host(tmp_path):
    try:
        require_lab_host()
    except LabError as error:
        if os.environ.get("OLLAMA_CLAUDE_REQUIRE_LAB") == "1":
            raise
        pytest.skip(str(error))
    done = subprocess.run(
        [sys.executable, "-m", "bench", "--counts", "1", "--no-direct", "--no-ansible", "--rate", "1gbit", "--latency-ms", "5",
         "--out", str(tmp_path), "--lab", f"{SPARE_LAB}-bench", "--subnet", SPARE_SUBNET,
         "--wan-subnet", WAN_SUBNET, "--wan-netns", f"ocb-{SPARE_LAB}-wan", "--wan-veth", "ocbw-smoke"],
        cwd=REPO, capture_output=True, text=True, check=False, timeout=400,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    results = json.loads((tmp_path / "bench.json").read_text())
    rows = {row["approach"]: row for row in results["rows"]}
    assert set(rows) == {"toolkit+mirror", "naive"}
    assert all(row["end_state_ok"] for row in rows.values())
    # one host: both fetch every artifact once; only the naive re-run downloads again
    assert rows["naive"]["wan_bytes_cold"] > 50_000_000
    assert abs(rows["toolkit+mirror"]["wan_bytes_cold"] - rows["naive"]["wan_bytes_cold"]) < 1_000_000
    assert rows["toolkit+mirror"]["wan_bytes_warm"] == 0 < rows["naive"]["wan_bytes_warm"]
    assert results["ratios"]["P2_rerun"]["1"]["changes"] == 0
    assert "| P4 ours/naive cold time |" in (tmp_path / "bench.md").read_text()
    assert not os.path.exists(f"/run/netns/ocb-{SPARE_LAB}-wan")
