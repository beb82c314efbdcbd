"""Method-agnostic runtime: the one training loop (``training``; the OVSS models' task in
``ovss_training``), evaluation and its protocols (``evaluation``, ``ovss_evaluation``), profiling, the
generic ablation runner (``ablations``), MLflow tracking (``tracking``), markdown tables and the report
(``tables``, ``report``) and process settings (``runtime``). Nothing here knows a pipeline or a thesis
experiment; the thesis's tables themselves are :mod:`seg_pipelines.thesis_tables`."""
