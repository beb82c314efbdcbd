"""The chapter 3 ablation tables: rows, fixed columns and CAA switches of each variant, and the
thesis's numbers (ADE20K val, FCN/ResNet-50, 160k iterations, single scale).

Variant overrides follow :func:`seg_pipelines.engine.ablations.closed_set_variant_config`; the CAA
switches are the :class:`seg_pipelines.models.caa.ClassAwareAffinity` arguments.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from seg_pipelines.engine.ablations import AblationTable, AblationVariant
from seg_pipelines.engine.closed_set import benchmark_name, summarize_per_class

TICK = "✓"
MIOU = "mIoU(%)"
TABLE_IDS = ("3.2", "3.3", "3.4", "3.7")

# Row labels of Table 3.7 (thesis spelling) per registry head.
HEAD_LABELS = {"fcn": "FCN", "ccnet": "CCNet", "upernet": "UperNet", "pspnet": "PSPNet", "deeplabv3": "Deeplabv3", "isnet": "ISNet"}

THESIS_3_2 = {"Baseline": 36.10, "CC": 40.39, "SA": 42.43, "CC+SA": 43.12}
THESIS_3_3 = {"Baseline": 36.10, "Intra-class": 42.76, "Inter-class": 42.39, "Intra+Inter": 43.12}
THESIS_3_4 = {"CAA": 40.45, "CAA+Aux": 41.44, "CAA+Aff": 42.36, "CAA+Aux+Aff": 43.12}
THESIS_3_7 = {  # ADE20K, COCO-Stuff, Pascal-Context
    "FCN": (36.10, 30.86, 45.76), "FCN+CAA": (43.12, 35.23, 50.82),
    "CCNet": (42.08, 35.43, 47.93), "CCNet+CAA": (43.98, 36.27, 49.79),
    "UperNet": (42.05, 35.80, 48.90), "UperNet+CAA": (43.81, 37.08, 51.57),
    "PSPNet": (42.48, 36.33, 50.21), "PSPNet+CAA": (44.12, 37.59, 52.05),
    "Deeplabv3": (42.66, 35.73, 50.73), "Deeplabv3+CAA": (44.23, 37.39, 52.37),
    "ISNet": (43.77, 38.06, 51.74), "ISNet+CAA": (43.98, 38.35, 52.08),
}  # fmt: skip
THESIS_BENCHMARKS = ("ADE20K", "COCO-Stuff", "Pascal-Context")
THESIS_SETTING = "the thesis's numbers are ADE20K val, ResNet-50, 160k iterations at batch 16 (Table 3.7 also COCO-Stuff / Pascal-Context); a reference for direction only, not comparable to this budget"


def _miou(per_class) -> dict[str, float]:
    return {MIOU: summarize_per_class(per_class)["mIoU"]}


def _checks(names: Sequence[str], on: Sequence[str], backbone: str) -> dict[str, str]:
    return {name: TICK if name in on else "" for name in names} | {"Backbone": backbone}


def _single(values: Mapping[str, float]) -> dict[str, dict[str, float]]:
    return {row: {MIOU: value} for row, value in values.items()}


def build_table(table: str, params: Mapping[str, Any], manifest: Mapping[str, Any], notes: Sequence[str] = ()) -> AblationTable:
    """The :class:`AblationTable` of thesis Table ``table`` (one of :data:`TABLE_IDS`) under ``params``
    (the ``caa_ablations`` parameter block)."""
    backbone = str(params["model"].get("backbone", "resnet50c"))
    head = str(params["model"].get("head", "fcn"))
    notes = [f"head: {head}", *notes, THESIS_SETTING]
    if table == "3.2":  # "CC": class centres only; "SA": semantic affinity only (section 3.3.4)
        names = ("Baseline", "CC", "SA")
        variants = [
            AblationVariant(table, "Baseline", {"addon": None}, _checks(names, ["Baseline"], backbone)),
            AblationVariant(table, "CC", {"addon": "caa", "addon_cfg": {"use_semantic_affinity": False}}, _checks(names, ["Baseline", "CC"], backbone)),
            AblationVariant(table, "SA", {"addon": "caa", "addon_cfg": {"use_class_center": False}}, _checks(names, ["Baseline", "SA"], backbone)),
            AblationVariant(table, "CC+SA", {"addon": "caa"}, _checks(names, names, backbone)),
        ]  # fmt: skip
        return AblationTable(table, "class centre (CC) and semantic affinity (SA)", variants, [MIOU], "Variant",
                             _single(THESIS_3_2), notes=notes, measure=_miou)  # fmt: skip
    if table == "3.3":  # intra-/inter-class representations of the semantic affinity (eq. 3.4-3.7)
        names = ("Baseline", "Intra-class", "Inter-class")
        variants = [
            AblationVariant(table, "Baseline", {"addon": None}, _checks(names, ["Baseline"], backbone)),
            AblationVariant(table, "Intra-class", {"addon": "caa", "addon_cfg": {"use_inter": False}}, _checks(names, ["Baseline", "Intra-class"], backbone)),
            AblationVariant(table, "Inter-class", {"addon": "caa", "addon_cfg": {"use_intra": False}}, _checks(names, ["Baseline", "Inter-class"], backbone)),
            AblationVariant(table, "Intra+Inter", {"addon": "caa"}, _checks(names, names, backbone)),
        ]  # fmt: skip
        return AblationTable(table, "intra- and inter-class context", variants, [MIOU], "Variant",
                             _single(THESIS_3_3), notes=notes, measure=_miou)  # fmt: skip
    if table == "3.4":  # the loss terms of eq. 3.12: λ2 (affinity, eq. 3.9) and λ3 (auxiliary, eq. 3.10)
        names = ("CAA", "Aux", "Aff")
        off = {"affinity_loss_weight": 0.0, "aux_loss_weight": 0.0}
        variants = [
            AblationVariant(table, "CAA", {"addon": "caa", "addon_cfg": dict(off)}, _checks(names, ["CAA"], backbone)),
            AblationVariant(table, "CAA+Aux", {"addon": "caa", "addon_cfg": {"affinity_loss_weight": 0.0}}, _checks(names, ["CAA", "Aux"], backbone)),
            AblationVariant(table, "CAA+Aff", {"addon": "caa", "addon_cfg": {"aux_loss_weight": 0.0}}, _checks(names, ["CAA", "Aff"], backbone)),
            AblationVariant(table, "CAA+Aux+Aff", {"addon": "caa"}, _checks(names, names, backbone)),
        ]  # fmt: skip
        return AblationTable(table, "loss function (auxiliary / affinity loss)", variants, [MIOU], "Variant",
                             _single(THESIS_3_4), notes=notes, measure=_miou)  # fmt: skip
    if table == "3.7":  # CAA on mainstream heads; one benchmark column: the configured dataset
        benchmark = (params.get("report") or {}).get("benchmark") or benchmark_name(manifest)
        heads = list(params.get("table_3_7_heads") or HEAD_LABELS)
        unknown = [h for h in heads if h not in HEAD_LABELS]
        if unknown:
            raise KeyError(f"table_3_7_heads: no Table 3.7 row for {unknown}; known heads: {list(HEAD_LABELS)}")
        variants, gains, thesis = [], {}, {}
        for name in heads:
            label = HEAD_LABELS[name]
            for row, addon in ((label, None), (f"{label}+CAA", "caa")):
                variants.append(AblationVariant(table, row, {"model": {"head": name}, "addon": addon}, {"Backbone": backbone}))
                thesis[row] = dict(zip(THESIS_BENCHMARKS, THESIS_3_7[row]))
            gains[f"{label}+CAA"] = label
        missing = [b for b in THESIS_BENCHMARKS]
        table_notes = [n for n in notes if not n.startswith("head:")]
        table_notes.insert(0, f"measured on {benchmark}; the thesis's {', '.join(missing)} columns cannot be measured here and are omitted (their numbers are shown as 'thesis …' for reference)")
        return AblationTable(
            table, "CAA integrated into mainstream frameworks", variants, [benchmark], "Method", thesis, gains,
            table_notes, measure=lambda per_class: {benchmark: summarize_per_class(per_class)["mIoU"]},
        )  # fmt: skip
    raise KeyError(f"unknown chapter 3 ablation table {table!r}; known: {TABLE_IDS}")
