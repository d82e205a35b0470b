"""The fleet mirror's server (`ollama-claude mirror serve`) on its own: paths as HTTP clients send them."""

from __future__ import annotations

import threading
import urllib.error
import urllib.request
from pathlib import Path

import pytest

from ollama_claude.mirror import server


@pytest.fixture
def served(tmp_path: Path):
    (tmp_path / "apt").mkdir()
    (tmp_path / "apt" / "Packages").write_text("Package: zstd\n")
    (tmp_path / ".requests.jsonl").write_text("")
    httpd = server.make_server(tmp_path)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}"
    httpd.shutdown()
    httpd.server_close()


def status(url: str) -> int:
    try:
        with urllib.request.urlopen(url, timeout=5) as response:
            return response.status
    except urllib.error.HTTPError as error:
        return error.code


def test_a_dot_segment_is_the_same_path_as_apt_asks_for_a_flat_repository(served):
    assert status(f"{served}/apt/./Packages") == 200  # apt's request for `deb ... ./`
    assert status(f"{served}/apt/Packages") == 200


def test_dot_files_and_parent_segments_stay_out_of_reach(served):
    assert status(f"{served}/.requests.jsonl") == 404
    assert status(f"{served}/apt/../.requests.jsonl") == 404
    assert status(f"{served}/apt/../../etc/passwd") == 404
