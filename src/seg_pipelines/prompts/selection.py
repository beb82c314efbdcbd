"""Steps 3-4 of thesis Figure 5.3: rank attributes by mIoU, then combine the top ones greedily.

- :func:`rank_attributes` turns a score table (rows: attributes plus the hand-crafted ``template``
  baseline; columns: benchmarks, mIoU) into the layout of thesis Table 5.3 with an ``avg.``
  column ("we calculated the average performance across all datasets", 5.3.4), sorted best first.
- :func:`greedy_combination` adds attributes in rank order (size, + shape, + texture, + color...)
  and scores each combination with a caller-supplied ``evaluate`` (layout of Table 5.4); the best
  combination is the one with the highest average, the shorter one on ties.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping

import numpy as np
import pandas as pd

AVERAGE_COLUMN = "avg."
GAIN_COLUMN = "vs. baseline"
BASELINE_ROW = "template"
COMBINATION_SEPARATOR = " + "


def _benchmark_columns(table: pd.DataFrame) -> list[str]:
    return [c for c in table.columns if c not in (AVERAGE_COLUMN, GAIN_COLUMN)]


def _sort_key(values: pd.Series, decimals: int | None) -> pd.Series:
    # Round before sorting so that equal table values tie (stable sort keeps input order).
    return values.round(decimals if decimals is not None else 9)


def rank_attributes(
    score_table: pd.DataFrame,
    *,
    baseline: str | None = BASELINE_ROW,
    decimals: int | None = None,
) -> pd.DataFrame:
    """Table 5.3 layout: the benchmark columns, ``avg.`` (mean over benchmarks) and
    ``vs. baseline`` (avg. minus the baseline row's avg.), rows sorted by ``avg.`` descending.

    Args:
        score_table: rows = attributes (and the ``baseline`` row), columns = benchmarks (mIoU).
        baseline: name of the hand-crafted-template row; ``None`` if the table has none.
        decimals: round averages to this many decimals before ranking (the thesis ranks the
            one-decimal numbers it prints); ties keep the input row order.
    """
    benchmarks = _benchmark_columns(score_table)
    if not benchmarks:
        raise ValueError("score table has no benchmark columns")
    scores = score_table[benchmarks].apply(pd.to_numeric, errors="coerce")
    if scores.isna().to_numpy().any():
        row, column = next((r, c) for r in scores.index for c in benchmarks if pd.isna(scores.at[r, c]))
        raise ValueError(f"score table has a missing or non-numeric value at ({row!r}, {column!r})")
    if baseline is not None and baseline not in scores.index:
        raise KeyError(f"baseline row {baseline!r} not in score table rows {list(scores.index)}")
    ranked = scores.copy()
    ranked[AVERAGE_COLUMN] = scores.mean(axis=1)
    if baseline is not None:
        ranked[GAIN_COLUMN] = ranked[AVERAGE_COLUMN] - ranked.at[baseline, AVERAGE_COLUMN]
    order = _sort_key(ranked[AVERAGE_COLUMN], decimals).sort_values(ascending=False, kind="mergesort")
    ranked = ranked.loc[order.index]
    ranked.index.name = score_table.index.name or "attribute"
    return ranked


def select_top_attributes(ranked: pd.DataFrame, top_k: int, *, baseline: str | None = BASELINE_ROW) -> list[str]:
    """The ``top_k`` best attributes of a :func:`rank_attributes` table (baseline excluded)."""
    return [str(name) for name in ranked.index if name != baseline][:top_k]


def greedy_combination(
    ranked: pd.DataFrame,
    top_k: int = 4,
    evaluate: Callable[[list[str]], Mapping[str, float]] | None = None,
    *,
    baseline: str | None = BASELINE_ROW,
    reuse_single_scores: bool = True,
    decimals: int | None = None,
) -> tuple[pd.DataFrame, list[str]]:
    """Table 5.4 layout: combinations ``[a1]``, ``[a1, a2]``, ... ``[a1..a_top_k]`` in rank order.

    Args:
        ranked: output of :func:`rank_attributes` (row order = rank order).
        top_k: size of the largest combination (the thesis keeps 4; 5 shows the drop).
        evaluate: combination -> ``{benchmark: mIoU}`` for every benchmark column of ``ranked``.
        reuse_single_scores: take the one-attribute row from ``ranked`` instead of re-evaluating.
        decimals: round averages before choosing the best (ties -> fewer attributes).

    Returns:
        ``(table, best_combination)``; the table's index names combinations as ``"size + shape"``
        and it has the benchmark columns, ``avg.`` and (with a baseline) ``vs. baseline``.
    """
    if evaluate is None:
        raise ValueError("greedy_combination needs an evaluate(combination) -> scores callable")
    if top_k < 1:
        raise ValueError(f"top_k must be >= 1, got {top_k}")
    benchmarks = _benchmark_columns(ranked)
    order = select_top_attributes(ranked, top_k, baseline=baseline)
    rows: dict[str, dict[str, float]] = {}
    combinations: list[list[str]] = []
    for size in range(1, len(order) + 1):
        combination = order[:size]
        if size == 1 and reuse_single_scores:
            scores = {b: float(ranked.at[combination[0], b]) for b in benchmarks}
        else:
            result = evaluate(list(combination))
            missing = [b for b in benchmarks if b not in result]
            if missing:
                raise KeyError(f"evaluate({combination}) returned no score for {missing}")
            scores = {b: float(result[b]) for b in benchmarks}
        rows[COMBINATION_SEPARATOR.join(combination)] = scores
        combinations.append(combination)
    table = pd.DataFrame.from_dict(rows, orient="index", columns=benchmarks)
    table[AVERAGE_COLUMN] = table[benchmarks].mean(axis=1)
    if baseline is not None and baseline in ranked.index:
        table[GAIN_COLUMN] = table[AVERAGE_COLUMN] - float(ranked.at[baseline, AVERAGE_COLUMN])
    table.index.name = "combination"
    averages = _sort_key(table[AVERAGE_COLUMN], decimals).to_numpy()
    best = combinations[int(np.argmax(averages))]  # argmax returns the first (shortest) on ties
    return table, list(best)
