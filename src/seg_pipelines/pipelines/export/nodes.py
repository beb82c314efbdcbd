"""Node of ``export``: a checkpoint to ONNX, checked against PyTorch; the work is in
:mod:`seg_pipelines.experiments.export` (imported in the body: registration needs no torch)."""

from __future__ import annotations

from typing import Any

from seg_pipelines.parameters import Export


def export_to_onnx(params: Export) -> tuple[dict[str, Any], dict[str, Any], str]:
    """The export report (JSON), its metrics and markdown; the ``.onnx`` file is written to ``export.output``."""
    from seg_pipelines.experiments import export

    return export.run_export(Export.of(params))
