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
rows, thesis reference columns, each thesis finding judged by a paired comparison over seeds
(:func:`judge_findings`: reproduced / contradicted / unresolved, with the effect and its interval),
notes). Fan-out (one Kedro node per variant × seed): :func:`run_one`, :func:`result_record`,
:func:`results_from_records`, :class:`ResultCache` (finished runs by settings hash). The closed-set
variants of chapters 3-4 live in :mod:`seg_pipelines.experiments.closed_set_ablations`, the OVSS ones of chapter 5 in
:mod:`seg_pipelines.experiments.lsmseg_ablations`.
"""

from __future__ import annotations

import hashlib
import json
import logging
import math
import os
import tempfile
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
from seg_pipelines.engine import tracking
from seg_pipelines.engine.tables import markdown_table
from seg_pipelines.statistics import INTERVAL_RULES, IntervalRule, finding_verdict, paired_comparison
from seg_pipelines.thesis_tables import SEED_SLOTS, SEED_SLOTS_ENV

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
        results.append(run_one(variant, seed, run_variant, name=name, tags=tags))
    failed = sum(r.status == FAILED for r in results)
    logger.info("ablation %s: %d runs, %d failed", name, len(results), failed)
    return results


def run_one(
    variant: AblationVariant,
    seed: int,
    run_variant: Callable[[AblationVariant, int], Mapping[str, float]],
    *,
    name: str,
    tags: Mapping[str, str] | None = None,
) -> VariantResult:
    """One variant × seed as :func:`run_ablation` runs it (failure recorded; an MLflow child run when
    there is a parent run, :func:`tracking.parent_run`: the active run, or in a ``ParallelRunner``
    worker the ``kedro run``'s): the unit of work of one fan-out node."""
    seed = int(seed)
    run_tags = {str(k): str(v) for k, v in (tags or {}).items()}
    run_tags.update({"ablation": name, "table": variant.table, "variant": variant.row, "seed": str(seed)})
    child = tracking.start_child_run(f"{name}/{variant.row}/seed{seed}", run_tags, variant.overrides)
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
            child.end({}, "killed", None, terminal="KILLED")
        raise
    if child is not None:
        metrics = tracking.numeric_metrics(result.metrics, flatten=False) | {"seconds": result.seconds}
        child.end(metrics, result.status, result.error, terminal="FINISHED" if result.status == OK else "FAILED")
    return result


# --- fan-out: one Kedro node per variant × seed, results as JSON records, reuse by settings hash --

SKIPPED = "skipped"


def result_record(result: VariantResult | None, table: str = "", slot: str = "") -> dict[str, Any]:
    """A JSON-able record of one node's result (what a fan-out node returns and its dataset stores);
    ``None`` (the slot has no variant or seed under the current parameters) is a ``skipped`` record."""
    if result is None:
        return {"status": SKIPPED, "table": table, "slot": slot}
    return {
        "status": result.status,
        "table": result.variant.table,
        "row": result.variant.row,
        "overrides": json.loads(json.dumps(dict(result.variant.overrides), default=str)),
        "columns": {str(k): v for k, v in result.variant.columns.items()},
        "seed": int(result.seed),
        "metrics": {k: float(v) for k, v in result.metrics.items()},
        "error": result.error,
        "seconds": float(result.seconds),
    }


def results_from_records(records: Sequence[Mapping[str, Any]]) -> list[VariantResult]:
    """The :class:`VariantResult` of every non-skipped record (inverse of :func:`result_record`)."""
    results = []
    for record in records:
        if record.get("status") == SKIPPED:
            continue
        variant = AblationVariant(
            str(record["table"]),
            str(record["row"]),
            dict(record.get("overrides") or {}),
            dict(record.get("columns") or {}),
        )
        results.append(
            VariantResult(
                variant,
                int(record["seed"]),
                str(record["status"]),
                {k: float(v) for k, v in (record.get("metrics") or {}).items()},
                record.get("error"),
                float(record.get("seconds", 0.0)),
            )
        )
    return results


def check_slots(name: str, variants: int, row_slots: int, seeds: int, seed_slots: int) -> None:
    """Raise ValueError when the parameters define more rows or seeds than the pipeline has nodes for."""
    if variants > row_slots or seeds > seed_slots:
        raise ValueError(
            f"{name}: the parameters give {variants} rows x {seeds} seeds, but the pipeline was built with "
            f"{row_slots} row nodes x {seed_slots} seed nodes (rows come from the table spec with the default "
            f"parameters, seed nodes from ${SEED_SLOTS_ENV}, default {SEED_SLOTS}); use fewer seeds / rows, or "
            f"set {SEED_SLOTS_ENV}={seeds} for this run"
        )


def json_ready(value: Any) -> Any:
    """``value`` as JSON gives it back (numpy scalars as numbers, tuples as lists, keys as text): what a
    :class:`ResultCache` returns, so a fresh result and a reused one have one form."""
    return json.loads(json.dumps(value, default=lambda item: item.item() if hasattr(item, "item") else str(item)))


class ResultCache:
    """Finished runs by the hash of their resolved settings: one JSON file per key under ``directory``
    (written atomically), so a repeated row (the same setting in two tables), a rerun or another
    process (ParallelRunner, a cluster job) reuses the result instead of training again."""

    def __init__(self, directory: str | Path | None, enabled: bool = True) -> None:
        self.directory = Path(directory) if directory is not None else None
        self.enabled = enabled and directory is not None

    @staticmethod
    def key(*parts: Any) -> str:
        """sha256 of the JSON of ``parts`` (sorted keys)."""
        return hashlib.sha256(json.dumps(parts, sort_keys=True, default=str).encode()).hexdigest()[:20]

    def get(self, key: str) -> Any | None:
        if not self.enabled:
            return None
        path = self.directory / f"{key}.json"
        if not path.is_file():
            return None
        try:
            return json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError):  # a torn or foreign file: recompute
            return None

    def put(self, key: str, payload: Any) -> None:
        if not self.enabled:
            return
        self.directory.mkdir(parents=True, exist_ok=True)
        handle, temporary = tempfile.mkstemp(dir=self.directory, suffix=".tmp")
        with os.fdopen(handle, "w", encoding="utf-8") as stream:
            json.dump(payload, stream, sort_keys=True)
        os.replace(temporary, self.directory / f"{key}.json")


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


# --- verdicts: each thesis finding judged by a paired comparison over seeds ---------------------


@dataclass(frozen=True)
class Finding:
    """A thesis finding of one table: ``row`` scores ``thesis_says`` (higher / lower) than
    ``baseline`` on ``metric``; ``thesis_says`` None when the thesis prints no (or equal) numbers."""

    row: str
    baseline: str
    metric: str
    thesis_says: str | None = None
    thesis_difference: float = float("nan")

    @property
    def label(self) -> str:
        return f"{self.row} vs {self.baseline}"


VERDICTS = ("reproduced", "contradicted", "unresolved")
VERDICT_COLUMNS = [
    "table",
    "finding",
    "row",
    "baseline",
    "metric",
    "thesis_difference",
    "thesis_says",
    "effect",
    "mean_difference",
    "low",
    "high",
    "n",
    "rule",
    "direction",
    "verdict",
]


def thesis_direction(
    thesis: Mapping[str, Mapping[str, float]] | None, row: str, baseline: str, column: str
) -> tuple[str | None, float]:
    """(``higher`` / ``lower`` / None, thesis difference) of ``row − baseline`` in the thesis's numbers:
    the ``column`` itself when the thesis prints it, else the mean over the columns both rows have
    (Table 3.7's ADE20K / COCO-Stuff / Pascal-Context against our one benchmark)."""
    ours, base = (thesis or {}).get(row) or {}, (thesis or {}).get(baseline) or {}
    shared = [column] if column in ours and column in base else [c for c in ours if c in base]
    if not shared:
        return None, float("nan")
    difference = float(np.mean([ours[c] for c in shared]) - np.mean([base[c] for c in shared]))
    if not math.isfinite(difference) or difference == 0:
        return None, difference
    return ("higher" if difference > 0 else "lower"), difference


def table_findings(
    rows: Sequence[str],
    comparisons: Sequence[tuple[str, str]] | None,
    metric: str,
    thesis: Mapping[str, Mapping[str, float]] | None,
    thesis_column: str | None = None,
) -> list[Finding]:
    """The findings of a table: ``comparisons`` (row, baseline) pairs, or every row against the first;
    each with the direction the thesis's numbers give (column ``thesis_column``, default ``metric``)."""
    pairs = list(comparisons) if comparisons is not None else [(row, rows[0]) for row in rows[1:]]
    unknown = sorted({name for pair in pairs for name in pair} - set(rows))
    if unknown:
        raise ValueError(f"comparisons name rows {unknown} that are not in the table ({list(rows)})")
    findings = []
    for row, baseline in pairs:
        says, difference = thesis_direction(thesis, row, baseline, thesis_column or metric)
        findings.append(Finding(row, baseline, metric, says, difference))
    return findings


def _paired_values(results: Sequence[VariantResult], row: str, metric: str) -> dict[int, float]:
    return {
        r.seed: float(r.metrics[metric])
        for r in results
        if r.variant.row == row and r.status == OK and metric in r.metrics and math.isfinite(r.metrics[metric])
    }


def judge_findings(
    results: Sequence[VariantResult], findings: Sequence[Finding], rule: IntervalRule = "t95", decimals: int = 2
) -> pd.DataFrame:
    """One line per finding (:data:`VERDICT_COLUMNS`): the seeds both rows succeeded on are paired
    (:func:`seg_pipelines.statistics.paired_comparison`, ``rule``), ``effect`` is
    :meth:`~seg_pipelines.statistics.PairedComparison.describe`, ``verdict`` is
    :func:`~seg_pipelines.statistics.finding_verdict` (``unresolved`` without a thesis direction or a
    shared seed; such lines read ``direction`` ``no thesis direction`` / ``not measured``)."""
    if rule not in INTERVAL_RULES:
        raise ValueError(f"verdict_rule must be one of {INTERVAL_RULES}, got {rule!r}")
    tables = sorted({r.variant.table for r in results})
    lines = []
    for finding in findings:
        candidate = _paired_values(results, finding.row, finding.metric)
        baseline = _paired_values(results, finding.baseline, finding.metric)
        seeds = sorted(set(candidate) & set(baseline))
        line: dict[str, Any] = {
            "table": tables[0] if len(tables) == 1 else ",".join(tables),
            "finding": finding.label,
            "row": finding.row,
            "baseline": finding.baseline,
            "metric": finding.metric,
            "thesis_difference": finding.thesis_difference,
            "thesis_says": finding.thesis_says or "",
            "rule": rule,
        }
        if not seeds:
            line.update(effect="not measured", mean_difference=math.nan, low=math.nan, high=math.nan, n=0)
            line.update(direction="not measured", verdict="unresolved")
        else:
            comparison = paired_comparison([candidate[s] for s in seeds], [baseline[s] for s in seeds], rule)
            line.update(
                effect=comparison.describe(decimals),
                mean_difference=comparison.mean_difference,
                low=comparison.low,
                high=comparison.high,
                n=comparison.n,
                direction=comparison.direction,
                verdict=finding_verdict(comparison, finding.thesis_says) if finding.thesis_says else "unresolved",
            )
        lines.append(line)
    return pd.DataFrame(lines, columns=VERDICT_COLUMNS)


def verdict_counts(verdicts: pd.DataFrame) -> dict[str, int]:
    """``{reproduced, contradicted, unresolved}`` counts over the findings that have a thesis
    direction (a line without one is not a thesis finding and is not counted)."""
    judged = verdicts[verdicts["thesis_says"].astype(str) != ""] if len(verdicts) else verdicts
    return {name: int((judged["verdict"] == name).sum()) if len(judged) else 0 for name in VERDICTS}


def counts_line(counts: Mapping[str, int], rule: str) -> str:
    """``findings (t95 paired over seeds): 2 reproduced, 0 contradicted, 3 unresolved``."""
    return f"findings ({rule} interval of the paired difference over seeds): " + ", ".join(
        f"{int(counts.get(name, 0))} {name}" for name in VERDICTS
    )


#: What an explanation of a finding that is not reproduced says first: the embedded world lacks what the
#: finding needs (shown by a measurement), or a bug was found and fixed (with its test).
EXPLANATION_KINDS = ("embedded world", "bug fixed")
NOT_EXPLAINED = "not explained"


def check_explanations(explanations: Mapping[str, str] | None, findings: Sequence[str], where: str) -> dict[str, str]:
    """``{finding label: text}``, each text starting with one of :data:`EXPLANATION_KINDS` and a colon,
    each label a finding of the table (a typo would leave the finding unexplained in silence)."""
    explanations = {str(k): str(v) for k, v in dict(explanations or {}).items()}
    unknown = sorted(set(explanations) - set(findings))
    if unknown:
        raise ValueError(
            f"{where}: explanations name findings {unknown} that the table does not have: {list(findings)}"
        )
    for label, text in explanations.items():
        if not any(text.startswith(kind + ":") for kind in EXPLANATION_KINDS):
            raise ValueError(
                f"{where}: the explanation of {label!r} must start with one of "
                f"{[kind + ':' for kind in EXPLANATION_KINDS]}, got {text[:40]!r}"
            )
    return explanations


def explanation_counts(verdicts: pd.DataFrame, explanations: Mapping[str, str]) -> dict[str, int]:
    """Over the thesis findings not reproduced: how many each kind of explanation covers, and how many none."""
    judged = verdicts[(verdicts["thesis_says"].astype(str) != "") & (verdicts["verdict"] != "reproduced")]
    counts = {kind: 0 for kind in (*EXPLANATION_KINDS, NOT_EXPLAINED)}
    for label in judged["finding"] if len(judged) else []:
        text = explanations.get(label, "")
        counts[next((kind for kind in EXPLANATION_KINDS if text.startswith(kind + ":")), NOT_EXPLAINED)] += 1
    return counts


def verdicts_markdown(verdicts: pd.DataFrame, decimals: int = 2, explanations: Mapping[str, str] | None = None) -> str:
    """The findings of a table as markdown: finding, thesis difference, ours (effect and interval), verdict;
    with ``explanations`` a column saying, beside each finding not reproduced, why (:data:`EXPLANATION_KINDS`)
    or that it is :data:`NOT_EXPLAINED`."""
    rows = []
    for line in verdicts.to_dict("records"):
        thesis = line["thesis_difference"]
        shown = f"{thesis:+.{decimals}f}" if isinstance(thesis, float) and math.isfinite(thesis) else "–"
        verdict = line["verdict"] if line["thesis_says"] else f"{line['verdict']} (no thesis direction)"
        row = [line["finding"], line["metric"], shown, line["effect"], verdict]
        if explanations is not None:
            judged = line["thesis_says"] and line["verdict"] != "reproduced"
            row.append(explanations.get(line["finding"], NOT_EXPLAINED) if judged else "")
        rows.append(row)
    columns = ["Finding", "metric", "thesis Δ", "ours Δ (interval)", "verdict"]
    frame = pd.DataFrame(rows, columns=columns + (["why not reproduced"] if explanations is not None else []))
    return markdown_table(frame, index=False, cell=_cell)


def annotate_verdicts(table: pd.DataFrame, verdicts: pd.DataFrame) -> pd.DataFrame:
    """``vs baseline`` (the first finding of each row: ``<baseline>: <effect>``) and ``verdict``
    columns appended to a summary table indexed by row."""
    table = table.copy()
    first = verdicts.drop_duplicates("row").set_index("row") if len(verdicts) else pd.DataFrame()
    table["Δ vs baseline"] = [
        f"{first.loc[row, 'baseline']}: {first.loc[row, 'effect']}" if row in first.index else "" for row in table.index
    ]
    table["verdict"] = [
        (first.loc[row, "verdict"] if first.loc[row, "thesis_says"] else "– (no thesis direction)")
        if row in first.index
        else ""
        for row in table.index
    ]
    return table


def verdict_metrics(key: str, verdicts: pd.DataFrame) -> dict[str, float]:
    """``{"<key>/findings/reproduced": n, …}`` for MLflow and the chapter's counts."""
    return {f"{key}/findings/{name}": float(n) for name, n in verdict_counts(verdicts).items()}


def chapter_counts(*metrics: Mapping[str, float]) -> dict[str, int]:
    """Sum of the tables' ``…/findings/<verdict>`` metrics (:func:`verdict_metrics`)."""
    totals = dict.fromkeys(VERDICTS, 0)
    for flat in metrics:
        for key, value in (flat or {}).items():
            name = key.rsplit("/", 1)[-1]
            if "/findings/" in key and name in totals:
                totals[name] += int(value)
    return totals


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


def chapter_markdown(title: str, tables: Sequence[str], metrics: Sequence[Mapping[str, float]], rule: str) -> str:
    """``# title``, the chapter's verdict counts over all its tables (:func:`chapter_counts`), then the tables."""
    counts = chapter_counts(*metrics)
    return f"# {title}\n\n- chapter {counts_line(counts, rule)}\n\n" + "\n".join(tables)


@dataclass(frozen=True)
class ChapterReport:
    """Node function ``(params, *markdowns, *metrics) -> str`` of a chapter's report: every table in one
    markdown file, opening with the chapter's verdict counts summed over its tables
    (:func:`chapter_markdown`; the rule is ``report.verdict_rule`` or ``verdict_rule`` of the chapter's
    parameters). A frozen dataclass, so ``ParallelRunner`` pickles it."""

    title: str

    def __call__(self, params: dict, *items: Any) -> str:
        half = len(items) // 2
        rule = (params.get("report") or {}).get("verdict_rule") or params.get("verdict_rule") or "t95"
        return chapter_markdown(self.title, items[:half], items[half:], rule)


# --- one thesis table end to end ----------------------------------------------------------------


@dataclass
class AblationTable:
    """A thesis table: its variants (rows, in order), measured ``columns``, and how it is shown.

    ``index_name`` heads the row-label column (``"Method"``, ``"Loss"``); ``thesis`` maps row →
    thesis column label → the thesis's number, shown as ``"thesis <label>"`` columns (only where the
    reader asks for them); ``comparisons`` are the (row, baseline row) pairs judged as thesis findings
    (None: every row against the first), on the first measured column, in the thesis's direction
    (:func:`thesis_direction`); ``measure`` maps the closed-set per-class table to the columns.
    """

    table: str
    title: str
    variants: list[AblationVariant]
    columns: list[str]
    index_name: str = "Method"
    thesis: Mapping[str, Mapping[str, float]] | None = None
    comparisons: list[tuple[str, str]] | None = None
    notes: list[str] = field(default_factory=list)
    measure: Callable[[pd.DataFrame], Mapping[str, float]] | None = None

    @property
    def rows(self) -> list[str]:
        return [v.row for v in self.variants]

    @property
    def key(self) -> str:
        """``table_3_2``: file and metric prefix."""
        return "table_" + self.table.replace(".", "_")

    def findings(self) -> list[Finding]:
        """The thesis findings this table judges (:func:`table_findings`)."""
        return table_findings(self.rows, self.comparisons, self.columns[0], self.thesis)


def thesis_columns(thesis: Mapping[str, Mapping[str, float]] | None) -> list[str]:
    """``"thesis <label>"`` for every label of ``thesis`` (first-seen order)."""
    labels: list[str] = []
    for values in (thesis or {}).values():
        labels += [label for label in values if label not in labels]
    return [f"thesis {label}" for label in labels]


def report_ablation_table(
    spec: AblationTable,
    results: Sequence[VariantResult],
    decimals: int = 1,
    show_thesis: bool = True,
    rule: IntervalRule = "t95",
) -> tuple[pd.DataFrame, pd.DataFrame, str, dict[str, float]]:
    """(table with the row labels as first column ``spec.index_name`` and each row's paired effect
    and verdict, long per-seed table, markdown with the findings and their counts, flat metrics)."""
    table = summarise_ablation(results, spec.rows, spec.columns, decimals=decimals)
    verdicts = judge_findings(results, spec.findings(), rule, decimals)
    table = annotate_verdicts(table, verdicts)
    if show_thesis and spec.thesis:
        for column in thesis_columns(spec.thesis):
            label = column.removeprefix("thesis ")
            table[column] = [
                f"{spec.thesis[row][label]:.{decimals}f}" if label in (spec.thesis.get(row) or {}) else "–"
                for row in table.index
            ]
    table.index.name = spec.index_name
    failed = sorted({r.variant.row for r in results if r.status == FAILED})
    counts = verdict_counts(verdicts)
    notes = list(spec.notes) + (
        [f"failed variants (see the error in the cell / runs CSV): {', '.join(failed)}"] if failed else []
    )
    notes.append(counts_line(counts, rule))
    markdown = ablation_markdown(table, f"Table {spec.table}: {spec.title}", notes)
    markdown += "\n" + verdicts_markdown(verdicts, decimals) + "\n"
    metrics = ablation_metrics(results) | verdict_metrics(spec.key, verdicts)
    return table.reset_index(), ablation_long_table(results), markdown, metrics


# --- seeds ---------------------------------------------------------------------------------------


def resolve_seeds(seeds: int | Sequence[int]) -> list[int]:
    """``3`` → ``[0, 1, 2]``; a list is used as given. Raises ValueError for none."""
    values = list(range(int(seeds))) if isinstance(seeds, (int, np.integer)) else [int(s) for s in seeds]
    if not values:
        raise ValueError(f"seeds must be a positive count or a non-empty list, got {seeds!r}")
    return values
