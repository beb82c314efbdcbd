"""``lsmseg_ablations``: thesis Tables 5.5 (k of category filtering), 5.6 (enriched prompt / SAM), 5.7
(fusion), 5.10 (CLIP fine-tuning), 5.11 (training vocabulary) (:mod:`seg_pipelines.thesis_tables`), each
fanned out as one node per (row, seed) under the namespace ``lsmseg_ablations.table_<id>`` plus a
``summary`` node (:func:`~seg_pipelines.pipelines.ablation_fanout.ablation_pipeline`). Each summary
writes the table as CSV and markdown (mean ± std, the paired effect and verdict of each finding), one
line per run (CSV) and the metrics (MLflow); each row × seed is an MLflow child run of the ``kedro
run`` (any runner) and is reused by settings hash (``cache_dir``). ``lsmseg_ablations_report`` puts
every table in one markdown file that opens with the chapter's verdict counts
(``data/08_reporting/lsmseg_ablations.md``)."""

from kedro.pipeline import Pipeline

from seg_pipelines.pipelines.ablation_fanout import ablation_pipeline
from seg_pipelines.pipelines.lsmseg_ablations.nodes import LSMSegSummary, LSMSegVariant, chapter_report


def create_pipeline(seed_slots: int | None = None, **kwargs) -> Pipeline:
    return ablation_pipeline(
        "lsmseg_ablations",
        variant=LSMSegVariant,
        summary=LSMSegSummary,
        variant_inputs=[
            "prepared_index",
            "dataset_manifest",
            "tiny_clip_config",
            "tiny_clip_checkpoint",
            "prompt_set",
            "params:lsmseg_ablations",
            "tiny_sam_config",
            "tiny_sam_checkpoint",
            "tiny_sam_l_config",
            "tiny_sam_l_checkpoint",
        ],
        summary_inputs=["dataset_manifest", "prompt_set", "params:lsmseg_ablations"],
        report=chapter_report,
        seed_slots=seed_slots,
    )
