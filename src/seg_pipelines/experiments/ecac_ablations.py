"""The chapter 4 ablation tables: fixed columns and ECAC switches of each variant; row labels and the
thesis's numbers (Tables 4.2-4.5: Pascal-Context val, FCN / DeepLabV3+ ResNet-50, single scale) are
:mod:`seg_pipelines.thesis_tables`.

Every ECAC variant spells out all switched arguments of
:class:`seg_pipelines.models.ecac.ExtendedContextAwareClassifier` (loss weights, memory update,
calibration, re-weighting), so the same setting in two tables has the same configuration and is
trained once per seed (shared checkpoint folder).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
from matplotlib.figure import Figure

from seg_pipelines.engine import ablations
from seg_pipelines.engine.ablations import AblationTable, AblationVariant
from seg_pipelines.experiments.closed_set import (
    GROUPS,
    benchmark_name,
    build_split_dataset,
    group_miou,
    summarize_per_class,
)
from seg_pipelines.experiments.closed_set_ablations import (
    ClosedSetSummaryNode,
    ClosedSetVariantNode,
    closed_set_budget_notes,
    closed_set_settings,
    evaluation_index,
    report_closed_set_table,
    sample_pixel_features,
    train_closed_set_variant,
    tsne_embedding,
)
from seg_pipelines.models.heads import head_display_name
from seg_pipelines.thesis_tables import MIOU, TABLES, ablation_tables

TICK = "✓"
TABLE_IDS = tuple(t.id for t in ablation_tables("ecac_ablations"))  # 4.8 per class, its own layout: report_table
THESIS_SETTING = (
    "the thesis's numbers are Pascal-Context val (Tables 4.2-4.5; 4.7 also ADE20K / COCO-Stuff10K), ResNet-50, "
    "~110 epochs at batch 16; a reference for direction only, not comparable to this budget"
)
SWITCHES = (
    "kl_weight",
    "intra_variance_weight",
    "memory_loss_weight",
    "memory_update",
    "use_calibration",
    "use_reweighting",
)


def head_label(head: str) -> str:
    """Row label of ``head``: its name as the thesis's tables spell it (Tables 4.5, 4.7, 4.8)."""
    return head_display_name(head, thesis=True)


def ecac_cfg(params: Mapping[str, Any], **changes: Any) -> dict[str, Any]:
    """All :data:`SWITCHES` of the configured ECAC (``params.addon.cfg``) with ``changes`` applied,
    numbers as floats (so equal settings hash equal)."""
    base = dict((params.get("addon") or {}).get("cfg") or {})
    defaults = {
        "kl_weight": 1.0,
        "intra_variance_weight": 50.0,
        "memory_loss_weight": 1.0,
        "memory_update": "gt_mean",
        "use_calibration": True,
        "use_reweighting": True,
    }
    cfg = {key: base.get(key, defaults[key]) for key in SWITCHES} | changes
    return {k: float(v) if isinstance(v, (int, float)) and not isinstance(v, bool) else v for k, v in cfg.items()}


def _ecac(
    params: Mapping[str, Any], head: str | None = None, class_weights: bool = True, **changes: Any
) -> dict[str, Any]:
    overrides: dict[str, Any] = {
        "addon": "ecac",
        "addon_cfg": ecac_cfg(params, **changes),
        "class_weights": class_weights,
    }
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


def table_4_3_rows(alphas: Sequence[float], betas: Sequence[float]) -> list[tuple[str, float, float]]:
    """(row label, α, β) of Table 4.3: no KL, then α sweep (β = 0), then L_KL and the β sweep (α = 1)."""
    base = "L_{rceS} + L_{rceT} + L_M"
    rows = [(base, 0.0, 0.0)]
    rows += [(f"{base} + {a:g} · L_{{KL}}", float(a), 0.0) for a in alphas]
    rows.append((f"{base} + L_{{KL}}", 1.0, 0.0))
    rows += [(f"{base} + L_{{KL}} + {b:g} · L_{{iv}}", 1.0, float(b)) for b in betas]
    return rows


def build_table(
    table: str,
    params: Mapping[str, Any],
    manifest: Mapping[str, Any],
    notes: Sequence[str] = (),
    class_statistics: pd.DataFrame | None = None,
) -> AblationTable:
    """The :class:`AblationTable` of thesis Table ``table`` (one of :data:`TABLE_IDS`)
    under ``params`` (the ``ecac_ablations`` parameter block). Table 4.8's columns and measure come
    from ``class_statistics`` (its representative classes); without it the table has its rows only."""
    backbone = str(params["model"].get("backbone", "resnet50c"))
    head = str(params["model"].get("head", "fcn"))
    if table == "4.8":
        return table_4_8_spec(params, class_statistics, notes)
    notes = list(notes) + [THESIS_SETTING]
    if table == "4.2":  # loss combinations of eq. 4.21 (L_mse is the intra-variance term L_iv)
        names = ("Baseline", "ECAC", "L_{rce}", "L_{mem}", "L_{KL}", "L_{mse}")
        specs = [  # (ticked columns, overrides) of the thesis's rows, in its order
            (("Baseline",), _plain()),
            (("Baseline", "L_{rce}"), _plain(class_weights=True)),
            (names[:3], _ecac(params, memory_loss_weight=0.0, kl_weight=0.0, intra_variance_weight=0.0)),
            (names[:4], _ecac(params, kl_weight=0.0, intra_variance_weight=0.0)),
            (names[:5], _ecac(params, intra_variance_weight=0.0)),
            (names, _ecac(params)),
        ]
        printed = TABLES[table]
        variants = [
            AblationVariant(table, row, o, {n: TICK if n in on else "" for n in names})
            for row, (on, o) in zip(printed.rows, specs, strict=True)
        ]
        return AblationTable(
            table,
            f"loss combinations ({head_label(head)})",
            variants,
            [MIOU],
            "Variant",
            printed.thesis,
            notes=notes,
            measure=_miou,
        )
    if table == "4.3":  # α (KL) and β (intra-variance) of eq. 4.21
        sweep = params.get("table_4_3") or {}
        rows = table_4_3_rows(sweep.get("alphas", (0.1, 1, 10)), sweep.get("betas", (50, 100, 200)))
        variants = [
            AblationVariant(table, row, _ecac(params, kl_weight=a, intra_variance_weight=b)) for row, a, b in rows
        ]
        printed = TABLES[table].thesis  # by position: the thesis's α / β sweep, in table_4_3_rows order
        thesis = dict(zip([r[0] for r in rows], printed.values())) if len(rows) == len(printed) else None
        return AblationTable(
            table,
            f"KL weight α and intra-variance (MSE) weight β ({head_label(head)} + ECAC)",
            variants,
            [MIOU],
            "Loss",
            thesis,
            notes=notes,
            measure=_miou,
        )
    if table == "4.4":  # memory update: GT-mask class means (eq. 4.1) vs MCIBI's cosine weighting
        printed = TABLES[table]
        overrides = [_plain(), _ecac(params, memory_update="cosine"), _ecac(params, memory_update="gt_mean")]
        variants = [
            AblationVariant(table, row, o, {"Backbone": backbone})
            for row, o in zip(printed.rows, overrides, strict=True)
        ]
        return AblationTable(
            table,
            f"memory bank update strategy (Baseline = {head_label(head)})",
            variants,
            [MIOU],
            "Method",
            printed.thesis,
            comparisons=[
                (variants[1].row, variants[0].row),
                (variants[2].row, variants[0].row),
                (variants[2].row, variants[1].row),
            ],
            notes=notes,
            measure=_miou,
        )
    if table == "4.5":  # output calibration, eq. 4.9-4.10
        name = str(params.get("table_4_5_head", "deeplabv3plus"))
        label = head_label(name)
        rows = [label, f"{label} + ECAC", f"{label} + ECAC + Calibration"]
        variants = [
            AblationVariant(table, rows[0], _plain(name), {"Backbone": backbone}),
            AblationVariant(table, rows[1], _ecac(params, name, use_calibration=False), {"Backbone": backbone}),
            AblationVariant(table, rows[2], _ecac(params, name, use_calibration=True), {"Backbone": backbone}),
        ]
        printed = TABLES[table].thesis
        thesis = {row: printed[row] for row in rows if row in printed}
        comparisons = [(rows[1], rows[0]), (rows[2], rows[0]), (rows[2], rows[1])]
        return AblationTable(
            table, "output calibration", variants, [MIOU], "Method", thesis, comparisons, notes, measure=_miou
        )
    if table == "4.7":  # ECAC on mainstream heads; one benchmark column: the configured dataset
        benchmark = (params.get("report") or {}).get("benchmark") or benchmark_name(manifest)
        heads = list(params.get("table_4_7_heads") or ("fcn", "upernet", "pspnet", "deeplabv3plus"))
        printed = TABLES[table]
        variants, comparisons, thesis = [], [], {}
        for name in heads:
            label = head_label(name)
            for row, overrides in ((label, _plain(name)), (f"{label} + ECAC", _ecac(params, name))):
                variants.append(AblationVariant(table, row, overrides, {"Backbone": backbone}))
                if row in printed.numbers:
                    thesis[row] = printed.thesis[row]
            comparisons.append((f"{label} + ECAC", label))
        notes = [
            f"measured on {benchmark}; the thesis's {', '.join(printed.columns)} columns cannot be measured here "
            "and are omitted (their numbers are shown as 'thesis …' for reference)",
            *notes,
        ]
        return AblationTable(
            table,
            "ECAC integrated into mainstream frameworks",
            variants,
            [benchmark],
            "Method",
            thesis or None,
            comparisons,
            notes,
            measure=lambda per_class: {benchmark: summarize_per_class(per_class)["mIoU"]},
        )
    raise KeyError(f"unknown chapter 4 ablation table {table!r}; known: {TABLE_IDS}")


# --- Table 4.8 ------------------------------------------------------------------------------------

GROUP_TITLES = {"head": "Major", "mid": "Moderate", "tail": "Minor"}


def class_column(name: str, frequency: float) -> str:
    """``wall(15.80%)``: a Table 4.8 column, the class and its share of training pixels."""
    return f"{name}({100 * float(frequency):.2f}%)"


def per_class_variants(params: Mapping[str, Any]) -> tuple[str, list[AblationVariant]]:
    """Table 4.8's two rows: the configured head and the same head with ECAC."""
    name = str(params.get("table_4_8_head", "deeplabv3plus"))
    label = head_label(name)
    return label, [
        AblationVariant("4.8", label, _plain(name)),
        AblationVariant("4.8", f"{label} + ECAC", _ecac(params, name)),
    ]


# --- Table 4.8 (per-class IoU by frequency group) and Figure 4.7 (t-SNE) ----------------------------

PIPELINE = "ecac_ablations"


def _group_members(class_statistics: pd.DataFrame) -> dict[str, pd.DataFrame]:
    table = class_statistics.sort_values("rank")
    members = {g: table[table["table_4_8_group"] == g] for g in GROUPS}
    if all(m.empty for m in members.values()):
        raise ValueError("class_statistics has no Table 4.8 groups (table_4_8_group): too few labelled classes")
    return members


def table_4_8_spec(
    params: Mapping[str, Any], class_statistics: pd.DataFrame | None, notes: Sequence[str] = ()
) -> AblationTable:
    """Table 4.8's two rows (:func:`per_class_variants`) with, given ``class_statistics``, the
    representative classes' IoU and each group's mIoU as columns and the measure computing them."""
    label, variants = per_class_variants(params)
    if class_statistics is None:
        return AblationTable("4.8", "per-class IoU", variants, [MIOU], "Method", notes=list(notes))
    members = _group_members(class_statistics)
    columns = {g: [class_column(n, f) for n, f in zip(m["name"], m["frequency"])] for g, m in members.items()}

    def measure(per_class: pd.DataFrame) -> dict[str, float]:
        iou = per_class.set_index("class_id")["iou"]
        values: dict[str, float] = {}
        for group, frame in members.items():
            ids = frame["class_id"].astype(int).tolist()
            values.update({c: 100.0 * float(iou[i]) for c, i in zip(columns[group], ids)})
            values[f"{group} mIoU(%)"] = group_miou(iou[ids], [group] * len(ids))[group]
        return values

    measured = [c for g in members for c in columns[g] + [f"{g} mIoU(%)"]]
    return AblationTable(
        "4.8",
        f"per-class IoU of major / moderate / minor classes ({label} vs + ECAC)",
        variants,
        measured,
        "Method",
        notes=list(notes),
        measure=measure,
    )


def report_table(
    spec: AblationTable,
    results: Sequence[ablations.VariantResult],
    params: Mapping[str, Any],
    manifest: Mapping[str, Any],
    class_statistics: pd.DataFrame,
) -> tuple[pd.DataFrame, pd.DataFrame, str, dict[str, float]]:
    """The summary of one chapter 4 table: Table 4.8's per-group layout, the others as
    :func:`~seg_pipelines.experiments.closed_set_ablations.report_closed_set_table`."""
    if spec.table != "4.8":
        return report_closed_set_table(spec, results, params, manifest, class_statistics)
    return report_table_4_8(spec, results, params, manifest, class_statistics)


def report_table_4_8(
    spec: AblationTable,
    results: Sequence[ablations.VariantResult],
    params: Mapping[str, Any],
    manifest: Mapping[str, Any],
    class_statistics: pd.DataFrame,
) -> tuple[pd.DataFrame, pd.DataFrame, str, dict[str, float]]:
    """Table 4.8: per-class IoU of the representative head / mid / tail classes (``class_statistics``
    ``table_4_8_group``, data_preparation) and each group's mIoU, baseline vs + ECAC, mean ± std over
    seeds, each group's gain judged against the thesis's. Returns (tidy table: Group, Method, Class,
    IoU(%); runs; markdown; metrics)."""
    seeds = ablations.resolve_seeds(params.get("seeds", 3))
    rows = spec.rows
    label = rows[0]
    members = _group_members(class_statistics)
    columns = {g: [class_column(n, f) for n, f in zip(m["name"], m["frequency"])] for g, m in members.items()}
    report = params.get("report") or {}
    decimals, show_thesis = int(report.get("decimals", 2)), bool(report.get("show_thesis", True))
    notes = closed_set_budget_notes(params, manifest, seeds) + [
        "groups: the representative classes of class_statistics (table_4_8_group: highest-, median- and lowest-ratio "
        "classes of the training split); the ratio is the class's share of labelled training pixels; "
        "'–' = class absent "
        "from the evaluated images",
        THESIS_SETTING.replace(
            "Tables 4.2-4.5; 4.7 also ADE20K / COCO-Stuff10K",
            "Table 4.8: ADE20K, other classes; only the group mIoU is comparable in kind",
        ),
    ]
    printed = TABLES["4.8"].thesis  # (DeeplabV3plus, + ECAC), by position
    sections, tidy = [f"## Table 4.8: {spec.title}", ""], []
    for group, frame in members.items():
        if frame.empty:
            continue
        table = ablations.summarise_ablation(results, rows, columns[group] + [f"{group} mIoU(%)"], decimals)
        table = table.rename(columns={f"{group} mIoU(%)": "mIoU(%)"})
        if show_thesis and label == head_label("deeplabv3plus"):  # the head of the thesis's Table 4.8
            table["thesis mIoU(%)"] = [f"{v[f'{group} mIoU(%)']:.{decimals}f}" for v in printed.values()]
        table.index.name = f"Method ({GROUP_TITLES[group]} Class)"
        sections.append(ablations.ablation_markdown(table, ""))
        for row in table.index:
            tidy += [
                {"Group": GROUP_TITLES[group], "Method": row, "Class": c, "IoU(%)": table.loc[row, c]}
                for c in table.columns
            ]
    # the thesis's finding per group: + ECAC scores higher than the head alone (Table 4.8 group mIoU)
    thesis = dict(zip(rows, printed.values()))
    findings = [
        finding
        for group, frame in members.items()
        if not frame.empty
        for finding in ablations.table_findings(rows, [(rows[1], rows[0])], f"{group} mIoU(%)", thesis)
    ]
    rule = report.get("verdict_rule", "t95")
    verdicts = ablations.judge_findings(results, findings, rule, decimals)
    sections += [f"- {note}" for note in notes]
    sections += [f"- {ablations.counts_line(ablations.verdict_counts(verdicts), rule)}", ""]
    sections.append(ablations.verdicts_markdown(verdicts, decimals))
    markdown = "\n".join(sections) + "\n"
    metrics = ablations.ablation_metrics(results) | ablations.verdict_metrics("table_4_8", verdicts)
    return pd.DataFrame(tidy), ablations.ablation_long_table(results), markdown, metrics


def plot_feature_tsne(
    params: dict[str, Any], manifest: dict[str, Any], index: pd.DataFrame, class_statistics: pd.DataFrame
) -> tuple[Figure, dict[str, float]]:
    """Figure 4.7: t-SNE of decode-head pixel features of randomly chosen classes, baseline (left)
    vs + ECAC (right), first seed; plus the silhouette score of each feature space (higher = tighter,
    better separated clusters: the figure's claim as a number)."""
    from sklearn.metrics import silhouette_score

    options = dict(params.get("figure_4_7") or {})
    head = str(options.get("head", "deeplabv3plus"))
    seed = ablations.resolve_seeds(params.get("seeds", 3))[0]
    settings = closed_set_settings(params)
    evaluation = settings["evaluation"]
    split = evaluation.get("split", "val")
    eval_index = evaluation_index(index, evaluation)
    present = sorted(
        {int(c) for classes in eval_index.loc[eval_index["split"] == split, "classes_present"] for c in classes}
    )
    present = [c for c in present if c < int(manifest["num_classes"])]
    if len(present) < 2:
        raise ValueError(f"Figure 4.7 needs at least 2 classes in the {split} images, found {present}")
    rng = np.random.default_rng(int(options.get("class_seed", 0)))
    classes = sorted(
        rng.choice(present, size=min(int(options.get("classes", 10)), len(present)), replace=False).tolist()
    )
    dataset = build_split_dataset(eval_index, manifest, split, settings["augmentation"], train=False)
    names = list(manifest["class_names"])
    label = head_label(head)
    figure, axes = plt.subplots(1, 2, figsize=(11, 5))
    metrics: dict[str, float] = {}
    cmap = plt.get_cmap("tab10" if len(classes) <= 10 else "tab20")
    for axis, (tag, title, overrides) in zip(
        axes, (("baseline", label, _plain(head)), ("ecac", f"{label} + ECAC", _ecac(params, head)))
    ):
        model, _ = train_closed_set_variant(settings, overrides, seed, manifest, index, class_statistics)
        features, labels = sample_pixel_features(
            model,
            dataset,
            classes,
            int(options.get("pixels_per_class", 100)),
            seed,
            ignore_index=int(manifest["ignore_index"]),
        )
        embedding = tsne_embedding(features, seed, float(options.get("perplexity", 30.0)))
        if len(set(labels.tolist())) > 1:
            metrics[f"figure_4_7/{tag}_silhouette"] = float(silhouette_score(features, labels))
        for k, c in enumerate(classes):
            mask = labels == c
            axis.scatter(embedding[mask, 0], embedding[mask, 1], s=6, color=cmap(k % cmap.N), label=names[c])
        score = metrics.get(f"figure_4_7/{tag}_silhouette", float("nan"))
        axis.set_title(f"({'ab'[tag == 'ecac']}) {title}  silhouette {score:.3f}")
        axis.set_xticks([])
        axis.set_yticks([])
    axes[1].legend(loc="center left", bbox_to_anchor=(1.0, 0.5), fontsize=8, markerscale=2)
    figure.suptitle(f"Figure 4.7: t-SNE of decode-head features ({len(classes)} classes, seed {seed})")
    figure.tight_layout()
    return figure, metrics


def combine_markdown(params: dict[str, Any], figure_metrics: dict[str, float], *items: Any) -> str:
    """All tables of the chapter (``items``: their markdown, then their metrics, same order) with
    the chapter's verdict counts, and the Figure 4.7 link."""
    figure = ["## Figure 4.7: feature distributions (t-SNE)", "", "![Figure 4.7](ecac_ablations/figure_4_7.png)", ""]
    figure += [f"- {key.split('/')[-1]}: {value:.3f}" for key, value in sorted(figure_metrics.items())]
    text = ablations.ChapterReport("Chapter 4 ablations (ECAC)")(params, *items)
    return text + "\n" + "\n".join(figure) + "\n"


def variant_node(table: str, row: int, seed_slot: int) -> ClosedSetVariantNode:
    """The node object of row ``row``, seed slot ``seed_slot`` of Table ``table`` (the pipeline's fan-out)."""
    return ClosedSetVariantNode(build_table, table, row, seed_slot, "ecac_ablations", "ecac")


def summary_node(table: str, row_slots: int, seed_slots: int) -> ClosedSetSummaryNode:
    """The summary node object of Table ``table`` (Table 4.8 in its own layout: :func:`report_table`)."""
    return ClosedSetSummaryNode(build_table, table, "ecac_ablations", row_slots, seed_slots, report_table)
