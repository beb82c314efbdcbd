"""Closed-set ablation variants (chapters 3-4): one variant = a model configuration (head, add-on,
add-on settings, class weights) trained and evaluated with the closed-set protocol, for the generic
runner of :mod:."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from seg_pipelines.datasets.index import data_digest
from seg_pipelines.engine.ablations import (
    AblationTable,
    AblationVariant,
    ResultCache,
    VariantResult,
    check_slots,
    report_ablation_table,
    resolve_seeds,
    result_record,
    results_from_records,
    run_one,
)
from seg_pipelines.engine.training import project_relative
from seg_pipelines.experiments import closed_set


def closed_set_variant_config(
    settings: Mapping[str, Any],
    overrides: Mapping[str, Any],
    manifest: Mapping[str, Any],
    class_statistics: pd.DataFrame,
) -> tuple[dict[str, Any], list[float] | None]:
    """Model configuration of one closed-set variant and the main-CE class weights (or None).

    ``settings``: the pipeline's ``model`` block and ``addon: {name, cfg, class_weights_from_statistics}``.
    ``overrides`` (all optional): ``model`` (merged into the model block, e.g. ``{"head": "pspnet"}``),
    ``addon`` (add-on name, ``None`` = the plain head), ``addon_cfg`` (merged into ``addon.cfg``),
    ``class_weights`` (use the eq. 4.14 weights of ``class_statistics``: inside the add-on when there
    is one — ECAC's L_rce, eq. 4.13 — else on the segmentor's main CE).
    """
    unknown = set(overrides) - {"model", "addon", "addon_cfg", "class_weights"}
    if unknown:
        raise KeyError(
            f"unknown closed-set variant overrides {sorted(unknown)}; known: model, addon, addon_cfg, class_weights"
        )
    addon_settings = dict(settings.get("addon") or {})
    addon = overrides.get("addon", addon_settings.get("name"))
    use_weights = bool(
        overrides.get("class_weights", addon_settings.get("class_weights_from_statistics", False) and addon is not None)
    )
    num_classes, ignore_index = int(manifest["num_classes"]), int(manifest["ignore_index"])
    weights = closed_set.class_weights_from_statistics(class_statistics, num_classes) if use_weights else None
    model = {**dict(settings["model"]), **dict(overrides.get("model") or {})}
    addon_cfg = None
    if addon is not None:
        addon_cfg = {**dict(addon_settings.get("cfg") or {}), **dict(overrides.get("addon_cfg") or {})}
        if weights is not None:
            addon_cfg["class_weights"] = weights
    config = closed_set.closed_set_model_config(
        model, num_classes=num_classes, ignore_index=ignore_index, addon=addon, addon_cfg=addon_cfg
    )
    return config, (weights if addon is None else None)


def evaluation_index(index: pd.DataFrame, evaluation: Mapping[str, Any]) -> pd.DataFrame:
    """The index with the evaluation split cut to its first ``evaluation.max_images`` samples
    (all when absent/null): a budget knob, the same images for every variant."""
    limit = evaluation.get("max_images")
    if limit is None:
        return index
    split = evaluation.get("split", "val")
    rows = index[index["split"] == split]
    if rows.empty:
        raise ValueError(f"no samples of split {split!r} to evaluate on")
    return pd.concat([index[index["split"] != split], rows.head(int(limit))])


def train_closed_set_variant(
    settings: Mapping[str, Any],
    overrides: Mapping[str, Any],
    seed: int,
    manifest: Mapping[str, Any],
    index: pd.DataFrame,
    class_statistics: pd.DataFrame,
):
    """Train (or reuse: identical settings share a checkpoint folder) one variant with ``seed``;
    returns ``(model in eval mode, training curve)``."""
    config, weights = closed_set_variant_config(settings, overrides, manifest, class_statistics)
    return _train_config(settings, config, weights, seed, manifest, index)


def _train_config(settings, config, weights, seed, manifest, index):
    training = {**dict(settings["training"]), "seed": int(seed)}
    checkpoint, curve = closed_set.train_segmentor(
        config,
        manifest,
        index,
        training,
        settings["augmentation"],
        settings["checkpoint_root"],
        show_progress=False,
        class_weights=weights,
    )
    return closed_set.load_segmentor(checkpoint, num_classes=int(manifest["num_classes"])), curve


def closed_set_variant_runner(
    settings: Mapping[str, Any],
    manifest: Mapping[str, Any],
    index: pd.DataFrame,
    class_statistics: pd.DataFrame,
    measure: Callable[[pd.DataFrame], Mapping[str, float]] | None = None,
    cache: bool = True,
) -> Callable[[AblationVariant, int], dict[str, float]]:
    """``run_variant`` for :func:`run_ablation` / :func:`run_one`: train the variant
    (``variant.overrides``, see :func:`closed_set_variant_config`) with the seed, evaluate it with the
    closed-set protocol and return ``measure(per_class_table)`` plus ``mIoU``, ``mAcc``, ``aAcc`` and
    the final ``train_loss``. ``settings``: ``model``, ``addon``, ``training``, ``augmentation``,
    ``evaluation``, ``checkpoint_root``. Finished trainings are reused from ``checkpoint_root``; finished
    evaluations from ``checkpoint_root/results`` (:class:`ResultCache`, keyed by every setting that
    determines them: a row repeated across tables, e.g. FCN+CAA in Tables 3.2, 3.3, 3.4 and 3.7, is
    trained and evaluated once per seed, by whichever node gets there first)."""
    evaluation = dict(settings["evaluation"])
    eval_index = evaluation_index(index, evaluation)
    split = evaluation.get("split", "val")
    context = {
        "dataset": {k: manifest.get(k) for k in ("family", "reader_kwargs", "num_classes")},
        "trained": data_digest(index, ["train"]),  # the data's content, not its location
        "evaluated": data_digest(eval_index, [split]),
        "evaluation": evaluation,
        "training": dict(settings["training"]),
        "augmentation": dict(settings["augmentation"]),
        "checkpoint_root": project_relative(settings["checkpoint_root"]),
    }
    results = ResultCache(Path(settings["checkpoint_root"]) / "results", enabled=cache)

    def run(variant: AblationVariant, seed: int) -> dict[str, float]:
        config, weights = closed_set_variant_config(settings, variant.overrides, manifest, class_statistics)
        key = ResultCache.key("closed_set_evaluation", config, weights, int(seed), context)
        payload = results.get(key)
        if payload is None:
            model, curve = _train_config(settings, config, weights, seed, manifest, index)
            per_class = closed_set.evaluate_segmentor(
                model, manifest, eval_index, evaluation, settings["augmentation"], show_progress=False
            )
            train_loss = float(curve["loss"].iloc[-1]) if len(curve) else float("nan")
            payload = {"per_class": per_class.to_dict("list"), "train_loss": train_loss}
            results.put(key, payload)
        per_class = pd.DataFrame(payload["per_class"])
        metrics = dict(closed_set.summarize_per_class(per_class)) | {"train_loss": float(payload["train_loss"])}
        if measure is not None:
            metrics.update({k: float(v) for k, v in measure(per_class).items()})
        return metrics

    return run


def sample_pixel_features(
    model,
    dataset,
    classes: Sequence[int],
    per_class: int,
    seed: int = 0,
    batch_size: int = 8,
    ignore_index: int = 255,
) -> tuple[np.ndarray, np.ndarray]:
    """Decode-head features F (the classifier's / add-on's input) of up to ``per_class`` random
    pixels of each class in ``classes``, for the Figure 4.7 t-SNE. Labels are resized (nearest) to
    the feature resolution. Returns ``(features (N, C) float32, labels (N,))``."""
    import torch
    from torch.utils.data import DataLoader

    from seg_pipelines.models.caa import downsample_labels

    wanted = torch.as_tensor(sorted({int(c) for c in classes}), dtype=torch.long)
    if wanted.numel() == 0 or per_class <= 0:
        raise ValueError("sample_pixel_features needs at least one class and per_class > 0")
    chunks: dict[int, list[torch.Tensor]] = {int(c): [] for c in wanted}
    model.eval()
    with torch.no_grad():
        for batch in DataLoader(dataset, batch_size=batch_size, shuffle=False):
            features, _ = model.decode_head.forward_features_with_extras(model.extract_features(batch["image"]))
            labels = downsample_labels(batch["label"].long(), tuple(features.shape[-2:]))
            pixels = features.permute(0, 2, 3, 1).reshape(-1, features.shape[1])
            flat = labels.reshape(-1)
            for c in chunks:
                chunks[c].append(pixels[flat == c])
    generator = np.random.default_rng(seed)
    feats, labs = [], []
    for c, parts in chunks.items():
        members = torch.cat(parts) if parts else torch.empty(0)
        if members.shape[0] == 0:
            continue
        take = generator.choice(members.shape[0], size=min(per_class, members.shape[0]), replace=False)
        feats.append(members[torch.as_tensor(np.sort(take))].numpy().astype(np.float32))
        labs.append(np.full(len(take), c, dtype=np.int64))
    if not feats:
        raise ValueError(f"none of the classes {wanted.tolist()} occurs in the dataset (ignore_index {ignore_index})")
    return np.concatenate(feats), np.concatenate(labs)


def tsne_embedding(features: np.ndarray, seed: int = 0, perplexity: float = 30.0) -> np.ndarray:
    """2-D t-SNE (sklearn, PCA init) of standardised features; perplexity capped below N."""
    from sklearn.manifold import TSNE

    features = np.asarray(features, dtype=np.float64)
    if features.ndim != 2 or features.shape[0] < 3:
        raise ValueError(f"t-SNE needs a (N >= 3, C) feature matrix, got {features.shape}")
    features = (features - features.mean(0)) / (features.std(0) + 1e-8)
    perplexity = float(min(perplexity, max(1.0, (features.shape[0] - 1) / 3)))
    return TSNE(n_components=2, perplexity=perplexity, init="pca", random_state=seed).fit_transform(features)


def closed_set_settings(params: Mapping[str, Any]) -> dict[str, Any]:
    """The training/evaluation part of a closed-set ablation parameter block (validated)."""
    missing = [k for k in ("model", "training", "augmentation", "evaluation", "checkpoint_root") if k not in params]
    if missing:
        raise KeyError(f"closed-set ablation parameters lack {missing}")
    return {
        k: params[k]
        for k in ("model", "addon", "training", "augmentation", "evaluation", "checkpoint_root")
        if k in params
    }


def closed_set_budget_notes(params: Mapping[str, Any], manifest: Mapping[str, Any], seeds: Sequence[int]) -> list[str]:
    """One line stating dataset, budget, seeds and training/evaluation sizes (for every table)."""
    training, evaluation = params["training"], params["evaluation"]
    images = evaluation.get("max_images")
    return [
        f"dataset: {manifest['family']} ({manifest['num_classes']} classes), {evaluation.get('split', 'val')} split"
        f"{f' (first {images} images)' if images is not None else ''}, {evaluation.get('mode', 'whole')} inference; "
        f"budget '{params.get('budget', 'custom')}': backbone {params['model'].get('backbone')}, "
        f"{training['iterations']} iterations at batch {training['batch_size']}, "
        f"crop {list(params['augmentation'].get('crop_size', []))}; "
        f"mean ± std over seeds {list(seeds)}"
    ]


def closed_set_tags(params: Mapping[str, Any], manifest: Mapping[str, Any], method: str) -> dict[str, str]:
    """MLflow tags shared by every child run of a closed-set chapter (the engine adds
    seed/variant/table per run): method, head, backbone, dataset, vocabulary, budget."""
    return {
        "method": method,
        "head": str(params["model"].get("head", "fcn")),
        "backbone": str(params["model"].get("backbone", "resnet50c")),
        "dataset": closed_set.benchmark_name(manifest),
        "vocabulary": str((manifest.get("reader_kwargs") or {}).get("vocabulary") or "closed-set"),
        "budget": str(params.get("budget", "custom")),
    }


def report_closed_set_table(
    spec: AblationTable,
    results: Sequence[VariantResult],
    params: Mapping[str, Any],
    manifest: Mapping[str, Any],
    class_statistics: pd.DataFrame,
) -> tuple[pd.DataFrame, pd.DataFrame, str, dict[str, float]]:
    """:func:`report_ablation_table` under the ``report`` block (decimals, show_thesis, verdict_rule)."""
    report = params.get("report") or {}
    return report_ablation_table(
        spec,
        results,
        int(report.get("decimals", 2)),
        bool(report.get("show_thesis", True)),
        report.get("verdict_rule", "t95"),
    )


# --- fan-out: one Kedro node per (variant, seed) and one summary node per table -----------------

LAYOUT_MANIFEST = {"family": "synthetic", "num_classes": 0, "ignore_index": 255}


def table_layout(build_table: Callable[..., AblationTable], table: str) -> list[str]:
    """Row labels of ``table`` under the chapter's default settings (``build_table`` with empty
    parameter blocks): the rows of :mod:`seg_pipelines.thesis_tables` the pipeline builds its nodes
    with, before any parameter is read (``tests/pipelines/test_ablation_fanout.py`` compares them)."""
    return build_table(table, {"model": {}, "addon": {}}, LAYOUT_MANIFEST).rows


class ClosedSetVariantNode:
    """Node function ``(params, manifest, index, class_statistics) -> record`` of row ``row`` and
    seed slot ``seed_slot`` of ``table`` (picklable: ParallelRunner, cluster runners). The row is
    taken from ``build_table`` under the run's parameters; a slot the parameters leave empty (fewer
    seeds or rows) returns a ``skipped`` record. The record is :func:`result_record`'s."""

    def __init__(
        self,
        build_table: Callable[..., AblationTable],
        table: str,
        row: int,
        seed_slot: int,
        pipeline: str,
        method: str,
    ) -> None:
        self.build_table, self.table, self.row, self.seed_slot = build_table, table, int(row), int(seed_slot)
        self.pipeline, self.method = pipeline, method
        self.__name__ = f"run_{pipeline}_table_{table.replace('.', '_')}_row{row}_seed{seed_slot}"
        self.__doc__ = f"Thesis Table {table} ({pipeline}): row {row}, seed slot {seed_slot}, trained and evaluated."

    def __call__(
        self, params: dict[str, Any], manifest: dict[str, Any], index: pd.DataFrame, class_statistics: pd.DataFrame
    ) -> dict[str, Any]:
        seeds = resolve_seeds(params.get("seeds", 3))
        spec = self.build_table(self.table, params, manifest, (), class_statistics)
        slot = f"row{self.row}/seed{self.seed_slot}"
        if self.row >= len(spec.variants) or self.seed_slot >= len(seeds):
            return result_record(None, self.table, slot)
        runner = closed_set_variant_runner(
            closed_set_settings(params),
            manifest,
            index,
            class_statistics,
            spec.measure,
            cache=bool(params.get("cache", True)),
        )
        result = run_one(
            spec.variants[self.row],
            seeds[self.seed_slot],
            runner,
            name=f"{self.pipeline}/{spec.key}",
            tags=closed_set_tags(params, manifest, self.method),
        )
        return result_record(result)


class ClosedSetSummaryNode:
    """Node function ``(params, manifest, class_statistics, *records) -> (table, runs, markdown,
    metrics)`` of one thesis table: the records of its variant nodes, summarised by ``report``
    (default :func:`report_closed_set_table`) with the findings' verdicts."""

    def __init__(
        self,
        build_table: Callable[..., AblationTable],
        table: str,
        pipeline: str,
        row_slots: int,
        seed_slots: int,
        report: Callable[..., tuple[pd.DataFrame, pd.DataFrame, str, dict[str, float]]] = report_closed_set_table,
    ) -> None:
        self.build_table, self.table, self.pipeline = build_table, table, pipeline
        self.row_slots, self.seed_slots, self.report = int(row_slots), int(seed_slots), report
        self.__name__ = f"summarise_{pipeline}_table_{table.replace('.', '_')}"
        self.__doc__ = f"Thesis Table {table} ({pipeline}): mean ± std over seeds and the paired verdicts."

    def __call__(
        self, params: dict[str, Any], manifest: dict[str, Any], class_statistics: pd.DataFrame, *records: dict
    ) -> tuple[pd.DataFrame, pd.DataFrame, str, dict[str, float]]:
        seeds = resolve_seeds(params.get("seeds", 3))
        notes = closed_set_budget_notes(params, manifest, seeds)
        spec = self.build_table(self.table, params, manifest, notes, class_statistics)
        check_slots(
            f"{self.pipeline} Table {self.table}", len(spec.variants), self.row_slots, len(seeds), self.seed_slots
        )
        results = results_from_records(records)
        return self.report(spec, results, params, manifest, class_statistics)
