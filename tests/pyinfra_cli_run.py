"""The pyinfra CLI as the tests run it: where it is, where it runs, and its output parsed back."""

from __future__ import annotations

import re
import sys
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
PYINFRA = Path(sys.executable).parent / "pyinfra"


@dataclass
class PyinfraRun:
    """One pyinfra CLI run: exit code, output, and the counts from its closing results table."""

    rc: int
    stdout: str
    stderr: str

    @property
    def output(self) -> str:
        """Everything pyinfra printed: it logs progress and results to stderr when not on a terminal."""
        return self.stdout + self.stderr

    def results(self) -> dict[str, dict[str, int]]:
        """{operation name or "Grand total": {"hosts", "success", "error", "no_change"}}; '-' counts as 0."""
        lines = self.output.split("--> Results:", 1)[-1].splitlines()
        rows = {}
        for line in lines[2:]:
            if not line.strip():
                break
            name, *counts = re.split(r"\s{2,}", line.strip())
            if len(counts) != 4 or not all(re.fullmatch(r"\d+|-", count) for count in counts):
                continue  # not an operation row, e.g. pyinfra's note on hosts it could not connect to
            numbers = [0 if count == "-" else int(count) for count in counts]
            rows[name] = dict(zip(("hosts", "success", "error", "no_change"), numbers))
        if "--> Results:" not in self.output or "Grand total" not in rows:
            raise AssertionError(f"no pyinfra results table in the output:\n{self.stdout}\n{self.stderr}")
        return rows

    @property
    def changes(self) -> int:
        """Operations that changed something, summed over hosts (pyinfra's "Success" column)."""
        return self.results()["Grand total"]["success"]

    @property
    def errors(self) -> int:
        """Failed operation rows summed over hosts: a host that fails also counts in the operations after it."""
        return self.results()["Grand total"]["error"]

    @property
    def failed_hosts(self) -> set[str]:
        """Hosts pyinfra reported an error for (`[host] Error: ...` lines)."""
        return set(re.findall(r"^\s+\[([^\]]+)\] Error", self.output, re.MULTILINE))

    def __str__(self) -> str:
        return f"pyinfra exit {self.rc}\n--- stdout\n{self.stdout}\n--- stderr\n{self.stderr}"

    # Assertion messages show the whole run, not pytest's truncated dataclass repr.
    __repr__ = __str__
