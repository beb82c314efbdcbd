"""Nodes of the ``efficiency`` pipeline; the work is in :mod:`seg_pipelines.experiments.efficiency`
(imported when a node first runs: :mod:`seg_pipelines.pipelines.lazy`)."""

from seg_pipelines.pipelines.lazy import lazy

EXPERIMENT = "seg_pipelines.experiments.efficiency"
complexity_table_3_5 = lazy(EXPERIMENT, "complexity_table_3_5")
complexity_table_4_6 = lazy(EXPERIMENT, "complexity_table_4_6")
timing_table_3_6 = lazy(EXPERIMENT, "timing_table_3_6")
ovss_table_5_8 = lazy(EXPERIMENT, "ovss_table_5_8")
report_tables = lazy(EXPERIMENT, "report_tables")
