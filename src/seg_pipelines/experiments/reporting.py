"""The project report: ``report.md`` / ``report.html`` from what the pipelines wrote under
``data/08_reporting`` (rendered by :mod:`seg_pipelines.engine.report`)."""

from __future__ import annotations

import logging
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from seg_pipelines.engine import report

logger = logging.getLogger(__name__)


def build_report(config: Mapping[str, Any], parameters: Mapping[str, Any], project_root: Path) -> tuple[str, str]:
    """report.md and report.html from the files under ``config["reporting_dir"]`` (relative to
    ``project_root``); ``parameters`` give the configured budgets and seeds."""
    markdown, status = report.build_report(config, parameters, project_root)
    missing = [item for item in status if not item.produced]
    logger.info("report: %d of %d listed outputs produced", len(status) - len(missing), len(status))
    if missing:
        logger.info("report: not produced yet (see the report): %s", ", ".join(sorted({i.section for i in missing})))
    return markdown, report.render_html(markdown, config.get("title", "Report"))
