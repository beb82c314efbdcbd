"""Nodes of the ``lsmseg_ablations`` pipeline: one per thesis table, thin wrappers over
:func:`seg_pipelines.experiments.lsmseg_ablations.run_table`."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pandas as pd

from seg_pipelines.experiments.lsmseg_ablations import TABLES, run_table


def table_node(table: str) -> Callable[..., tuple[pd.DataFrame, str, pd.DataFrame, dict[str, float]]]:
    """The node function of thesis Table ``table``: (index, manifest, tiny CLIP config and weights,
    prompt set, params) → (summary CSV, markdown, per-run CSV, metrics)."""
    spec = TABLES[table]

    def run(
        index: pd.DataFrame,
        manifest: dict[str, Any],
        tiny_clip_config: dict[str, Any],
        tiny_clip_checkpoint: str,
        prompt_set: dict[str, Any] | None,
        params: dict[str, Any],
    ):
        return run_table(index, manifest, tiny_clip_config, tiny_clip_checkpoint, prompt_set, params, table)

    run.__name__ = f"run_lsmseg_ablation_{spec.key}"
    run.__doc__ = f"{spec.title}: every row × seed trained and evaluated on the six benchmarks."
    return run
