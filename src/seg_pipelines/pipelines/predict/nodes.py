"""Node of ``predict``: a checkpoint on a folder of images; the work is in
:mod:`seg_pipelines.experiments.inference` (imported in the body: registration needs no torch)."""

from __future__ import annotations

from typing import Any

from seg_pipelines.parameters import Predict


def run_predict(params: Predict) -> tuple[dict[str, Any], dict[str, Any]]:
    """Overlay images (PIL, by file name) and the prediction summary."""
    from seg_pipelines.experiments import inference

    return inference.run_predict(Predict.of(params))
