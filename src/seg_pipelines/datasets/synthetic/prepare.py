"""Render the synthetic world once per settings: a marker file records what is on disk."""

from __future__ import annotations

import json
import logging
import shutil
from pathlib import Path
from typing import Any

logger = logging.getLogger(__name__)

MARKER = "prepared_settings.json"


def ensure_synthetic_world(root: str | Path, **settings: Any) -> dict[str, Any]:
    """Render the world into ``root`` unless it already holds one made with the same ``settings``.

    A partial or stale world (different settings, interrupted render) is removed and re-rendered,
    so the index never mixes two worlds.
    """
    from seg_pipelines.datasets.synthetic.world import generate_synthetic_world

    root = Path(root)
    marker = root / MARKER
    if marker.is_file() and json.loads(marker.read_text()) == settings:
        logger.info("synthetic world already rendered at %s with these settings: reusing it", root)
        return {"root": str(root), "reused": True}
    if root.exists():
        logger.info("removing stale or partial synthetic world at %s", root)
        shutil.rmtree(root)
    summary = generate_synthetic_world(root, show_progress=True, **settings)
    marker.write_text(json.dumps(settings, indent=2, sort_keys=True))
    return {"root": str(root), "reused": False, **{k: v for k, v in summary.items() if isinstance(v, (int, float, str))}}
