"""Nodes of ``lsmseg``: CAT-Seg and LSMSeg trained on the seen classes and evaluated on the six
vocabularies; the work is in :mod:`seg_pipelines.experiments.lsmseg`.
(imported when a node first runs: :mod:`seg_pipelines.pipelines.lazy`)."""

from seg_pipelines.pipelines.lazy import lazy

EXPERIMENT = "seg_pipelines.experiments.lsmseg"
describe_models = lazy(EXPERIMENT, "describe_models")
evaluate_ovss = lazy(EXPERIMENT, "evaluate_ovss")
plot_cost_maps = lazy(EXPERIMENT, "plot_cost_maps")
plot_qualitative = lazy(EXPERIMENT, "plot_qualitative")
train_baseline = lazy(EXPERIMENT, "train_baseline")
train_lsmseg = lazy(EXPERIMENT, "train_lsmseg")
validate_lsmseg_inputs = lazy(EXPERIMENT, "validate_lsmseg_inputs")
