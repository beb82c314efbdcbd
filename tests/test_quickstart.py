"""The README's two commands: `make demo` ends at its results (issue 30 item 7), `make test` runs pytest."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def recipe(target: str) -> list[str]:
    """The command lines of ``target`` in the Makefile."""
    text = (ROOT / "Makefile").read_text()
    match = re.search(rf"^{re.escape(target)}:[^\n]*\n((?:\t[^\n]*\n)+)", text, flags=re.MULTILINE)
    assert match, f"no {target} target"
    return [line.strip() for line in match.group(1).splitlines()]


def test_demo_builds_the_report_after_the_main_job_and_says_where_the_results_are():
    lines = recipe("demo")
    runs = [line for line in lines if "kedro run" in line]
    assert runs[0].endswith("kedro run") and runs[-1].endswith("kedro run --pipelines=report")
    said = " ".join(line for line in lines if line.startswith("@echo"))
    assert "data/08_reporting/report.html" in said and "prompt_set.json" in said


def test_test_target_runs_pytest():
    assert any(line.endswith("-m pytest -q") for line in recipe("test"))
