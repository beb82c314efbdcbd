"""Nodes of ``lsmseg``: CAT-Seg and LSMSeg trained on the seen classes and evaluated on the six
vocabularies; the work is in :mod:`seg_pipelines.experiments.lsmseg`."""

from seg_pipelines.experiments.lsmseg import (
    describe_models,
    evaluate_ovss,
    plot_cost_maps,
    plot_qualitative,
    train_baseline,
    train_lsmseg,
    validate_lsmseg_inputs,
)

__all__ = [
    "describe_models",
    "evaluate_ovss",
    "plot_cost_maps",
    "plot_qualitative",
    "train_baseline",
    "train_lsmseg",
    "validate_lsmseg_inputs",
]
