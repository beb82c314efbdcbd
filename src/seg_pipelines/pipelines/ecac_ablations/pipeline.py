"""``ecac_ablations``: thesis Tables 4.2, 4.3, 4.4, 4.5, 4.7, 4.8 (:mod:`seg_pipelines.thesis_tables`),
each fanned out as one node per (variant, seed) under the namespace ``ecac_ablations.table_<id>`` plus
a ``summary`` node (:func:`~seg_pipelines.pipelines.ablation_fanout.ablation_pipeline`), and the
Figure 4.7 t-SNE. Each variant node is an MLflow child run of the ``kedro run`` (also under
``ParallelRunner``) and its result is reused by settings hash (``checkpoint_root/results``), so a row
repeated across tables (e.g. FCN + full ECAC in 4.2, 4.3, 4.4, 4.7) is trained and evaluated once per
seed.

Inputs from ``data_preparation``: ``dataset_manifest``, ``prepared_index``, ``class_statistics``.
Parameters: ``ecac_ablations`` (conf/base: default budget; conf/test: smoke; conf/thesis: thesis).
"""

from kedro.pipeline import Node, Pipeline

from seg_pipelines.pipelines.ablation_fanout import ablation_pipeline
from seg_pipelines.pipelines.ecac_ablations.nodes import ECACSummary, ECACVariant, combine_markdown, plot_feature_tsne

INPUTS = ["params:ecac_ablations", "dataset_manifest", "prepared_index", "class_statistics"]


def create_pipeline(seed_slots: int | None = None, **kwargs) -> Pipeline:
    figure = Node(
        plot_feature_tsne,
        inputs=INPUTS,
        outputs=["ecac_ablations_figure_4_7", "ecac_ablations_figure_4_7_metrics"],
        name="ecac_ablations_figure_4_7",
    )
    return ablation_pipeline(
        "ecac_ablations",
        variant=ECACVariant,
        summary=ECACSummary,
        variant_inputs=INPUTS,
        summary_inputs=["params:ecac_ablations", "dataset_manifest", "class_statistics"],
        report=combine_markdown,
        report_inputs=["ecac_ablations_figure_4_7_metrics"],
        extra_nodes=[figure],
        seed_slots=seed_slots,
    )
