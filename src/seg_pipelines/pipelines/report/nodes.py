"""Node of the ``report`` pipeline; the work is in :mod:`seg_pipelines.experiments.reporting`
(imported in the body: registration needs no torch)."""

from __future__ import annotations

from pathlib import Path
from typing import Any


def build_report(config: dict[str, Any], parameters: dict[str, Any]) -> tuple[str, str]:
    """report.md and report.html from the files under ``config["reporting_dir"]`` (relative to the
    working directory, the project root under ``kedro run``); ``parameters`` give the configured
    budgets and seeds."""
    from seg_pipelines.experiments import reporting

    return reporting.build_report(config, parameters, Path.cwd())
