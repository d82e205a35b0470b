"""
reports/fleet.html as a person sees it: rendered by Debian's headless chromium (no server, no script), a
screenshot kept under reports/test-artifacts/ and its pixels read back, the DOM dumped after layout.
A 100-host fleet mid-rollout: wave 2 stopped and rolled back, waves 3-4 never run.
"""

from __future__ import annotations

import re

import pytest
from browser import ARTIFACTS, CHROMIUM, PageText, chromium, read_png

from ollama_claude.rollout.page import render

pytestmark = pytest.mark.skipif(CHROMIUM is None, reason="chromium is not installed (make system-deps)")


def fleet(count: int = 100):
    hosts, waves, start = [], [], 0
    for number, size in enumerate((1, 24, 50, 25), start=1):
        names = [f"gpu{n:03d}" for n in range(start + 1, start + size + 1)]
        start += size
        waves.append({"number": number, "hosts": names, "decision": None, "changes": {}})
        for name in names:
            upgraded = number == 1
            failed = name == "gpu002"
            items = [{"number": n, "key": f"item{n}", "status": "pass", "user": "dev"} for n in range(1, 10)]
            if failed:
                items[6] = {"number": 7, "key": "edit_test", "status": "fail", "user": "dev",
                            "message": "API error in Claude Code's transcript"}
            hosts.append({
                "host": name, "reachable": name != "gpu099",
                "running": {"ollama_version": "0.32.15" if upgraded else "0.18.0", "claude_code_version": "2.1.332"},
                "pins": {"ollama_version": "0.32.15" if upgraded else "0.18.0", "claude_code_version": "2.1.332"},
                "recorded": {"previous": {"ollama_version": "0.18.0"} if upgraded else None},
                "models": ["glm-4.7-flash:latest"],
                "last_verify": {"status": "fail" if failed else "pass", "time": "2026-12-01T15:40:00+00:00",
                                "seconds": 20.0 + number, "items": items},
            })
    waves[0].update(decision="continue", why="1 of 1 hosts verified green", seconds=95,
                    changes={"gpu001": "Ollama 0.18.0 -> Ollama 0.32.15"})
    waves[1].update(decision="stop", why="1 of 24 hosts failed verify (gpu002), over the budget of 0", seconds=310,
                    changes={name: "Ollama 0.18.0 -> Ollama 0.33.0, rolled back to Ollama 0.18.0"
                             for name in waves[1]["hosts"]})
    status = {"inventory": "inventories/gpu.py", "time": "2026-12-01T15:45:00+00:00", "hosts": hosts,
              "offers": {"gpu001": {"ollama": ["0.33.0"], "claude_code": []}}}
    return status, {"outcome": "stopped", "waves": waves}


def test_a_person_sees_the_waves_the_stop_and_the_failing_item(tmp_path):
    status, rollout = fleet()
    page = tmp_path / "fleet.html"
    page.write_text(render(status, rollout))
    assert "<script" not in page.read_text() and "http" not in page.read_text()  # self-contained
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    shot = ARTIFACTS / "fleet.png"
    shot.unlink(missing_ok=True)
    done = chromium(page, tmp_path / "profile-shot", "--window-size=1400,1000", f"--screenshot={shot}")
    assert shot.is_file(), done.stderr
    dom = chromium(page, tmp_path / "profile-dom", "--dump-dom")
    assert dom.returncode == 0, dom.stderr
    text = PageText()
    text.feed(dom.stdout)
    # Every host, once, in wave order; the wave column says which.
    assert [row[0] for row in text.rows] == [f"gpu{n:03d}" for n in range(1, 101)]
    assert {row[1] for row in text.rows[1:25]} == {"2"} and {row[1] for row in text.rows[75:]} == {"4"}
    assert text.decisions[0].startswith("wave 1: gpu001 — continue")
    assert "wave 2:" in text.decisions[1] and "stop: 1 of 24 hosts failed verify (gpu002)" in text.decisions[1]
    assert text.decisions[2].endswith("not run:") and text.decisions[3].endswith("not run:")
    gpu001, gpu002, gpu099 = text.rows[0], text.rows[1], text.rows[98]
    assert gpu001[2] == "0.32.15 was 0.18.0" and gpu001[8] == "21.0 s"
    assert gpu002[5] == "fail" and "7✗" in gpu002[6] and "rolled back to Ollama 0.18.0" in gpu002[9]
    assert gpu099[2] == "unreachable"
    summary = re.sub(r"\s+", " ", dom.stdout)
    assert "98 verify passed" in summary and "1 verify failed" in summary and "1 unreachable" in summary
    assert "Newer releases offered: Ollama 0.33.0" in summary
    # The screenshot: a page, not a blank or an error page, with the failing marks in red and passes in green.
    width, height, rows = read_png(shot)
    assert (width, height) == (1400, 1000)
    pixels = [row[i:i + 3] for row in rows[::2] for i in range(0, len(row), 6)]
    red = sum(1 for p in pixels if p[0] > 150 and p[1] < 80 and p[2] < 80)
    green = sum(1 for p in pixels if p[1] > 80 and p[0] < 60 and p[2] < 80)
    light = sum(1 for p in pixels if min(p) > 220)
    assert red > 20 and green > 200 and light > len(pixels) // 2, (red, green, light)
