"""The chapter 3 ablation tables: fixed columns and CAA switches of each variant; row labels and the
thesis's numbers (ADE20K val, FCN/ResNet-50, 160k iterations, single scale) are
:mod:`seg_pipelines.thesis_tables`.

Variant overrides follow :func:`seg_pipelines.engine.ablations.closed_set_variant_config`; the CAA
switches are the :class:`seg_pipelines.models.caa.ClassAwareAffinity` arguments.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from seg_pipelines.engine.ablations import AblationTable, AblationVariant, ChapterReport
from seg_pipelines.experiments.closed_set import benchmark_name, summarize_per_class
from seg_pipelines.experiments.closed_set_ablations import ClosedSetSummaryNode, ClosedSetVariantNode
from seg_pipelines.models.heads import head_display_name
from seg_pipelines.thesis_tables import MIOU, TABLES, ablation_tables

TICK = "✓"
TABLE_IDS = tuple(t.id for t in ablation_tables("caa_ablations"))

# The heads of Table 3.7, in the thesis's row order (row labels: head_display_name(..., thesis=True)).
TABLE_3_7_HEADS = ("fcn", "ccnet", "upernet", "pspnet", "deeplabv3", "isnet")
THESIS_SETTING = (
    "the thesis's numbers are ADE20K val, ResNet-50, 160k iterations at batch 16 (Table 3.7 also "
    "COCO-Stuff / Pascal-Context); a reference for direction only, not comparable to this budget"
)


def _miou(per_class) -> dict[str, float]:
    return {MIOU: summarize_per_class(per_class)["mIoU"]}


def _checks(names: Sequence[str], on: Sequence[str], backbone: str) -> dict[str, str]:
    return {name: TICK if name in on else "" for name in names} | {"Backbone": backbone}


def _switch_table(
    table: str,
    title: str,
    names: Sequence[str],
    overrides: Sequence[Mapping[str, Any]],
    backbone: str,
    notes: Sequence[str],
) -> AblationTable:
    """A two-switch table (Tables 3.2-3.4): ``overrides`` of the thesis's rows, in its order: the base
    ``names[0]``, ``names[1]`` switched on, ``names[2]`` switched on and both (ticked columns: ``names``)."""
    ticked = (names[:1], names[:2], (names[0], names[2]), names)
    thesis = TABLES[table]
    variants = [
        AblationVariant(table, row, row_overrides, _checks(names, on, backbone))
        for row, row_overrides, on in zip(thesis.rows, overrides, ticked, strict=True)
    ]
    return AblationTable(table, title, variants, [MIOU], "Variant", thesis.thesis, notes=notes, measure=_miou)


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
        overrides = [
            {"addon": None},
            {"addon": "caa", "addon_cfg": {"use_semantic_affinity": False}},
            {"addon": "caa", "addon_cfg": {"use_class_center": False}},
            {"addon": "caa"},
        ]
        title = "class centre (CC) and semantic affinity (SA)"
        return _switch_table(table, title, ("Baseline", "CC", "SA"), overrides, backbone, notes)
    if table == "3.3":  # intra-/inter-class representations of the semantic affinity (eq. 3.4-3.7)
        overrides = [
            {"addon": None},
            {"addon": "caa", "addon_cfg": {"use_inter": False}},
            {"addon": "caa", "addon_cfg": {"use_intra": False}},
            {"addon": "caa"},
        ]
        names = ("Baseline", "Intra-class", "Inter-class")
        return _switch_table(table, "intra- and inter-class context", names, overrides, backbone, notes)
    if table == "3.4":  # the loss terms of eq. 3.12: λ2 (affinity, eq. 3.9) and λ3 (auxiliary, eq. 3.10)
        off = {"affinity_loss_weight": 0.0, "aux_loss_weight": 0.0}
        overrides = [
            {"addon": "caa", "addon_cfg": dict(off)},
            {"addon": "caa", "addon_cfg": {"affinity_loss_weight": 0.0}},
            {"addon": "caa", "addon_cfg": {"aux_loss_weight": 0.0}},
            {"addon": "caa"},
        ]
        title = "loss function (auxiliary / affinity loss)"
        return _switch_table(table, title, ("CAA", "Aux", "Aff"), overrides, backbone, notes)
    if table == "3.7":  # CAA on mainstream heads; one benchmark column: the configured dataset
        benchmark = (params.get("report") or {}).get("benchmark") or benchmark_name(manifest)
        heads = list(params.get("table_3_7_heads") or TABLE_3_7_HEADS)
        unknown = [h for h in heads if h not in TABLE_3_7_HEADS]
        if unknown:
            raise KeyError(f"table_3_7_heads: no Table 3.7 row for {unknown}; known heads: {list(TABLE_3_7_HEADS)}")
        printed = TABLES[table]
        variants, comparisons, thesis = [], [], {}
        for name in heads:
            label = head_display_name(name, thesis=True)
            for row, addon in ((label, None), (f"{label}+CAA", "caa")):
                variants.append(
                    AblationVariant(table, row, {"model": {"head": name}, "addon": addon}, {"Backbone": backbone})
                )
                thesis[row] = printed.thesis[row]
            comparisons.append((f"{label}+CAA", label))
        missing = list(printed.columns)
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


def chapter_report(params: Mapping[str, Any], *items: Any) -> str:
    """The chapter's report: every table (``items``: their markdown, then their metrics, same order) in
    one markdown file, opening with the verdict counts summed over the tables."""
    return ChapterReport("Chapter 3 ablations (CAA)")(params, *items)
