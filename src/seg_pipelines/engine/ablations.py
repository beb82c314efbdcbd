"""Ablation studies: every variant of a thesis table × every seed, summarised as the thesis prints it.

Shared by the ``caa_ablations``, ``ecac_ablations`` and ``lsmseg_ablations`` pipelines::

    variants = [AblationVariant("3.2", "Baseline", {"addon": None}, {"CC": "", "SA": ""}),
                AblationVariant("3.2", "CC+SA", {"addon": "caa"}, {"CC": "✓", "SA": "✓"})]
    results = run_ablation(variants, seeds=[0, 1, 2], run_variant=train_and_evaluate,
                           name="caa_ablations/table_3_2", tags={"method": "caa", "head": "fcn"})
    table = summarise_ablation(results, rows=["Baseline", "CC+SA"], columns=["mIoU"])
    markdown = ablation_markdown(table, "Table 3.2 ...", notes=["3 seeds, synthetic world"])
    long = ablation_long_table(results)          # CSV: one line per (table, row, seed, metric)
    flat = ablation_metrics(results)             # {"table_3_2/CC_SA/mIoU_mean": ...} for MLflow

``run_variant(variant, seed)`` returns the measured numbers keyed by table column name. A variant
that raises is recorded as failed (its error shown in the table), the other variants still run.
When an MLflow run is active (the project hook starts one per ``kedro run``) each variant × seed
is a nested child run carrying the tags, the overrides as parameters and the metrics, so MLflow's
compare view lines the seeds and variants up.

Also here: :class:`AblationTable` / :func:`report_ablation_table` (one thesis table end to end:
rows, thesis reference columns, "(+x.xx)" gains, notes) and the closed-set runner of chapters 3-4
(:func:`closed_set_variant_config`, :func:`closed_set_variant_runner`, :func:`closed_set_table_node`:
train a variant with :func:`seg_pipelines.engine.closed_set.train_segmentor`, evaluate it with the
closed-set protocol), plus pixel-feature sampling and t-SNE for Figure 4.7.
"""

from __future__ import annotations

import json
import logging
import math
import re
import time
import traceback
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from tqdm.auto import tqdm

# the project hook's flattening and MLflow's parameter-length limit (one definition each)
from seg_pipelines.hooks import MAX_PARAM_LENGTH, flatten_dict

logger = logging.getLogger(__name__)

OK = "ok"
FAILED = "failed"


@dataclass(frozen=True)
class AblationVariant:
    """One row of a thesis ablation table.

    ``row`` is the label exactly as the thesis table prints it; ``overrides`` are the parameters that
    define the variant (passed to ``run_variant`` through the variant, logged as MLflow params);
    ``columns`` are fixed, non-measured cells shown before the measured ones (e.g. ``{"CC": "✓"}``).
    """

    table: str
    row: str
    overrides: Mapping[str, Any] = field(default_factory=dict)
    columns: Mapping[str, Any] = field(default_factory=dict)

    def __hash__(self) -> int:  # mappings are not hashable; table and row identify a variant
        return hash((self.table, self.row))


@dataclass
class VariantResult:
    """Outcome of one variant × seed: measured ``metrics`` (table column → number) or the error."""

    variant: AblationVariant
    seed: int
    status: str
    metrics: dict[str, float]
    error: str | None
    seconds: float


# --- running -------------------------------------------------------------------------------------


def mlflow_safe_name(text: str) -> str:
    """``text`` with characters MLflow rejects in metric/param names (``+``, ``=``, ``(``, ``/``…)
    replaced by ``_`` (runs of them collapsed)."""
    safe = re.sub(r"[^\w.\- :]+", "_", str(text)).strip(" _")
    return safe or "_"


def _finite_metrics(metrics: Mapping[str, Any]) -> dict[str, float]:
    numbers = {}
    for key, value in metrics.items():
        if isinstance(value, bool) or not isinstance(value, (int, float, np.floating, np.integer)):
            continue
        if math.isfinite(float(value)):
            numbers[mlflow_safe_name(key)] = float(value)
    return numbers


def _active_mlflow():
    """The ``mlflow`` module when a run is active, else None (MLflow is optional here)."""
    try:
        import mlflow
    except ImportError:  # pragma: no cover - mlflow is a project dependency
        return None
    return mlflow if mlflow.active_run() is not None else None


def _start_child_run(mlflow, run_name: str, tags: Mapping[str, str], overrides: Mapping[str, Any]):
    try:
        run = mlflow.start_run(run_name=run_name, nested=True, tags=dict(tags))
        params = {mlflow_safe_name(k): str(v)[:MAX_PARAM_LENGTH] for k, v in flatten_dict(overrides).items()}
        if params:
            mlflow.log_params(params)
        return run
    except Exception as error:  # tracking trouble must not stop the study
        logger.warning("MLflow: could not start child run %s: %s", run_name, error)
        return None


def _end_child_run(mlflow, result: VariantResult) -> None:
    try:
        metrics = _finite_metrics(result.metrics)
        metrics["seconds"] = result.seconds
        mlflow.log_metrics(metrics)
        mlflow.set_tag("status", result.status)
        if result.error:
            mlflow.set_tag("error", result.error[:5000])
    except Exception as error:
        logger.warning("MLflow: could not log variant %s: %s", result.variant.row, error)
    finally:
        mlflow.end_run(status="FINISHED" if result.status == OK else "FAILED")


def run_ablation(
    variants: Sequence[AblationVariant],
    seeds: Sequence[int],
    run_variant: Callable[[AblationVariant, int], Mapping[str, float]],
    *,
    name: str,
    tags: Mapping[str, str] | None = None,
    progress: bool = True,
) -> list[VariantResult]:
    """Run every variant × seed (variant-major order) and return one :class:`VariantResult` each.

    An exception raised by ``run_variant`` is caught, logged (traceback at debug level) and
    recorded as status ``"failed"`` with ``"<Type>: <message>"``; the other variants still run.
    With an active MLflow run, each variant × seed is a nested child run named
    ``"<name>/<row>/seed<seed>"`` tagged with ``tags`` plus ``ablation``, ``table``, ``variant`` and
    ``seed``, with the variant's overrides as params and its metrics (and ``seconds``).
    """
    variants = list(variants)
    seeds = [int(seed) for seed in seeds]
    if not variants:
        raise ValueError(f"ablation {name!r}: no variants to run")
    if not seeds:
        raise ValueError(f"ablation {name!r}: no seeds given (configure at least one)")
    keys = [(v.table, v.row) for v in variants]
    duplicates = sorted({f"{t}/{r}" for t, r in keys if keys.count((t, r)) > 1})
    if duplicates:
        raise ValueError(f"ablation {name!r}: duplicate variant rows {duplicates}")

    results: list[VariantResult] = []
    jobs = [(variant, seed) for variant in variants for seed in seeds]
    bar = tqdm(jobs, desc=name, disable=not progress)
    for variant, seed in bar:
        bar.set_postfix_str(f"{variant.row} seed {seed}", refresh=False)
        mlflow = _active_mlflow()
        child = None
        if mlflow is not None:
            run_tags = {str(k): str(v) for k, v in (tags or {}).items()}
            run_tags.update({"ablation": name, "table": variant.table, "variant": variant.row, "seed": str(seed)})
            child = _start_child_run(mlflow, f"{name}/{variant.row}/seed{seed}", run_tags, variant.overrides)
        start = time.perf_counter()
        try:
            measured = run_variant(variant, seed)
            if not isinstance(measured, Mapping):
                raise TypeError(f"run_variant must return a mapping of column -> number, got {type(measured).__name__}")
            metrics = {str(k): float(v) for k, v in measured.items()}
            result = VariantResult(variant, seed, OK, metrics, None, time.perf_counter() - start)
        except Exception as error:  # one failed variant must not stop the study
            message = f"{type(error).__name__}: {error}"
            logger.warning("ablation %s: variant %r seed %d failed: %s", name, variant.row, seed, message)
            logger.debug("traceback of %s/%s/seed%d:\n%s", name, variant.row, seed, traceback.format_exc())
            result = VariantResult(variant, seed, FAILED, {}, message, time.perf_counter() - start)
        except BaseException:  # interrupted: close the child run, then stop
            if child is not None:
                mlflow.end_run(status="KILLED")
            raise
        if child is not None:
            _end_child_run(mlflow, result)
        results.append(result)
    failed = sum(r.status == FAILED for r in results)
    logger.info("ablation %s: %d runs, %d failed", name, len(results), failed)
    return results


# --- summaries -----------------------------------------------------------------------------------


def _format_number(value: float, decimals: int) -> str:
    return f"{value:.{decimals}f}" if math.isfinite(value) else "–"


def mean_std(values: Sequence[float], decimals: int = 1) -> str:
    """``"mean ± std"`` (sample std, ddof=1) of the finite values; the plain mean for one value;
    ``"–"`` when none is finite."""
    finite = [float(v) for v in values if v is not None and math.isfinite(float(v))]
    if not finite:
        return "–"
    mean = float(np.mean(finite))
    if len(finite) == 1:
        return _format_number(mean, decimals)
    return f"{_format_number(mean, decimals)} ± {_format_number(float(np.std(finite, ddof=1)), decimals)}"


def _first_line(text: str | None) -> str:
    return (text or "unknown error").strip().splitlines()[0] if (text or "").strip() else "unknown error"


def summarise_ablation(
    results: Sequence[VariantResult],
    rows: Sequence[str],
    columns: Sequence[str],
    decimals: int = 1,
    thesis: Mapping[str, Mapping[str, float]] | None = None,
) -> pd.DataFrame:
    """The thesis table: one row per label of ``rows`` (that order), index named ``row``.

    Columns: the variants' fixed ``columns`` (in first-seen order), then each measured column as
    ``"mean ± std"`` over the seeds that succeeded (plain mean for one seed; ``"… (2/3 seeds)"``
    when some seeds failed); a variant whose every seed failed reads ``"failed: <first error line>"``.
    With ``thesis`` (row → column → number), ``"thesis <column>"`` columns follow.
    Raises ValueError when ``rows`` is not exactly the set of the results' rows, or the results mix tables.
    """
    results = list(results)
    if not results:
        raise ValueError("no ablation results to summarise")
    tables = sorted({r.variant.table for r in results})
    if len(tables) > 1:
        raise ValueError(f"results mix tables {tables}; summarise one table at a time")
    rows = list(rows)
    found: dict[str, list[VariantResult]] = {}
    for result in results:
        found.setdefault(result.variant.row, []).append(result)
    if len(set(rows)) != len(rows) or set(rows) != set(found):
        missing = [r for r in rows if r not in found]
        extra = [r for r in found if r not in rows]
        raise ValueError(
            f"table {tables[0]}: rows {rows} do not match the variants' rows {list(found)} "
            f"(missing results for {missing}, unexpected {extra}, or duplicate labels)"
        )
    fixed: list[str] = []
    for result in results:
        for key in result.variant.columns:
            if key not in fixed:
                fixed.append(str(key))
    clash = [c for c in columns if c in fixed]
    if clash:
        raise ValueError(f"columns {clash} are both fixed and measured")

    records = []
    for row in rows:
        runs = found[row]
        variant = runs[0].variant
        record: dict[str, Any] = {key: variant.columns.get(key, "") for key in fixed}
        ok = [r for r in runs if r.status == OK]
        for column in columns:
            if not ok:
                record[column] = f"failed: {_first_line(runs[0].error)}"
                continue
            cell = mean_std([r.metrics.get(column, float("nan")) for r in ok], decimals)
            if len(ok) < len(runs) and cell != "–":
                cell += f" ({len(ok)}/{len(runs)} seeds)"
            record[column] = cell
        if thesis is not None:
            for column in columns:
                value = (thesis.get(row) or {}).get(column)
                record[f"thesis {column}"] = "–" if value is None else f"{value:.{decimals}f}"
        records.append(record)
    frame = pd.DataFrame.from_records(records, index=pd.Index(rows, name="row"))
    order = fixed + list(columns) + ([f"thesis {c}" for c in columns] if thesis is not None else [])
    return frame[order]


def variant_means(results: Sequence[VariantResult], column: str) -> dict[str, float]:
    """Mean of ``column`` per row over the succeeded seeds (NaN when none)."""
    values: dict[str, list[float]] = {}
    for result in results:
        values.setdefault(result.variant.row, [])
        if result.status == OK and column in result.metrics and math.isfinite(result.metrics[column]):
            values[result.variant.row].append(result.metrics[column])
    return {row: float(np.mean(v)) if v else float("nan") for row, v in values.items()}


def annotate_gains(
    table: pd.DataFrame, results: Sequence[VariantResult], column: str, reference: Mapping[str, str], decimals: int = 1
) -> pd.DataFrame:
    """Append the thesis's "(+7.02)" to ``column`` of each row in ``reference`` (row → the row it
    improves on, e.g. ``{"FCN+CAA": "FCN"}``): the difference of the seed means (Tables 3.7, 4.7)."""
    means = variant_means(results, column)
    table = table.copy()
    for row, base in reference.items():
        delta = means.get(row, float("nan")) - means.get(base, float("nan"))
        if row in table.index and math.isfinite(delta):
            sign = "+" if delta >= 0 else "−"
            table.loc[row, column] = f"{table.loc[row, column]} ({sign}{abs(delta):.{decimals}f})"
    return table


def ablation_long_table(results: Sequence[VariantResult]) -> pd.DataFrame:
    """One line per (table, row, seed, metric) with value, status, error, seconds and the
    variant's overrides (JSON); a failed run has one line with an empty metric and NaN value."""
    lines = []
    for result in results:
        base = {
            "table": result.variant.table,
            "row": result.variant.row,
            "seed": int(result.seed),
        }
        tail = {
            "status": result.status,
            "error": result.error or "",
            "seconds": float(result.seconds),
            "overrides": json.dumps(dict(result.variant.overrides), sort_keys=True, default=str),
        }
        if result.metrics:
            for metric, value in result.metrics.items():
                lines.append({**base, "metric": metric, "value": float(value), **tail})
        else:
            lines.append({**base, "metric": "", "value": float("nan"), **tail})
    columns = ["table", "row", "seed", "metric", "value", "status", "error", "seconds", "overrides"]
    return pd.DataFrame(lines, columns=columns)


def _cell(value: Any) -> str:
    text = "" if value is None or (isinstance(value, float) and math.isnan(value)) else str(value)
    return text.replace("|", "\\|").replace("\n", " ")


def ablation_markdown(table: pd.DataFrame, title: str, notes: Sequence[str] = ()) -> str:
    """``## title``, the table as a GitHub markdown table (index as first column) and the notes
    as a bullet list."""
    index_name = table.index.name or ""
    header = [index_name] + [str(c) for c in table.columns]
    lines = [f"## {title}", ""] if title else []
    lines.append("| " + " | ".join(_cell(h) for h in header) + " |")
    lines.append("|" + "---|" * len(header))
    for label, values in zip(table.index, table.itertuples(index=False)):
        lines.append("| " + " | ".join(_cell(v) for v in (label, *values)) + " |")
    if notes:
        lines.append("")
        lines += [f"- {note}" for note in notes]
    return "\n".join(lines) + "\n"


def ablation_metrics(results: Sequence[VariantResult]) -> dict[str, float]:
    """Flat ``{"table_<id>/<row>/<metric>_mean": …, "…_std": …}`` (MLflow-safe names, ``.`` of the
    table id as ``_``) over the succeeded seeds, plus ``"table_<id>/<row>/failed_seeds"``."""
    grouped: dict[tuple[str, str], list[VariantResult]] = {}
    for result in results:
        grouped.setdefault((result.variant.table, result.variant.row), []).append(result)
    flat: dict[str, float] = {}
    for (table, row), runs in grouped.items():
        prefix = f"table_{mlflow_safe_name(table.replace('.', '_'))}/{mlflow_safe_name(row)}"
        ok = [r for r in runs if r.status == OK]
        flat[f"{prefix}/failed_seeds"] = float(len(runs) - len(ok))
        metrics = sorted({m for r in ok for m in r.metrics})
        for metric in metrics:
            values = np.array([r.metrics.get(metric, np.nan) for r in ok], dtype=float)
            values = values[np.isfinite(values)]
            if not values.size:
                continue
            name = mlflow_safe_name(metric)
            flat[f"{prefix}/{name}_mean"] = float(values.mean())
            flat[f"{prefix}/{name}_std"] = float(values.std(ddof=1)) if values.size > 1 else 0.0
    return flat


# --- one thesis table end to end ----------------------------------------------------------------


@dataclass
class AblationTable:
    """A thesis table: its variants (rows, in order), measured ``columns``, and how it is shown.

    ``index_name`` heads the row-label column (``"Method"``, ``"Loss"``); ``thesis`` maps row →
    thesis column label → the thesis's number, shown as ``"thesis <label>"`` columns (only where the
    reader asks for them); ``gains`` maps a row to the row it improves on (``"(+7.02)"`` suffix on
    the first measured column); ``measure`` maps the closed-set per-class table to the columns.
    """

    table: str
    title: str
    variants: list[AblationVariant]
    columns: list[str]
    index_name: str = "Method"
    thesis: Mapping[str, Mapping[str, float]] | None = None
    gains: Mapping[str, str] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)
    measure: Callable[[pd.DataFrame], Mapping[str, float]] | None = None

    @property
    def rows(self) -> list[str]:
        return [v.row for v in self.variants]

    @property
    def key(self) -> str:
        """``table_3_2``: file and metric prefix."""
        return "table_" + self.table.replace(".", "_")


def thesis_columns(thesis: Mapping[str, Mapping[str, float]] | None) -> list[str]:
    """``"thesis <label>"`` for every label of ``thesis`` (first-seen order)."""
    labels: list[str] = []
    for values in (thesis or {}).values():
        labels += [label for label in values if label not in labels]
    return [f"thesis {label}" for label in labels]


def report_ablation_table(
    spec: AblationTable, results: Sequence[VariantResult], decimals: int = 1, show_thesis: bool = True
) -> tuple[pd.DataFrame, pd.DataFrame, str, dict[str, float]]:
    """(table with the row labels as first column ``spec.index_name``, long per-seed table,
    markdown, flat metrics) of one thesis table."""
    table = summarise_ablation(results, spec.rows, spec.columns, decimals=decimals)
    if spec.gains and spec.columns:
        table = annotate_gains(table, results, spec.columns[0], spec.gains, decimals)
    if show_thesis and spec.thesis:
        for column in thesis_columns(spec.thesis):
            label = column.removeprefix("thesis ")
            table[column] = [
                f"{spec.thesis[row][label]:.{decimals}f}" if label in (spec.thesis.get(row) or {}) else "–" for row in table.index
            ]
    table.index.name = spec.index_name
    failed = sorted({r.variant.row for r in results if r.status == FAILED})
    notes = list(spec.notes) + ([f"failed variants (see the error in the cell / runs CSV): {', '.join(failed)}"] if failed else [])
    markdown = ablation_markdown(table, f"Table {spec.table}: {spec.title}", notes)
    return table.reset_index(), ablation_long_table(results), markdown, ablation_metrics(results)


# --- closed-set variants (chapters 3-4) ------------------------------------------------------------


def resolve_seeds(seeds: int | Sequence[int]) -> list[int]:
    """``3`` → ``[0, 1, 2]``; a list is used as given. Raises ValueError for none."""
    values = list(range(int(seeds))) if isinstance(seeds, (int, np.integer)) else [int(s) for s in seeds]
    if not values:
        raise ValueError(f"seeds must be a positive count or a non-empty list, got {seeds!r}")
    return values


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
    from seg_pipelines.engine import closed_set

    unknown = set(overrides) - {"model", "addon", "addon_cfg", "class_weights"}
    if unknown:
        raise KeyError(f"unknown closed-set variant overrides {sorted(unknown)}; known: model, addon, addon_cfg, class_weights")
    addon_settings = dict(settings.get("addon") or {})
    addon = overrides.get("addon", addon_settings.get("name"))
    use_weights = bool(overrides.get("class_weights", addon_settings.get("class_weights_from_statistics", False) and addon is not None))
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
    from seg_pipelines.engine import closed_set

    training = {**dict(settings["training"]), "seed": int(seed)}
    checkpoint, curve = closed_set.train_segmentor(
        config, manifest, index, training, settings["augmentation"], settings["checkpoint_root"],
        show_progress=False, class_weights=weights,
    )  # fmt: skip
    return closed_set.load_segmentor(checkpoint, num_classes=int(manifest["num_classes"])), curve


# Per-class evaluations of this process, by everything that determines them: a row repeated across
# tables (e.g. FCN+CAA in Tables 3.2, 3.3, 3.4, 3.7) is trained and evaluated once per seed.
_EVALUATED: dict[str, tuple[pd.DataFrame, float]] = {}


def closed_set_variant_runner(
    settings: Mapping[str, Any],
    manifest: Mapping[str, Any],
    index: pd.DataFrame,
    class_statistics: pd.DataFrame,
    measure: Callable[[pd.DataFrame], Mapping[str, float]] | None = None,
) -> Callable[[AblationVariant, int], dict[str, float]]:
    """``run_variant`` for :func:`run_ablation`: train the variant (``variant.overrides``, see
    :func:`closed_set_variant_config`) with the seed, evaluate it with the closed-set protocol and
    return ``measure(per_class_table)`` plus ``mIoU``, ``mAcc``, ``aAcc`` and the final ``train_loss``.
    ``settings``: ``model``, ``addon``, ``training``, ``augmentation``, ``evaluation``, ``checkpoint_root``.
    Finished trainings are reused from ``checkpoint_root`` and evaluations within the process."""
    from seg_pipelines.engine import closed_set

    evaluation = dict(settings["evaluation"])
    eval_index = evaluation_index(index, evaluation)
    split = evaluation.get("split", "val")
    context = {
        "dataset": {k: manifest.get(k) for k in ("family", "reader_kwargs", "num_classes")},
        "root": str(Path(manifest["root"]).resolve()),
        "evaluated": eval_index.loc[eval_index["split"] == split, "sample_id"].astype(str).tolist(),
        "evaluation": evaluation,
        "training": dict(settings["training"]),
        "augmentation": dict(settings["augmentation"]),
        "checkpoint_root": str(Path(settings["checkpoint_root"]).resolve()),
    }

    def run(variant: AblationVariant, seed: int) -> dict[str, float]:
        config, weights = closed_set_variant_config(settings, variant.overrides, manifest, class_statistics)
        key = closed_set.run_fingerprint(config, weights, int(seed), context)
        if key not in _EVALUATED:
            model, curve = _train_config(settings, config, weights, seed, manifest, index)
            per_class = closed_set.evaluate_segmentor(model, manifest, eval_index, evaluation, settings["augmentation"], show_progress=False)
            _EVALUATED[key] = (per_class, float(curve["loss"].iloc[-1]) if len(curve) else float("nan"))
        per_class, train_loss = _EVALUATED[key]
        metrics = dict(closed_set.summarize_per_class(per_class)) | {"train_loss": train_loss}
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
    return {k: params[k] for k in ("model", "addon", "training", "augmentation", "evaluation", "checkpoint_root") if k in params}


def closed_set_budget_notes(params: Mapping[str, Any], manifest: Mapping[str, Any], seeds: Sequence[int]) -> list[str]:
    """One line stating dataset, budget, seeds and training/evaluation sizes (for every table)."""
    training, evaluation = params["training"], params["evaluation"]
    images = evaluation.get("max_images")
    return [
        f"dataset: {manifest['family']} ({manifest['num_classes']} classes), {evaluation.get('split', 'val')} split"
        f"{f' (first {images} images)' if images is not None else ''}, {evaluation.get('mode', 'whole')} inference; "
        f"budget '{params.get('budget', 'custom')}': backbone {params['model'].get('backbone')}, "
        f"{training['iterations']} iterations at batch {training['batch_size']}, crop {list(params['augmentation'].get('crop_size', []))}; "
        f"mean ± std over seeds {list(seeds)}"
    ]


def run_closed_set_table(
    spec: AblationTable,
    params: Mapping[str, Any],
    manifest: Mapping[str, Any],
    index: pd.DataFrame,
    class_statistics: pd.DataFrame,
    name: str,
    tags: Mapping[str, str] | None = None,
) -> tuple[pd.DataFrame, pd.DataFrame, str, dict[str, float]]:
    """Run every variant × seed of ``spec`` (train, closed-set evaluation, ``spec.measure``) and
    return :func:`report_ablation_table`'s (table, runs, markdown, metrics)."""
    seeds = resolve_seeds(params.get("seeds", 3))
    runner = closed_set_variant_runner(closed_set_settings(params), manifest, index, class_statistics, spec.measure)
    results = run_ablation(spec.variants, seeds, runner, name=name, tags=tags, progress=bool(params.get("progress", True)))
    report = params.get("report") or {}
    return report_ablation_table(spec, results, int(report.get("decimals", 2)), bool(report.get("show_thesis", True)))


def closed_set_tags(params: Mapping[str, Any], manifest: Mapping[str, Any], method: str) -> dict[str, str]:
    """MLflow tags shared by every child run of a closed-set chapter (the engine adds
    seed/variant/table per run): method, head, backbone, dataset, vocabulary, budget."""
    from seg_pipelines.engine.closed_set import benchmark_name

    return {
        "method": method,
        "head": str(params["model"].get("head", "fcn")),
        "backbone": str(params["model"].get("backbone", "resnet50c")),
        "dataset": benchmark_name(manifest),
        "vocabulary": str((manifest.get("reader_kwargs") or {}).get("vocabulary") or "closed-set"),
        "budget": str(params.get("budget", "custom")),
    }


def closed_set_table_node(
    build_table: Callable[..., AblationTable], table: str, pipeline: str, method: str
) -> Callable[..., tuple[pd.DataFrame, pd.DataFrame, str, dict[str, float]]]:
    """A Kedro node function ``(params, manifest, index, class_statistics) -> (table, runs,
    markdown, metrics)`` running thesis Table ``table`` built by ``build_table(table, params,
    manifest, notes)``; child runs are named ``<pipeline>/table_<id>/<row>/seed<seed>``."""

    def run_table(params: dict[str, Any], manifest: dict[str, Any], index: pd.DataFrame, class_statistics: pd.DataFrame):
        seeds = resolve_seeds(params.get("seeds", 3))
        spec = build_table(table, params, manifest, closed_set_budget_notes(params, manifest, seeds))
        return run_closed_set_table(
            spec, params, manifest, index, class_statistics, f"{pipeline}/{spec.key}", closed_set_tags(params, manifest, method)
        )

    run_table.__name__ = f"run_table_{table.replace('.', '_')}"
    run_table.__qualname__ = run_table.__name__
    run_table.__doc__ = f"Thesis Table {table} ({pipeline}): every variant x seed trained and evaluated."
    return run_table
