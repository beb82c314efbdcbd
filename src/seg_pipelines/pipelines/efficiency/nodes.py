"""Thin nodes of the ``efficiency`` pipeline; the work is in :mod:`seg_pipelines.experiments.efficiency`."""

from __future__ import annotations

from typing import Any

import pandas as pd

from seg_pipelines.experiments import efficiency


def complexity_table_3_5(params: dict[str, Any]) -> pd.DataFrame:
    """Table 3.5: heads ± CAA, parameters and MACs at the thesis size (meta device)."""
    return efficiency.build_complexity_table("table_3_5", **params["complexity"])


def complexity_table_4_6(params: dict[str, Any]) -> pd.DataFrame:
    """Table 4.6: heads ± ECAC, parameters and MACs at the thesis size (meta device)."""
    return efficiency.build_complexity_table("table_4_6", **params["complexity"])


def timing_table_3_6(params: dict[str, Any]) -> pd.DataFrame:
    """Table 3.6: training time (N iterations) and inference ms/p, ± CAA."""
    table_params = params["table_3_6"]
    return efficiency.build_table_3_6(
        efficiency.timing_config(params["timing"], table_params.get("timing")),
        num_classes=table_params["num_classes"],
        model_cfg=table_params["model"],
        addon_cfg=table_params["addon"],
    )


def ovss_table_5_8(params: dict[str, Any]) -> pd.DataFrame:
    """Table 5.8: CAT-Seg vs LSMSeg (w/o SAM) parameters, latency, training time, MACs."""
    table_params = params["table_5_8"]
    return efficiency.build_table_5_8(
        efficiency.timing_config(params["timing"], table_params.get("timing")),
        num_classes=table_params["num_classes"],
        complexity_cfg=table_params["complexity_model"],
        timing_cfg=table_params["timing_model"],
        models=table_params["models"],
    )


def report_tables(
    table_3_5: pd.DataFrame, table_3_6: pd.DataFrame, table_4_6: pd.DataFrame, table_5_8: pd.DataFrame
) -> tuple[str, str, str, str, dict[str, Any]]:
    """Markdown of each table (with its setting) and the MLflow metrics."""
    tables = {"table_3_5": table_3_5, "table_3_6": table_3_6, "table_4_6": table_4_6, "table_5_8": table_5_8}
    markdowns = [efficiency.report_markdown(name, table) for name, table in tables.items()]
    return (*markdowns, efficiency.efficiency_metrics(tables))
