"""What the embedded default's own pretrainings (the tiny CLIP, the tiny SAM) share: they train on the
synthetic world only, and report the wall time of their training on the curve's last row."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import Any

logger = logging.getLogger(__name__)


def synthetic_only_reason(manifest: dict[str, Any], model: str, real_path: str) -> str | None:
    """Why ``model`` (e.g. ``"tiny CLIP"``) is not trained for ``manifest``, with what to set on the
    real path (``real_path``), or ``None`` on the synthetic world."""
    if manifest["family"] == "synthetic":
        return None
    return f"the {model} is pretrained on the synthetic world only; the dataset is {manifest['family']!r}: {real_path}"


def timed_pretraining(
    name: str, steps: int, train: Callable[[], tuple[Any, list[dict[str, float]]]]
) -> tuple[Any, list[dict[str, float]]]:
    """``train()``'s (model, curve), its wall time as the curve's last row's ``seconds``, and a log line."""
    start = time.perf_counter()
    model, curve = train()
    seconds = time.perf_counter() - start
    if curve:
        curve[-1]["seconds"] = seconds
        logger.info("%s pretraining: %d steps in %.1f s, final loss %.3f", name, steps, seconds, curve[-1]["loss"])
    return model, curve
