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
rows, thesis reference columns, "(+x.xx)" gains, notes). The closed-set variants of chapters 3-4
live in :mod:`seg_pipelines.experiments.closed_set_ablations`, the OVSS ones of chapter 5 in
:mod:`seg_pipelines.experiments.lsmseg_ablations`.
"""

from __future__ import annotations

import json
import logging
import math
import time
import traceback
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
from tqdm.auto import tqdm

# the project hook's flattening and MLflow's parameter-length limit (one definition each)
from seg_pipelines.engine import tracking
from seg_pipelines.engine.tables import markdown_table

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
        mlflow = tracking.active_mlflow()
        child = None
        if mlflow is not None:
            run_tags = {str(k): str(v) for k, v in (tags or {}).items()}
            run_tags.update({"ablation": name, "table": variant.table, "variant": variant.row, "seed": str(seed)})
            child = tracking.start_child_run(mlflow, f"{name}/{variant.row}/seed{seed}", run_tags, variant.overrides)
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
            metrics = tracking.numeric_metrics(result.metrics, flatten=False) | {"seconds": result.seconds}
            tracking.end_child_run(mlflow, metrics, result.status, result.error, ok=result.status == OK)
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
    """Ablation cells are already text ("12.3 ± 0.4", "failed: …"); a missing one is blank."""
    return "" if value is None or (isinstance(value, float) and math.isnan(value)) else str(value)


def ablation_markdown(table: pd.DataFrame, title: str, notes: Sequence[str] = ()) -> str:
    """``## title``, the table as a GitHub markdown table (index as first column) and the notes
    as a bullet list (:func:`seg_pipelines.engine.tables.markdown_table`)."""
    return markdown_table(table, index=True, cell=_cell, title=f"## {title}" if title else "", notes=notes) + "\n"


def ablation_metrics(results: Sequence[VariantResult]) -> dict[str, float]:
    """Flat ``{"table_<id>/<row>/<metric>_mean": …, "…_std": …}`` (MLflow-safe names, ``.`` of the
    table id as ``_``) over the succeeded seeds, plus ``"table_<id>/<row>/failed_seeds"``."""
    grouped: dict[tuple[str, str], list[VariantResult]] = {}
    for result in results:
        grouped.setdefault((result.variant.table, result.variant.row), []).append(result)
    flat: dict[str, float] = {}
    for (table, row), runs in grouped.items():
        table_key = tracking.mlflow_key(table.replace(".", "_"), component=True)
        prefix = f"table_{table_key}/{tracking.mlflow_key(row, component=True)}"
        ok = [r for r in runs if r.status == OK]
        flat[f"{prefix}/failed_seeds"] = float(len(runs) - len(ok))
        metrics = sorted({m for r in ok for m in r.metrics})
        for metric in metrics:
            values = np.array([r.metrics.get(metric, np.nan) for r in ok], dtype=float)
            values = values[np.isfinite(values)]
            if not values.size:
                continue
            name = tracking.mlflow_key(metric, component=True)
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
                f"{spec.thesis[row][label]:.{decimals}f}" if label in (spec.thesis.get(row) or {}) else "–"
                for row in table.index
            ]
    table.index.name = spec.index_name
    failed = sorted({r.variant.row for r in results if r.status == FAILED})
    notes = list(spec.notes) + (
        [f"failed variants (see the error in the cell / runs CSV): {', '.join(failed)}"] if failed else []
    )
    markdown = ablation_markdown(table, f"Table {spec.table}: {spec.title}", notes)
    return table.reset_index(), ablation_long_table(results), markdown, ablation_metrics(results)


# --- seeds ---------------------------------------------------------------------------------------


def resolve_seeds(seeds: int | Sequence[int]) -> list[int]:
    """``3`` → ``[0, 1, 2]``; a list is used as given. Raises ValueError for none."""
    values = list(range(int(seeds))) if isinstance(seeds, (int, np.integer)) else [int(s) for s in seeds]
    if not values:
        raise ValueError(f"seeds must be a positive count or a non-empty list, got {seeds!r}")
    return values
