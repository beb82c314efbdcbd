"""What a pipeline's outputs were made with, recorded when its run finishes: the run record.

One JSON file per pipeline, ``<data root>/08_reporting/provenance/<pipeline>.json`` (written by
:class:`seg_pipelines.hooks.RunProvenanceHook`, read by the report), holding the Kedro environment and
data root, when the run finished, the dataset it read (family, root, class count, samples per split,
from the preparation report of that run) and the parameter blocks it ran with. The report states a
section's dataset, budget and seeds from this record, not from the configuration as it is when the
report is built, and says so when the prepared data has changed since.

Paths in the record are relative to the project root, so a moved or copied project keeps its records.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

PROVENANCE_FOLDER = "provenance"  # under the reporting folder
DATASET_KEYS = ("family", "root", "num_classes", "samples_per_split")


def record_path(reporting_dir: Path, pipeline: str) -> Path:
    """Where the run record of ``pipeline`` lives under ``reporting_dir``."""
    return Path(reporting_dir) / PROVENANCE_FOLDER / f"{pipeline}.json"


def dataset_summary(preparation_report: Mapping[str, Any] | None) -> dict[str, Any] | None:
    """The dataset facts a table depends on, from a preparation report (None without one)."""
    if not isinstance(preparation_report, Mapping):
        return None
    return {key: preparation_report[key] for key in DATASET_KEYS if key in preparation_report}


def run_record(
    pipeline: str,
    env: str,
    data_root: str,
    parameters: Mapping[str, Any],
    dataset: Mapping[str, Any] | None,
    kedro_run_id: str | None = None,
    finished: dt.datetime | None = None,
) -> dict[str, Any]:
    """The record of one finished run of ``pipeline`` (see module docstring)."""
    finished = finished or dt.datetime.now(dt.timezone.utc)
    return {
        "pipeline": pipeline,
        "env": env,
        "data_root": str(data_root),
        "finished": finished.strftime("%Y-%m-%d %H:%M UTC"),
        "kedro_run_id": kedro_run_id,
        "dataset": dict(dataset) if dataset else None,
        "parameters": json.loads(json.dumps(dict(parameters), default=str)),
    }


def write_run_record(reporting_dir: Path, record: Mapping[str, Any]) -> Path:
    """Write ``record`` as the run record of its pipeline (replacing the previous one); its path."""
    path = record_path(reporting_dir, str(record["pipeline"]))
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_suffix(".json.tmp")
    temporary.write_text(json.dumps(record, indent=2, sort_keys=True) + "\n", encoding="utf-8")
    temporary.replace(path)
    return path


def read_run_record(reporting_dir: Path, pipeline: str) -> dict[str, Any] | None:
    """The run record of ``pipeline``, or None when it has not run (or the file is unreadable)."""
    path = record_path(reporting_dir, pipeline)
    try:
        record = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return record if isinstance(record, dict) else None


def dataset_changes(recorded: Mapping[str, Any] | None, current: Mapping[str, Any] | None) -> list[str]:
    """How the prepared data now differs from what a run recorded, as ``key: then → now`` phrases
    (empty when either is unknown or nothing differs)."""
    if not recorded or not current:
        return []
    changes = []
    for key in DATASET_KEYS:
        then, now = recorded.get(key), current.get(key)
        if then is not None and now is not None and then != now:
            changes.append(f"{key}: {_short(then)} → {_short(now)}")
    return changes


def _short(value: Any) -> str:
    if isinstance(value, Mapping):
        return ", ".join(f"{k} {v}" for k, v in value.items())
    return str(value)
