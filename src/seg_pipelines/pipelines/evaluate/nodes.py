"""Node of ``evaluate``: a checkpoint on a dataset under its protocol; the work is in
:mod:`seg_pipelines.experiments.inference` (imported in the body: registration needs no torch)."""

from __future__ import annotations

from typing import Any

import pandas as pd

from seg_pipelines.parameters import Evaluate


def run_evaluate(params: Evaluate) -> tuple[pd.DataFrame, dict[str, Any], str]:
    """Per-class IoU, metrics and markdown of ``evaluate.checkpoint`` on ``evaluate.dataset``."""
    from seg_pipelines.experiments import inference

    return inference.run_evaluate(Evaluate.of(params))
