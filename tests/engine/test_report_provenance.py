"""The report states what a section was made with from the run's record, not today's configuration."""

import datetime as dt
import json
from pathlib import Path

from seg_pipelines.engine import provenance
from seg_pipelines.engine.report import ReportBuilder

HARDWARE = {"cpu": "cpu", "gpu": "none", "torch_threads": "1", "software": "x"}


def _config() -> dict:
    return {
        "reporting_dir": "data/08_reporting",
        "chapters": [
            {
                "title": "Chapter 3",
                "sections": [
                    {
                        "title": "FCN vs FCN+CAA",
                        "pipeline": "caa",
                        "context": {
                            "dataset": [
                                {"ref": ["run:dataset.family", "params:dataset.family"]},
                                {"ref": "run:dataset.samples_per_split.train", "label": "{} train images"},
                            ],
                            "budget": [{"ref": "params:caa.training.iterations", "label": "{} iterations"}],
                            "seeds": "params:caa.training.seed",
                        },
                        "items": [{"path": "caa_results_table.md"}],
                    }
                ],
            }
        ],
    }


def test_a_section_reports_the_data_and_settings_it_was_made_with(tmp_path: Path):
    reporting = tmp_path / "data/08_reporting"
    reporting.mkdir(parents=True)
    (reporting / "caa_results_table.md").write_text("| a |\n|---|\n| 1 |\n")
    # the run: the 48-image test world, 6 iterations, seed 0 ...
    record = provenance.run_record(
        "caa",
        "test",
        "data/test",
        {"caa": {"training": {"iterations": 6, "seed": 0}}},
        {"family": "synthetic", "samples_per_split": {"train": 48, "val": 16}},
        finished=dt.datetime(2026, 12, 6, 2, 40, tzinfo=dt.timezone.utc),
    )
    provenance.write_run_record(reporting, record)
    # ... while the configuration and the prepared data are now the full world
    (reporting / "preparation_report.json").write_text(
        json.dumps({"family": "synthetic", "samples_per_split": {"train": 1600, "val": 400}})
    )
    configured = {"dataset": {"family": "ade20k_150"}, "caa": {"training": {"iterations": 200, "seed": 3}}}
    text = ReportBuilder(_config(), configured, tmp_path, HARDWARE).build()

    assert "- **Dataset:** synthetic (as run); 48 train images (as run)" in text
    assert "- **Budget:** 6 iterations (as run)" in text and "- **Seeds:** 0 (as run)" in text
    assert "1600" not in text.split("**The prepared data has changed")[0]  # nothing of today's data stated as the run's
    assert "200 iterations" not in text and "ade20k_150" not in text
    assert "`kedro run --pipelines=caa --env test` (data root `data/test`), finished 2026-12-06 02:40 UTC" in text
    assert (
        "**The prepared data has changed since this run** (samples_per_split: train 48, val 16 → train 1600, val 400)"
        in text
    )


def test_without_a_record_the_report_says_configured_now(tmp_path: Path):
    (tmp_path / "data/08_reporting").mkdir(parents=True)
    (tmp_path / "data/08_reporting/caa_results_table.md").write_text("| a |\n|---|\n| 1 |\n")
    configured = {"dataset": {"family": "synthetic"}, "caa": {"training": {"iterations": 200, "seed": 3}}}
    text = ReportBuilder(_config(), configured, tmp_path, HARDWARE).build()
    assert "synthetic (configured now: `dataset.family`)" in text
    assert "200 iterations (configured now: `caa.training.iterations`)" in text
    assert "Made with" not in text and "train images" not in text  # unknown, not guessed from today's data
