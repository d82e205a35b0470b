"""Debian's headless chromium as the tests use it: a screenshot and the DOM after layout of a local page."""

from __future__ import annotations

import shutil
import struct
import subprocess
import zlib
from html.parser import HTMLParser
from pathlib import Path

ARTIFACTS = Path(__file__).resolve().parents[1] / "reports" / "test-artifacts"
CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--no-first-run", "--disable-background-networking",
         "--disable-component-update", "--disable-sync", "--hide-scrollbars"]


def read_png(path: Path) -> tuple[int, int, list[bytes]]:
    """Width, height and rows of RGB(A) pixels of an 8-bit non-interlaced PNG (what chromium writes)."""
    data = path.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    offset, chunks, width = 8, [], 0
    while offset < len(data):
        length, kind = struct.unpack(">I4s", data[offset:offset + 8])
        body = data[offset + 8:offset + 8 + length]
        if kind == b"IHDR":
            width, height, depth, color = struct.unpack(">IIBB", body[:10])
            assert depth == 8 and color in (2, 6)
            channels = 4 if color == 6 else 3
        elif kind == b"IDAT":
            chunks.append(body)
        offset += 12 + length
    raw, stride, rows, previous = zlib.decompress(b"".join(chunks)), width * channels, [], bytearray(width * channels)
    for y in range(height):
        kind, line = raw[y * (stride + 1)], bytearray(raw[y * (stride + 1) + 1:(y + 1) * (stride + 1)])
        for x in range(stride):
            left = line[x - channels] if x >= channels else 0
            up, corner = previous[x], previous[x - channels] if x >= channels else 0
            if kind == 1:
                line[x] = (line[x] + left) & 0xFF
            elif kind == 2:
                line[x] = (line[x] + up) & 0xFF
            elif kind == 3:
                line[x] = (line[x] + (left + up) // 2) & 0xFF
            elif kind == 4:
                guess = left + up - corner
                pa, pb, pc = abs(guess - left), abs(guess - up), abs(guess - corner)
                line[x] = (line[x] + (left if pa <= pb and pa <= pc else up if pb <= pc else corner)) & 0xFF
        rows.append(bytes(line)[::1] if channels == 3 else bytes(b for i, b in enumerate(line) if i % 4 != 3))
        previous = line
    return width, height, rows


class PageText(HTMLParser):
    """fleet.html's host rows (cell texts) and wave decisions, from chromium's DOM dump."""

    def __init__(self):
        super().__init__()
        self.rows: list[list[str]] = []
        self.decisions: list[str] = []
        self._cell, self._row, self._decision = None, None, None

    def handle_starttag(self, tag, attrs):
        attributes = dict(attrs)
        if tag == "tr" and "data-host" in attributes:
            self._row = []
        elif tag == "td" and self._row is not None:
            self._cell = ""
        elif tag == "div" and "decision" in (attributes.get("class") or ""):
            self._decision = ""

    def handle_endtag(self, tag):
        if tag == "td" and self._row is not None and self._cell is not None:
            self._row.append(self._cell.strip())
            self._cell = None
        elif tag == "tr" and self._row is not None:
            self.rows.append(self._row)
            self._row = None
        elif tag == "div" and self._decision is not None:
            self.decisions.append(self._decision.strip())
            self._decision = None

    def handle_data(self, data):
        if self._cell is not None:
            self._cell += data
        if self._decision is not None:
            self._decision += data


def chromium(page: Path, profile: Path, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([CHROMIUM, *FLAGS, f"--user-data-dir={profile}", *args, page.as_uri()],
                          capture_output=True, text=True, timeout=120, check=False)


def look_at(page: Path, shot_name: str, profile_root: Path, size: str = "1400,1000") -> tuple[PageText, str, Path]:
    """Screenshot (kept in ARTIFACTS) and DOM of a page, each with a fresh profile: (rows/decisions, DOM, png)."""
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    shot = ARTIFACTS / shot_name
    shot.unlink(missing_ok=True)
    done = chromium(page, profile_root / "profile-shot", f"--window-size={size}", f"--screenshot={shot}")
    assert shot.is_file(), done.stderr
    dom = chromium(page, profile_root / "profile-dom", "--dump-dom")
    assert dom.returncode == 0, dom.stderr
    text = PageText()
    text.feed(dom.stdout)
    return text, dom.stdout, shot
