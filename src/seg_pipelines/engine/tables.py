"""The one markdown (GFM) table renderer of the project.

    markdown_table(frame)                                   # a DataFrame's columns and rows
    markdown_table(frame, index=True, title="## Table 3.2") # index as first column, a heading above
    markdown_table(rows, ["Method", "mIoU"], decimals=2)    # rows of values under given columns

Every table the pipelines write (ablation tables, efficiency tables, closed-set results, OVSS
tables, attribute tables, the report) goes through :func:`markdown_table`; a table's own number
formatting is its ``cell`` function. Cell text is escaped for GFM (``|`` → ``\\|``, newlines →
spaces), so a cell can never break the table.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from typing import Any

import pandas as pd

MISSING_CELL = "–"


def format_cell(value: Any, decimals: int | None = None) -> str:
    """Default cell text: floats with ``decimals`` places (``None``: 4 significant digits), a
    missing value (``None``, NaN, ±inf) as ``–``, anything else ``str``."""
    if isinstance(value, float):
        if not math.isfinite(value):
            return MISSING_CELL
        return f"{value:.4g}" if decimals is None else f"{value:.{decimals}f}"
    return MISSING_CELL if value is None else str(value)


def escape_cell(text: str) -> str:
    """``text`` safe inside a GFM table cell."""
    return text.replace("|", "\\|").replace("\n", " ")


def markdown_table(
    data: pd.DataFrame | Sequence[Sequence[Any]],
    columns: Sequence[Any] | None = None,
    *,
    index: bool = False,
    decimals: int | None = None,
    cell: Callable[[Any], str] | None = None,
    title: str = "",
    notes: Sequence[str] = (),
) -> str:
    """A GFM table (no trailing newline).

    Args:
        data: a DataFrame, or a sequence of rows (each padded with empty cells / cut to ``columns``).
        columns: header cells; default the DataFrame's columns (required for rows).
        index: DataFrame only: the index as first column, headed by the index name.
        decimals: decimals of float cells under the default :func:`format_cell`.
        cell: value → cell text (overrides ``decimals``); header cells are ``str``.
        title: a line above the table (e.g. ``"## Table 3.2: …"``), followed by a blank line.
        notes: bullet lines below the table, after a blank line.
    """
    if isinstance(data, pd.DataFrame):
        header = list(data.columns) if columns is None else list(columns)
        if index:
            header = [data.index.name or "", *header]
        rows: Sequence[Sequence[Any]] = list(data.itertuples(index=index))
    else:
        if columns is None:
            raise ValueError("markdown_table: rows need their columns")
        header, rows = list(columns), data
    if not header:
        raise ValueError("a table needs at least one column")
    text = cell or (lambda value: format_cell(value, decimals))
    width = len(header)
    lines = [title, ""] if title else []
    lines.append("| " + " | ".join(escape_cell(str(c)) for c in header) + " |")
    lines.append("|" + "---|" * width)
    for row in rows:
        cells = (list(row) + [""] * width)[:width]
        lines.append("| " + " | ".join(escape_cell(text(c)) for c in cells) + " |")
    if notes:
        lines.append("")
        lines += [f"- {note}" for note in notes]
    return "\n".join(lines)
