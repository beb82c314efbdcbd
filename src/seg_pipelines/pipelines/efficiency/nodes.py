"""Nodes of the ``efficiency`` pipeline (Tables 3.5, 3.6, 4.6, 5.8): the work is in
:mod:`seg_pipelines.experiments.efficiency`, imported in each body (registration needs no torch)."""

from __future__ import annotations

from typing import Any

import pandas as pd


def complexity_table_3_5(params: dict[str, Any]) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Table 3.5: heads ± CAA, parameters and MACs at the thesis size (meta device); CAA's parameters
    under every reading of the text."""
    from seg_pipelines.experiments import efficiency

    return efficiency.complexity_table_3_5(params)


def complexity_table_4_6(params: dict[str, Any]) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Table 4.6: heads ± ECAC, parameters and MACs at the thesis size (meta device); ECAC's parameters
    under every reading of the text."""
    from seg_pipelines.experiments import efficiency

    return efficiency.complexity_table_4_6(params)


def timing_table_3_6(params: dict[str, Any]) -> pd.DataFrame:
    """Table 3.6: training time (N iterations) and inference ms/p, ± CAA."""
    from seg_pipelines.experiments import efficiency

    return efficiency.timing_table_3_6(params)


def ovss_table_5_8(params: dict[str, Any]) -> pd.DataFrame:
    """Table 5.8: CAT-Seg vs LSMSeg (w/o SAM) parameters, latency, training time, MACs."""
    from seg_pipelines.experiments import efficiency

    return efficiency.ovss_table_5_8(params)


def report_tables(
    table_3_5: pd.DataFrame,
    table_3_6: pd.DataFrame,
    table_4_6: pd.DataFrame,
    table_5_8: pd.DataFrame,
    readings_3_5: pd.DataFrame,
    readings_4_6: pd.DataFrame,
) -> tuple[str, str, str, str, dict[str, Any]]:
    """Markdown of each table (with its setting; Tables 3.5 / 4.6 with their readings) and the MLflow metrics."""
    from seg_pipelines.experiments import efficiency

    return efficiency.report_tables(table_3_5, table_3_6, table_4_6, table_5_8, readings_3_5, readings_4_6)
