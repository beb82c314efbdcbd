"""``caa_ablations``: thesis Tables 3.2, 3.3, 3.4, 3.7 (:mod:`seg_pipelines.thesis_tables`), each fanned
out as one node per (variant, seed) under the namespace ``caa_ablations.table_<id>`` plus a
``summary`` node (:func:`~seg_pipelines.pipelines.ablation_fanout.ablation_pipeline`); each variant
node is an MLflow child run of the ``kedro run`` (also under ``ParallelRunner``) and its result is
reused by settings hash (``checkpoint_root/results``), so a row repeated across tables is trained and
evaluated once per seed. Summaries write the table (CSV: mean ± std, paired effect and verdict), the
per-seed runs (CSV), markdown and flat metrics.

Inputs from ``data_preparation``: ``dataset_manifest``, ``prepared_index``, ``class_statistics``.
Parameters: ``caa_ablations`` (conf/base: default budget; conf/test: smoke; conf/thesis: thesis).
"""

from kedro.pipeline import Pipeline

from seg_pipelines.pipelines.ablation_fanout import ablation_pipeline
from seg_pipelines.pipelines.caa_ablations.nodes import CAASummary, CAAVariant, chapter_report


def create_pipeline(seed_slots: int | None = None, **kwargs) -> Pipeline:
    return ablation_pipeline(
        "caa_ablations",
        variant=CAAVariant,
        summary=CAASummary,
        variant_inputs=["params:caa_ablations", "dataset_manifest", "prepared_index", "class_statistics"],
        summary_inputs=["params:caa_ablations", "dataset_manifest", "class_statistics"],
        report=chapter_report,
        seed_slots=seed_slots,
    )
