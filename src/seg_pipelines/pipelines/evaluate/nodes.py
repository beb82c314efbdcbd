"""Node of ``evaluate``; the work is in :mod:`seg_pipelines.experiments.inference`.
(imported when a node first runs: :mod:`seg_pipelines.pipelines.lazy`)."""

from seg_pipelines.pipelines.lazy import lazy

EXPERIMENT = "seg_pipelines.experiments.inference"
run_evaluate = lazy(EXPERIMENT, "run_evaluate")
