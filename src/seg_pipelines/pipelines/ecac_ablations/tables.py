"""The chapter 4 ablation tables: rows, fixed columns and ECAC switches of each variant, and the
thesis's numbers (Tables 4.2-4.5: Pascal-Context val, FCN / DeepLabV3+ ResNet-50, single scale).

Every ECAC variant spells out all switched arguments of
:class:`seg_pipelines.models.ecac.ExtendedContextAwareClassifier` (loss weights, memory update,
calibration, re-weighting), so the same setting in two tables has the same configuration and is
trained once per seed (shared checkpoint folder).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from seg_pipelines.engine.ablations import AblationTable, AblationVariant
from seg_pipelines.engine.closed_set import HEAD_DISPLAY_NAMES, benchmark_name, summarize_per_class

TICK = "✓"
MIOU = "mIoU(%)"
TABLE_IDS = ("4.2", "4.3", "4.4", "4.5", "4.7")
HEAD_LABELS = {**HEAD_DISPLAY_NAMES, "deeplabv3plus": "DeeplabV3plus"}  # thesis spelling (Tables 4.5, 4.7, 4.8)

THESIS_4_2 = [45.76, 46.56, 49.10, 50.21, 50.43, 50.68]
THESIS_4_3 = [50.21, 50.22, 50.43, 50.30, 50.43, 50.68, 50.58, 50.45]
THESIS_4_4 = {"Baseline": 45.76, "Baseline + ECAC(cosine)": 50.10, "Baseline + ECAC(ours)": 50.68}
THESIS_4_5 = {"DeeplabV3plus": 50.73, "DeeplabV3plus + ECAC": 53.06, "DeeplabV3plus + ECAC + Calibration": 53.56}
THESIS_4_7 = {  # ADE20K, COCO-Stuff, Pascal-Context
    "FCN": (36.10, 34.10, 45.76), "FCN + ECAC": (43.12, 36.68, 50.68),
    "UperNet": (42.05, 35.80, 48.90), "UperNet + ECAC": (45.29, 37.61, 53.13),
    "PSPNet": (42.48, 36.33, 50.21), "PSPNet + ECAC": (45.47, 38.32, 53.47),
    "DeeplabV3plus": (43.95, 36.92, 50.73), "DeeplabV3plus + ECAC": (46.32, 40.19, 53.56),
}  # fmt: skip
THESIS_4_8_GROUP_MIOU = {"head": (78.18, 79.02), "mid": (46.06, 51.59), "tail": (26.75, 31.91)}  # DLV3+, +ECAC
THESIS_BENCHMARKS = ("ADE20K", "COCO-Stuff", "Pascal-Context")
THESIS_SETTING = (
    "the thesis's numbers are Pascal-Context val (Tables 4.2-4.5; 4.7 also ADE20K / COCO-Stuff10K), ResNet-50, "
    "~110 epochs at batch 16; a reference for direction only, not comparable to this budget"
)
SWITCHES = ("kl_weight", "intra_variance_weight", "memory_loss_weight", "memory_update", "use_calibration", "use_reweighting")


def head_label(head: str) -> str:
    return HEAD_LABELS.get(head, head)


def ecac_cfg(params: Mapping[str, Any], **changes: Any) -> dict[str, Any]:
    """All :data:`SWITCHES` of the configured ECAC (``params.addon.cfg``) with ``changes`` applied,
    numbers as floats (so equal settings hash equal)."""
    base = dict((params.get("addon") or {}).get("cfg") or {})
    defaults = {"kl_weight": 1.0, "intra_variance_weight": 50.0, "memory_loss_weight": 1.0, "memory_update": "gt_mean",
                "use_calibration": True, "use_reweighting": True}  # fmt: skip
    cfg = {key: base.get(key, defaults[key]) for key in SWITCHES} | changes
    return {k: float(v) if isinstance(v, (int, float)) and not isinstance(v, bool) else v for k, v in cfg.items()}


def _ecac(params: Mapping[str, Any], head: str | None = None, class_weights: bool = True, **changes: Any) -> dict[str, Any]:
    overrides: dict[str, Any] = {"addon": "ecac", "addon_cfg": ecac_cfg(params, **changes), "class_weights": class_weights}
    if head is not None:
        overrides["model"] = {"head": head}
    return overrides


def _plain(head: str | None = None, class_weights: bool = False) -> dict[str, Any]:
    overrides: dict[str, Any] = {"addon": None, "class_weights": class_weights}
    if head is not None:
        overrides["model"] = {"head": head}
    return overrides


def _miou(per_class) -> dict[str, float]:
    return {MIOU: summarize_per_class(per_class)["mIoU"]}


def _single(rows: Sequence[str], values: Sequence[float]) -> dict[str, dict[str, float]]:
    return {row: {MIOU: value} for row, value in zip(rows, values)}


def table_4_3_rows(alphas: Sequence[float], betas: Sequence[float]) -> list[tuple[str, float, float]]:
    """(row label, α, β) of Table 4.3: no KL, then α sweep (β = 0), then L_KL and the β sweep (α = 1)."""
    base = "L_{rceS} + L_{rceT} + L_M"
    rows = [(base, 0.0, 0.0)]
    rows += [(f"{base} + {a:g} · L_{{KL}}", float(a), 0.0) for a in alphas]
    rows.append((f"{base} + L_{{KL}}", 1.0, 0.0))
    rows += [(f"{base} + L_{{KL}} + {b:g} · L_{{iv}}", 1.0, float(b)) for b in betas]
    return rows


def build_table(table: str, params: Mapping[str, Any], manifest: Mapping[str, Any], notes: Sequence[str] = ()) -> AblationTable:
    """The :class:`AblationTable` of thesis Table ``table`` (one of :data:`TABLE_IDS`) under ``params``
    (the ``ecac_ablations`` parameter block)."""
    backbone = str(params["model"].get("backbone", "resnet50c"))
    head = str(params["model"].get("head", "fcn"))
    notes = list(notes) + [THESIS_SETTING]
    if table == "4.2":  # loss combinations of eq. 4.21 (L_mse is the intra-variance term L_iv)
        names = ("Baseline", "ECAC", "L_{rce}", "L_{mem}", "L_{KL}", "L_{mse}")
        specs = [
            ("Baseline", ("Baseline",), _plain()),
            ("Baseline + L_{rce}", ("Baseline", "L_{rce}"), _plain(class_weights=True)),
            ("ECAC + L_{rce}", names[:3], _ecac(params, memory_loss_weight=0.0, kl_weight=0.0, intra_variance_weight=0.0)),
            ("ECAC + L_{rce} + L_{mem}", names[:4], _ecac(params, kl_weight=0.0, intra_variance_weight=0.0)),
            ("ECAC + L_{rce} + L_{mem} + L_{KL}", names[:5], _ecac(params, intra_variance_weight=0.0)),
            ("ECAC + L_{rce} + L_{mem} + L_{KL} + L_{mse}", names, _ecac(params)),
        ]  # fmt: skip
        variants = [AblationVariant(table, row, o, {n: TICK if n in on else "" for n in names}) for row, on, o in specs]
        return AblationTable(table, f"loss combinations ({head_label(head)})", variants, [MIOU], "Variant",
                             _single([s[0] for s in specs], THESIS_4_2), notes=notes, measure=_miou)  # fmt: skip
    if table == "4.3":  # α (KL) and β (intra-variance) of eq. 4.21
        sweep = params.get("table_4_3") or {}
        rows = table_4_3_rows(sweep.get("alphas", (0.1, 1, 10)), sweep.get("betas", (50, 100, 200)))
        variants = [AblationVariant(table, row, _ecac(params, kl_weight=a, intra_variance_weight=b)) for row, a, b in rows]
        thesis = _single([r[0] for r in rows], THESIS_4_3) if len(rows) == len(THESIS_4_3) else None
        return AblationTable(table, f"KL weight α and intra-variance (MSE) weight β ({head_label(head)} + ECAC)", variants,
                             [MIOU], "Loss", thesis, notes=notes, measure=_miou)  # fmt: skip
    if table == "4.4":  # memory update: GT-mask class means (eq. 4.1) vs MCIBI's cosine weighting
        variants = [
            AblationVariant(table, "Baseline", _plain(), {"Backbone": backbone}),
            AblationVariant(table, "Baseline + ECAC(cosine)", _ecac(params, memory_update="cosine"), {"Backbone": backbone}),
            AblationVariant(table, "Baseline + ECAC(ours)", _ecac(params, memory_update="gt_mean"), {"Backbone": backbone}),
        ]  # fmt: skip
        return AblationTable(table, f"memory bank update strategy (Baseline = {head_label(head)})", variants, [MIOU],
                             "Method", _single(THESIS_4_4, THESIS_4_4.values()), notes=notes, measure=_miou)  # fmt: skip
    if table == "4.5":  # output calibration, eq. 4.9-4.10
        name = str(params.get("table_4_5_head", "deeplabv3plus"))
        label = head_label(name)
        rows = [label, f"{label} + ECAC", f"{label} + ECAC + Calibration"]
        variants = [
            AblationVariant(table, rows[0], _plain(name), {"Backbone": backbone}),
            AblationVariant(table, rows[1], _ecac(params, name, use_calibration=False), {"Backbone": backbone}),
            AblationVariant(table, rows[2], _ecac(params, name, use_calibration=True), {"Backbone": backbone}),
        ]
        thesis = {row: {MIOU: THESIS_4_5[row]} for row in rows if row in THESIS_4_5}
        return AblationTable(table, "output calibration", variants, [MIOU], "Method", thesis, notes=notes, measure=_miou)
    if table == "4.7":  # ECAC on mainstream heads; one benchmark column: the configured dataset
        benchmark = (params.get("report") or {}).get("benchmark") or benchmark_name(manifest)
        heads = list(params.get("table_4_7_heads") or ("fcn", "upernet", "pspnet", "deeplabv3plus"))
        variants, gains, thesis = [], {}, {}
        for name in heads:
            label = head_label(name)
            for row, overrides in ((label, _plain(name)), (f"{label} + ECAC", _ecac(params, name))):
                variants.append(AblationVariant(table, row, overrides, {"Backbone": backbone}))
                if row in THESIS_4_7:
                    thesis[row] = dict(zip(THESIS_BENCHMARKS, THESIS_4_7[row]))
            gains[f"{label} + ECAC"] = label
        notes = [f"measured on {benchmark}; the thesis's {', '.join(THESIS_BENCHMARKS)} columns cannot be measured here "
                 "and are omitted (their numbers are shown as 'thesis …' for reference)", *notes]  # fmt: skip
        return AblationTable(
            table, "ECAC integrated into mainstream frameworks", variants, [benchmark], "Method", thesis or None, gains,
            notes, measure=lambda per_class: {benchmark: summarize_per_class(per_class)["mIoU"]},
        )  # fmt: skip
    raise KeyError(f"unknown chapter 4 ablation table {table!r}; known: {TABLE_IDS} (4.8: per_class_table)")


# --- Table 4.8 ------------------------------------------------------------------------------------

GROUP_TITLES = {"head": "Major", "mid": "Moderate", "tail": "Minor"}


def class_column(name: str, frequency: float) -> str:
    """``wall(15.80%)``: a Table 4.8 column, the class and its share of training pixels."""
    return f"{name}({100 * float(frequency):.2f}%)"


def per_class_variants(params: Mapping[str, Any]) -> tuple[str, list[AblationVariant]]:
    """Table 4.8's two rows: the configured head and the same head with ECAC."""
    name = str(params.get("table_4_8_head", "deeplabv3plus"))
    label = head_label(name)
    return label, [AblationVariant("4.8", label, _plain(name)), AblationVariant("4.8", f"{label} + ECAC", _ecac(params, name))]
