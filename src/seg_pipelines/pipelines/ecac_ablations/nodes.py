"""Nodes of ``ecac_ablations``: Tables 4.2-4.5, 4.7 (one node each), the per-class Table 4.8 and
the Figure 4.7 t-SNE (thin wrappers over ``engine.ablations`` / ``engine.closed_set``)."""

from __future__ import annotations

from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402

from seg_pipelines.engine import ablations  # noqa: E402
from seg_pipelines.engine.closed_set import GROUPS, build_split_dataset, group_miou  # noqa: E402
from seg_pipelines.pipelines.ecac_ablations.tables import (  # noqa: E402
    GROUP_TITLES,
    THESIS_4_8_GROUP_MIOU,
    THESIS_SETTING,
    _ecac,
    _plain,
    build_table,
    class_column,
    head_label,
    per_class_variants,
)

PIPELINE = "ecac_ablations"


def table_node(table: str):
    """Node function of thesis Table ``table``: (table CSV, per-seed runs CSV, markdown, metrics)."""
    return ablations.closed_set_table_node(build_table, table, PIPELINE, "ecac")


def _group_members(class_statistics: pd.DataFrame) -> dict[str, pd.DataFrame]:
    table = class_statistics.sort_values("rank")
    members = {g: table[table["table_4_8_group"] == g] for g in GROUPS}
    if all(m.empty for m in members.values()):
        raise ValueError("class_statistics has no Table 4.8 groups (table_4_8_group): too few labelled classes")
    return members


def run_table_4_8(
    params: dict[str, Any], manifest: dict[str, Any], index: pd.DataFrame, class_statistics: pd.DataFrame
) -> tuple[pd.DataFrame, pd.DataFrame, str, dict[str, float]]:
    """Table 4.8: per-class IoU of the representative head / mid / tail classes (``class_statistics``
    ``table_4_8_group``, data_preparation) and each group's mIoU, baseline vs + ECAC, mean ± std over
    seeds. Returns (tidy table: Group, Method, Class, IoU(%); runs; markdown; metrics)."""
    seeds = ablations.resolve_seeds(params.get("seeds", 3))
    label, variants = per_class_variants(params)
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

    runner = ablations.closed_set_variant_runner(ablations.closed_set_settings(params), manifest, index, class_statistics, measure)
    results = ablations.run_ablation(variants, seeds, runner, name=f"{PIPELINE}/table_4_8",
                                     tags=ablations.closed_set_tags(params, manifest, "ecac"),
                                     progress=bool(params.get("progress", True)))  # fmt: skip
    report = params.get("report") or {}
    decimals, show_thesis = int(report.get("decimals", 2)), bool(report.get("show_thesis", True))
    rows = [v.row for v in variants]
    notes = ablations.closed_set_budget_notes(params, manifest, seeds) + [
        "groups: the representative classes of class_statistics (table_4_8_group: highest-, median- and lowest-ratio "
        "classes of the training split); the ratio is the class's share of labelled training pixels; '–' = class absent "
        "from the evaluated images",
        THESIS_SETTING.replace("Tables 4.2-4.5; 4.7 also ADE20K / COCO-Stuff10K", "Table 4.8: ADE20K, other classes; only the group mIoU is comparable in kind"),
    ]  # fmt: skip
    sections, tidy = [f"## Table 4.8: per-class IoU of major / moderate / minor classes ({label} vs + ECAC)", ""], []
    for group, frame in members.items():
        if frame.empty:
            continue
        table = ablations.summarise_ablation(results, rows, columns[group] + [f"{group} mIoU(%)"], decimals)
        table = table.rename(columns={f"{group} mIoU(%)": "mIoU(%)"})
        if show_thesis and label == "DeeplabV3plus":
            table["thesis mIoU(%)"] = [f"{v:.{decimals}f}" for v in THESIS_4_8_GROUP_MIOU[group]]
        table.index.name = f"Method ({GROUP_TITLES[group]} Class)"
        sections.append(ablations.ablation_markdown(table, ""))
        for row in table.index:
            tidy += [{"Group": GROUP_TITLES[group], "Method": row, "Class": c, "IoU(%)": table.loc[row, c]} for c in table.columns]
    sections += [f"- {note}" for note in notes]
    markdown = "\n".join(sections) + "\n"
    return pd.DataFrame(tidy), ablations.ablation_long_table(results), markdown, ablations.ablation_metrics(results)


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
    settings = ablations.closed_set_settings(params)
    evaluation = settings["evaluation"]
    split = evaluation.get("split", "val")
    eval_index = ablations.evaluation_index(index, evaluation)
    present = sorted({int(c) for classes in eval_index.loc[eval_index["split"] == split, "classes_present"] for c in classes})
    present = [c for c in present if c < int(manifest["num_classes"])]
    if len(present) < 2:
        raise ValueError(f"Figure 4.7 needs at least 2 classes in the {split} images, found {present}")
    rng = np.random.default_rng(int(options.get("class_seed", 0)))
    classes = sorted(rng.choice(present, size=min(int(options.get("classes", 10)), len(present)), replace=False).tolist())
    dataset = build_split_dataset(eval_index, manifest, split, settings["augmentation"], train=False)
    names = list(manifest["class_names"])
    label = head_label(head)
    figure, axes = plt.subplots(1, 2, figsize=(11, 5))
    metrics: dict[str, float] = {}
    cmap = plt.get_cmap("tab10" if len(classes) <= 10 else "tab20")
    for axis, (tag, title, overrides) in zip(axes, (("baseline", label, _plain(head)), ("ecac", f"{label} + ECAC", _ecac(params, head)))):
        model, _ = ablations.train_closed_set_variant(settings, overrides, seed, manifest, index, class_statistics)
        features, labels = ablations.sample_pixel_features(
            model, dataset, classes, int(options.get("pixels_per_class", 100)), seed, ignore_index=int(manifest["ignore_index"])
        )
        embedding = ablations.tsne_embedding(features, seed, float(options.get("perplexity", 30.0)))
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


def combine_markdown(figure_metrics: dict[str, float], *tables: str) -> str:
    """All tables of the chapter and the Figure 4.7 link in one markdown file."""
    figure = ["## Figure 4.7: feature distributions (t-SNE)", "", "![Figure 4.7](ecac_ablations/figure_4_7.png)", ""]
    figure += [f"- {key.split('/')[-1]}: {value:.3f}" for key, value in sorted(figure_metrics.items())]
    return "# Chapter 4 ablations (ECAC)\n\n" + "\n".join(tables) + "\n" + "\n".join(figure) + "\n"
