"""Method-agnostic runtime: the one training loop (``training``; the OVSS models' task in
``ovss_training``), evaluation and its protocols (``evaluation``, ``ovss_evaluation``), profiling, the
generic ablation runner (``ablations``), MLflow tracking (``tracking``), markdown tables and the report
(``tables``, ``report``), the thesis numbers every table compares with (``thesis_numbers``) and process
settings (``runtime``). Nothing here knows a pipeline or a thesis experiment."""
