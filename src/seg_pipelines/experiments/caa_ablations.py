"""The chapter 3 ablation tables: rows, fixed columns and CAA switches of each variant, and the
thesis's numbers (ADE20K val, FCN/ResNet-50, 160k iterations, single scale).

Variant overrides follow :func:`seg_pipelines.engine.ablations.closed_set_variant_config`; the CAA
switches are the :class:`seg_pipelines.models.caa.ClassAwareAffinity` arguments.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from seg_pipelines.engine import thesis_numbers
from seg_pipelines.engine.ablations import AblationTable, AblationVariant
from seg_pipelines.experiments.closed_set import benchmark_name, summarize_per_class
from seg_pipelines.experiments.closed_set_ablations import ClosedSetSummaryNode, ClosedSetVariantNode
from seg_pipelines.models.heads import head_display_name

TICK = "✓"
MIOU = "mIoU(%)"
TABLE_IDS = ("3.2", "3.3", "3.4", "3.7")

# The heads of Table 3.7, in the thesis's row order (row labels: head_display_name(..., thesis=True)).
TABLE_3_7_HEADS = ("fcn", "ccnet", "upernet", "pspnet", "deeplabv3", "isnet")

# The thesis's numbers (seg_pipelines.engine.thesis_numbers).
THESIS_3_2 = thesis_numbers.TABLE_3_2
THESIS_3_3 = thesis_numbers.TABLE_3_3
THESIS_3_4 = thesis_numbers.TABLE_3_4
THESIS_3_7 = thesis_numbers.TABLE_3_7  # columns THESIS_BENCHMARKS
THESIS_BENCHMARKS = thesis_numbers.TABLE_3_7_BENCHMARKS
THESIS_SETTING = (
    "the thesis's numbers are ADE20K val, ResNet-50, 160k iterations at batch 16 (Table 3.7 also "
    "COCO-Stuff / Pascal-Context); a reference for direction only, not comparable to this budget"
)


def _miou(per_class) -> dict[str, float]:
    return {MIOU: summarize_per_class(per_class)["mIoU"]}


def _checks(names: Sequence[str], on: Sequence[str], backbone: str) -> dict[str, str]:
    return {name: TICK if name in on else "" for name in names} | {"Backbone": backbone}


def _single(values: Mapping[str, float]) -> dict[str, dict[str, float]]:
    return {row: {MIOU: value} for row, value in values.items()}


def _switch_table(
    table: str,
    title: str,
    names: Sequence[str],
    rows: Sequence[tuple[str, Mapping[str, Any]]],
    thesis: Mapping[str, float],
    backbone: str,
    notes: Sequence[str],
) -> AblationTable:
    """A two-switch table (Tables 3.2-3.4): ``rows`` are the (row label, overrides) of the base ``names[0]``,
    ``names[1]`` switched on, ``names[2]`` switched on and both, in that order (ticked columns: ``names``)."""
    ticked = (names[:1], names[:2], (names[0], names[2]), names)
    variants = [
        AblationVariant(table, row, overrides, _checks(names, on, backbone))
        for (row, overrides), on in zip(rows, ticked, strict=True)
    ]
    return AblationTable(table, title, variants, [MIOU], "Variant", _single(thesis), notes=notes, measure=_miou)


def build_table(
    table: str,
    params: Mapping[str, Any],
    manifest: Mapping[str, Any],
    notes: Sequence[str] = (),
    class_statistics: Any = None,
) -> AblationTable:
    """The :class:`AblationTable` of thesis Table ``table`` (one of :data:`TABLE_IDS`) under ``params``
    (the ``caa_ablations`` parameter block); ``class_statistics`` is not used by chapter 3's tables."""
    backbone = str(params["model"].get("backbone", "resnet50c"))
    head = str(params["model"].get("head", "fcn"))
    notes = [f"head: {head}", *notes, THESIS_SETTING]
    if table == "3.2":  # "CC": class centres only; "SA": semantic affinity only (section 3.3.4)
        rows = [
            ("Baseline", {"addon": None}),
            ("CC", {"addon": "caa", "addon_cfg": {"use_semantic_affinity": False}}),
            ("SA", {"addon": "caa", "addon_cfg": {"use_class_center": False}}),
            ("CC+SA", {"addon": "caa"}),
        ]
        title = "class centre (CC) and semantic affinity (SA)"
        return _switch_table(table, title, ("Baseline", "CC", "SA"), rows, THESIS_3_2, backbone, notes)
    if table == "3.3":  # intra-/inter-class representations of the semantic affinity (eq. 3.4-3.7)
        rows = [
            ("Baseline", {"addon": None}),
            ("Intra-class", {"addon": "caa", "addon_cfg": {"use_inter": False}}),
            ("Inter-class", {"addon": "caa", "addon_cfg": {"use_intra": False}}),
            ("Intra+Inter", {"addon": "caa"}),
        ]
        names = ("Baseline", "Intra-class", "Inter-class")
        return _switch_table(table, "intra- and inter-class context", names, rows, THESIS_3_3, backbone, notes)
    if table == "3.4":  # the loss terms of eq. 3.12: λ2 (affinity, eq. 3.9) and λ3 (auxiliary, eq. 3.10)
        off = {"affinity_loss_weight": 0.0, "aux_loss_weight": 0.0}
        rows = [
            ("CAA", {"addon": "caa", "addon_cfg": dict(off)}),
            ("CAA+Aux", {"addon": "caa", "addon_cfg": {"affinity_loss_weight": 0.0}}),
            ("CAA+Aff", {"addon": "caa", "addon_cfg": {"aux_loss_weight": 0.0}}),
            ("CAA+Aux+Aff", {"addon": "caa"}),
        ]
        title = "loss function (auxiliary / affinity loss)"
        return _switch_table(table, title, ("CAA", "Aux", "Aff"), rows, THESIS_3_4, backbone, notes)
    if table == "3.7":  # CAA on mainstream heads; one benchmark column: the configured dataset
        benchmark = (params.get("report") or {}).get("benchmark") or benchmark_name(manifest)
        heads = list(params.get("table_3_7_heads") or TABLE_3_7_HEADS)
        unknown = [h for h in heads if h not in TABLE_3_7_HEADS]
        if unknown:
            raise KeyError(f"table_3_7_heads: no Table 3.7 row for {unknown}; known heads: {list(TABLE_3_7_HEADS)}")
        variants, comparisons, thesis = [], [], {}
        for name in heads:
            label = head_display_name(name, thesis=True)
            for row, addon in ((label, None), (f"{label}+CAA", "caa")):
                variants.append(
                    AblationVariant(table, row, {"model": {"head": name}, "addon": addon}, {"Backbone": backbone})
                )
                thesis[row] = dict(zip(THESIS_BENCHMARKS, THESIS_3_7[row]))
            comparisons.append((f"{label}+CAA", label))
        missing = [b for b in THESIS_BENCHMARKS]
        table_notes = [n for n in notes if not n.startswith("head:")]
        table_notes.insert(
            0,
            f"measured on {benchmark}; the thesis's {', '.join(missing)} columns cannot be measured here and are "
            "omitted (their numbers are shown as 'thesis …' for reference)",
        )
        return AblationTable(
            table,
            "CAA integrated into mainstream frameworks",
            variants,
            [benchmark],
            "Method",
            thesis,
            comparisons,
            table_notes,
            measure=lambda per_class: {benchmark: summarize_per_class(per_class)["mIoU"]},
        )
    raise KeyError(f"unknown chapter 3 ablation table {table!r}; known: {TABLE_IDS}")


def variant_node(table: str, row: int, seed_slot: int) -> ClosedSetVariantNode:
    """The node object of row ``row``, seed slot ``seed_slot`` of Table ``table`` (the pipeline's fan-out)."""
    return ClosedSetVariantNode(build_table, table, row, seed_slot, "caa_ablations", "caa")


def summary_node(table: str, row_slots: int, seed_slots: int) -> ClosedSetSummaryNode:
    """The summary node object of Table ``table`` (table CSV, runs CSV, markdown, metrics)."""
    return ClosedSetSummaryNode(build_table, table, "caa_ablations", row_slots, seed_slots)
