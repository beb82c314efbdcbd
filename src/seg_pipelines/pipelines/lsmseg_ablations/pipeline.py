"""``lsmseg_ablations``: thesis Tables 5.5 (k of category filtering), 5.6 (enriched prompt / SAM), 5.7
(fusion), 5.10 (CLIP fine-tuning), 5.11 (training vocabulary), each fanned out as one node per (row,
seed) under the namespace ``lsmseg_ablations.table_<id>`` plus a ``summary`` node
(:mod:`seg_pipelines.pipelines.ablation_fanout`). Each summary writes the table as CSV and markdown
(mean ± std, the paired effect and verdict of each finding), one line per run (CSV) and the metrics
(MLflow); each row × seed is an MLflow child run of the ``kedro run`` (any runner) and is reused by settings
hash (``cache_dir``). ``lsmseg_ablations_report`` puts every table in one markdown file that opens with
the chapter's verdict counts (``data/08_reporting/lsmseg_ablations.md``)."""

from kedro.pipeline import Pipeline

from seg_pipelines.engine.ablations import seed_slots as configured_seed_slots
from seg_pipelines.pipelines.ablation_fanout import chapter_report_node, table_pipeline
from seg_pipelines.pipelines.lsmseg_ablations import nodes

INPUTS = [
    "prepared_index",
    "dataset_manifest",
    "tiny_clip_config",
    "tiny_clip_checkpoint",
    "prompt_set",
    "params:lsmseg_ablations",
]


def create_pipeline(seed_slots: int | None = None, **kwargs) -> Pipeline:
    seed_slots = configured_seed_slots() if seed_slots is None else seed_slots
    tables = []
    for table, (key, _) in nodes.TABLES.items():
        tables.append(
            table_pipeline(
                chapter="lsmseg_ablations",
                key=key,
                rows=nodes.rows(table),
                seed_slots=seed_slots,
                variant_node=nodes.variant_node(table),
                variant_inputs=INPUTS,
                summary=nodes.summary_node(table, seed_slots),
                summary_inputs=["dataset_manifest", "prompt_set", "params:lsmseg_ablations"],
                outputs={
                    "summary": f"lsmseg_ablation_{key}",
                    "markdown": f"lsmseg_ablation_{key}_markdown",
                    "runs": f"lsmseg_ablation_{key}_runs",
                    "metrics": f"lsmseg_ablation_{key}_metrics",
                },
            )
        )
    keys = [key for key, _ in nodes.TABLES.values()]
    report = chapter_report_node(
        "lsmseg_ablations",
        "Chapter 5 ablations (LSMSeg)",
        markdowns=[f"lsmseg_ablation_{key}_markdown" for key in keys],
        metrics=[f"lsmseg_ablation_{key}_metrics" for key in keys],
        output="lsmseg_ablations_report_md",
    )
    return sum(tables, Pipeline([])) + Pipeline([report], tags={"lsmseg_ablations", "ablations"})
