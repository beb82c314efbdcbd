"""The report engine on a fake reporting folder, the shipped section list, and `kedro run --pipelines=report`."""

import json
from pathlib import Path

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import pytest  # noqa: E402
import yaml  # noqa: E402
from kedro.framework.session import KedroSession  # noqa: E402
from kedro.framework.startup import bootstrap_project  # noqa: E402
from mlflow.tracking import MlflowClient  # noqa: E402

from seg_pipelines.engine import report  # noqa: E402
from tests.fixtures import PROJECT_ROOT

HARDWARE = {"cpu": "Test CPU (2 logical cores)", "gpu": "none (CPU only)", "torch_threads": "1", "software": "torch"}

TABLE_MD = (
    "### Table 3.2: ablation on the synthetic world\n\n| Method | mIoU |\n|---|---|\n"
    "| Baseline | 20.1 ± 0.4 |\n| CC+SA | 25.3 ± 0.2 |\n"
)


def shipped_report_config() -> dict:
    """``conf/base/parameters_report.yml``'s ``report`` block with the default data root (``data``)."""
    text = (PROJECT_ROOT / "conf/base/parameters_report.yml").read_text()
    return yaml.safe_load(text.replace("${globals:data_root}", "data"))["report"]


def _png(path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fig, ax = plt.subplots(figsize=(1, 1))
    ax.plot([0, 1], [0, 1])
    fig.savefig(path)
    plt.close(fig)


def _fake_outputs(root: Path, data_root: str = "data") -> Path:
    out = root / data_root / "08_reporting"
    (out / "caa_ablations").mkdir(parents=True)
    (out / "caa_ablations" / "table_3_2.md").write_text(TABLE_MD)
    (out / "caa_ablations" / "table_3_2.csv").write_text("row,mIoU\nBaseline,20.1\nCC+SA,25.3\n")
    (out / "all_tables.md").write_text("| Method | x |\n|---|---|\n| Baseline | 1 |\n")
    (out / "scores.csv").write_text("class,iou\nsky,0.91\ngrass,0.42\n")
    (out / "metrics.json").write_text(
        json.dumps({"caa": {"baseline": {"mIoU": 20.0}, "method": {"mIoU": 23.5}}, "note": "x"})
    )
    (out / "curve.json").write_text(json.dumps([{"iteration": 10, "loss": 2.0}, {"iteration": 300, "loss": 1.0}]))
    _png(out / "figures" / "curves.png")
    _png(out / "stray_figure.png")  # listed by no section
    return out


CONFIG = {
    "reporting_dir": "data/08_reporting",
    "title": "Test report",
    "direction_tolerance": 0.05,
    "chapters": [
        {
            "title": "Chapter 3 — CAA",
            "sections": [
                {
                    "title": "Ablations",
                    "pipeline": "caa_ablations",
                    "context": {
                        "dataset": ["json:data/08_reporting/missing.json:family", "params:dataset.family"],
                        "budget": [
                            {
                                "ref": [
                                    "json:data/08_reporting/curve.json:-1.iteration",
                                    "params:m.training.iterations",
                                ],
                                "label": "{} iterations",
                            },
                            {"ref": "params:m.training.batch_size", "label": "batch {}"},
                        ],
                        "seeds": "params:m.seeds",
                    },
                    "items": [
                        {"path": "**/*table_3_2[._]*md", "title": "Table 3.2"},
                        {"path": "**/*table_3_3[._]*md", "title": "Table 3.3"},
                        {"path": "scores.csv", "title": "Per-class scores"},
                        {"path": "metrics.json", "title": "Metrics", "keys": ["caa.*.mIoU"]},
                        {"path": "figures/curves.png", "title": "Training curves"},
                        {"path": "never.png", "title": "A figure", "pipeline": "other_pipeline"},
                        {"path": "all_tables.md", "title": "All tables", "inline": False},
                    ],
                    "thesis": {
                        "comparable": False,
                        "note": "ADE20K vs synthetic.",
                        "table": {
                            "title": "Thesis Table 3.2",
                            "columns": ["Method", "mIoU"],
                            "rows": [["Baseline", 36.1], ["CC+SA", 43.12]],
                        },
                        "directions": [
                            {
                                "label": "CC+SA − baseline",
                                "thesis": 7.02,
                                "ours": {
                                    "minus": [
                                        "json:data/08_reporting/metrics.json:caa.method.mIoU",
                                        "json:data/08_reporting/metrics.json:caa.baseline.mIoU",
                                    ]
                                },
                            },
                            {
                                "label": "opposite",
                                "thesis": -1.0,
                                "ours": "json:data/08_reporting/metrics.json:caa.method.mIoU",
                            },
                            {"label": "not run", "thesis": 1.0, "ours": "json:data/08_reporting/nope.json:x"},
                            {
                                "label": "qualitative",
                                "thesis": "fewer (−)",
                                "sign": -1,
                                "ours": {
                                    "ref": "json:data/08_reporting/metrics.json:caa.baseline.mIoU",
                                    "scale": -0.001,
                                },
                            },
                        ],
                    },
                }
            ],
        }
    ],
}
PARAMS = {
    "dataset": {"family": "synthetic"},
    "m": {"training": {"iterations": 200, "batch_size": 8}, "seeds": [0, 1, 2]},
}


def test_report_collects_tables_figures_missing_items_and_thesis_directions(tmp_path):
    _fake_outputs(tmp_path)
    markdown, status = report.build_report(CONFIG, PARAMS, tmp_path, HARDWARE)

    # every table inlined (headings demoted under the item), CSV and JSON rendered as tables
    assert "##### Table 3.2: ablation on the synthetic world" in markdown
    assert "| CC+SA | 25.3 ± 0.2 |" in markdown
    assert "| grass | 0.42 |" in markdown
    assert "| caa.method.mIoU | 23.5 |" in markdown and "caa.note" not in markdown
    # every figure linked relative to the report, including the one no section lists
    assert "![Training curves](figures/curves.png)" in markdown
    assert "## Other outputs" in markdown and "](stray_figure.png)" in markdown
    assert "- [`caa_ablations/table_3_2.csv`](caa_ablations/table_3_2.csv) (the table above as CSV)" in markdown
    assert "## CSV files" in markdown and "- [`scores.csv`](scores.csv)\n" in markdown
    assert "[`all_tables.md`](all_tables.md) — _`all_tables.md`" in markdown and "| Baseline | 1 |" not in markdown
    # missing items with the command that produces them
    assert "- Table 3.3 (`**/*table_3_3[._]*md`) — run `kedro run --pipelines=caa_ablations`" in markdown
    assert "- A figure (`never.png`) — run `kedro run --pipelines=other_pipeline`" in markdown
    assert [s.produced for s in status] == [True, False, True, True, True, False, True]
    assert "5 of 7 listed outputs produced" in markdown
    opening = markdown.split("**Hardware of this machine**")[0]
    assert "**Produced so far:**" in opening and "Table 3.2" in opening and "Table 3.3" not in opening
    # dataset / budget / seeds / hardware, with where each value came from
    assert "- **Dataset:** synthetic (configured now: `dataset.family`)" in markdown
    assert "- **Budget:** 300 iterations (`curve.json`); batch 8 (configured now: `m.training.batch_size`)" in markdown
    assert "- **Seeds:** 0, 1, 2 (configured now: `m.seeds`)" in markdown
    assert "Test CPU (2 logical cores)" in markdown
    # thesis numbers beside ours, comparability stated, direction of the finding checked
    assert "**Thesis vs ours — not comparable.** ADE20K vs synthetic." in markdown
    assert "| CC+SA | 43.12 |" in markdown and "| Baseline | 36.10 |" in markdown
    assert "| CC+SA − baseline | +7.02 | +3.50 | yes |" in markdown
    assert "| opposite | -1.00 | +23.50 | **no** |" in markdown
    assert "| not run | +1.00 | not produced yet | – |" in markdown
    assert "| qualitative | fewer (−) | -0.02 | no effect (\\|ours\\| ≤ 0.05) |" in markdown

    html = report.render_html(markdown, "Test report")
    delimiter_rows = [line for line in markdown.splitlines() if line.startswith("|---|")]
    assert html.count("<table>") == len(delimiter_rows) == 6  # hardware, 3.2, CSV, JSON, thesis, directions
    assert '<img src="figures/curves.png" alt="Training curves"' in html
    for png in (tmp_path / "data/08_reporting").rglob("*.png"):  # every figure renders
        assert f'<img src="{png.relative_to(tmp_path / "data/08_reporting").as_posix()}"' in html
    assert "<h5>Table 3.2: ablation on the synthetic world</h5>" in html and "<title>Test report</title>" in html


def test_reference_lookup_and_errors(tmp_path):
    data = {"a": {"b": [1, 2, {"c": 3}]}, "dataset.num_classes": 60.0}
    assert report.lookup(data, "a.b.-1.c") == 3 and report.lookup(data, "dataset.num_classes") == 60.0
    assert report.lookup(data, "a.x") is report.MISSING and report.lookup(data, "a.b.7") is report.MISSING
    assert report.demote_headings("# A\n## B\n```\n# code\n```", 5) == "##### A\n###### B\n```\n# code\n```"
    with pytest.raises(report.ReportConfigError, match="unknown kind"):
        report.resolve_reference("yaml:x", {}, tmp_path, {})
    with pytest.raises(report.ReportConfigError, match="has no `items`"):
        report.build_report({"chapters": [{"title": "C", "sections": [{"title": "S"}]}]}, {}, tmp_path, HARDWARE)


def test_shipped_section_list_renders_on_an_empty_project(tmp_path):
    config = shipped_report_config()
    markdown, status = report.build_report(config, {}, tmp_path, HARDWARE)
    assert len(status) >= 40 and not any(s.produced for s in status)
    assert "0 of" in markdown and "## Other outputs" not in markdown
    # it opens with what was produced (nothing), and chapters with no output shrink to one line a section
    opening = markdown.split("**Hardware of this machine**")[0]
    assert "**Nothing produced yet.**" in opening and "## Chapter" not in markdown
    not_produced = markdown.split("## Not produced yet")[1]
    for chapter in ("Chapter 3", "Chapter 4", "Chapter 5", "Efficiency", "Data"):
        assert f"- **{chapter}" in not_produced
    for pipeline in (
        "caa",
        "ecac",
        "lsmseg",
        "efficiency",
        "data_preparation",
        "caa_ablations",
        "ecac_ablations",
        "lsmseg_ablations",
    ):
        assert f"`kedro run --pipelines={pipeline}`" in markdown


def test_report_pipeline_runs_alone_and_logs_artifacts(project_copy: Path):
    _fake_outputs(project_copy, "data/test")  # --env test reads and writes under its own data root
    bootstrap_project(project_copy)
    with KedroSession.create(project_path=project_copy, env="test") as session:
        session.run(pipeline_names=["report"])
    out = project_copy / "data/test/08_reporting"
    markdown, html = (out / "report.md").read_text(), (out / "report.html").read_text()
    assert "| CC+SA | 25.3 ± 0.2 |" in markdown and "<table>" in html
    assert '<img src="stray_figure.png"' in html and "run `kedro run --pipelines=caa`" in markdown
    client = MlflowClient()
    (run,) = client.search_runs([client.get_experiment_by_name("seg_pipelines").experiment_id])
    assert run.info.status == "FINISHED" and run.data.tags["pipeline"] == "report"
    assert {a.path for a in client.list_artifacts(run.info.run_id, "reporting")} == {
        "reporting/report.md",
        "reporting/report.html",
    }


def test_direction_with_paired_runs_prints_the_verdict_over_seeds(tmp_path):
    """A sign of means says nothing inside the noise: an ablation direction with ``paired`` gets the
    paired-by-seed verdict of the two rows (t95: mean ± 4.30·se for 3 seeds) from the per-run CSV."""
    runs = tmp_path / "data/08_reporting/abl/table_runs.csv"
    runs.parent.mkdir(parents=True)
    lines = ["table,row,seed,metric,value,status"]
    for seed, (base, cc, sa) in enumerate([(10.0, 12.0, 9.0), (11.0, 13.1, 14.0), (12.0, 13.9, 10.0)]):
        lines += [f"t,Baseline,{seed},mIoU,{base},ok", f"t,CC,{seed},mIoU,{cc},ok", f"t,SA,{seed},mIoU,{sa},ok"]
    lines.append("t,CC,3,mIoU,99.0,ok")  # a seed the baseline lacks is not paired
    runs.write_text("\n".join(lines) + "\n")
    paired = {"runs": "data/08_reporting/abl/table_runs.csv", "metric": "mIoU"}
    config = {
        "chapters": [
            {
                "title": "C",
                "sections": [
                    {
                        "title": "S",
                        "items": [{"path": "abl/table_runs.csv", "title": "runs"}],
                        "thesis": {
                            "directions": [
                                {
                                    "label": "CC",
                                    "thesis": 4.0,
                                    "ours": 2.0,
                                    "paired": {**paired, "rows": ["CC", "Baseline"]},
                                },
                                {
                                    "label": "CC lower",
                                    "thesis": -4.0,
                                    "ours": 2.0,
                                    "paired": {**paired, "rows": ["CC", "Baseline"]},
                                },
                                {
                                    "label": "SA",
                                    "thesis": 4.0,
                                    "ours": 0.0,
                                    "paired": {**paired, "rows": ["SA", "Baseline"]},
                                },
                                {
                                    "label": "gone",
                                    "thesis": 1.0,
                                    "ours": 1.0,
                                    "paired": {**paired, "rows": ["XX", "Baseline"]},
                                },
                                {"label": "plain", "thesis": 1.0, "ours": 1.0},
                            ]
                        },
                    }
                ],
            }
        ]
    }
    markdown, _ = report.build_report(config, {}, tmp_path, HARDWARE)
    # CC − Baseline = (2.0, 2.1, 1.9): mean 2.0, se 0.0577, t95 half-width 4.303 · 0.0577 = 0.25
    assert "| verdict over seeds (paired, t95) |" in markdown
    assert "| CC | +4.00 | +2.00 | yes | reproduced: +2.00 [1.75, 2.25] (t95, n=3) |" in markdown
    assert "| CC lower | -4.00 | +2.00 | **no** | contradicted: +2.00 [1.75, 2.25] (t95, n=3) |" in markdown
    assert "| SA | +4.00 | +0.00 | no effect (\\|ours\\| ≤ 0) | unresolved: +0.00 [" in markdown
    assert (
        "| gone | +1.00 | +1.00 | yes | not produced yet |" in markdown
        and "| plain | +1.00 | +1.00 | yes | – |" in markdown
    )


def test_attribute_prompt_section_prints_thesis_tables_5_3_and_5_4_beside_ours(tmp_path):
    """Issue 30 item 8: the thesis's Table 5.3 / 5.4 rows (§5.3.4) and the direction of each attribute's
    difference to the template, thesis vs ours."""
    from seg_pipelines.thesis_tables import TABLE_5_4

    for row, values in TABLE_5_4.thesis.items():  # the transcription: each printed avg. is its six columns' mean
        assert values["avg."] == pytest.approx(sum(list(values.values())[:6]) / 6, abs=0.051), row
    out = tmp_path / "data" / "08_reporting"
    out.mkdir(parents=True)
    (out / "table_5_3_attribute_scores.md").write_text("| attribute | avg. |\n|---|---|\n| template | 25.7 |\n")
    prefix = "attribute_selection.table_5_3"
    metrics = {f"{prefix}.template.avg": 25.7, f"{prefix}.color.avg": 24.1, f"{prefix}.size.avg": 26.0}
    metrics["attribute_selection.gain_vs_template"] = 0.3
    (out / "attribute_selection_metrics.json").write_text(json.dumps(metrics))
    config = shipped_report_config()
    markdown, _ = report.build_report(config, {}, tmp_path, HARDWARE)
    section = markdown.split("### Attribute prompts")[1].split("### CAT-Seg vs LSMSeg")[0]
    assert "_Thesis Table 5.3 (§5.3.4" in section and "_Thesis Table 5.4 (§5.3.4" in section
    assert "| Baseline | 11.0 | 17.9 | 28.4 | 54.6 | 94.6 | 74.3 | 46.8 |  |" in section
    assert "| Contextual Relationship | 7.1 | 17.4 | 16.5 | 29.8 | 94.6 | 73.9 | 39.9 | -6.9 |" in section
    assert "| Size + Shape +Texture + Color | 11.6 | 18.4 | 28.9 | 55.6 | 94.9 | 77.1 | 47.8 | +1.0 |" in section
    assert "| color − template, avg. (Table 5.3) | +0.50 | -1.60 | **no** |" in section
    assert "| size − template, avg. (Table 5.3) | +0.60 | +0.30 | yes |" in section
    assert "| shape − template, avg. (Table 5.3) | +0.60 | not produced yet | – |" in section
    assert "Table 5.4; ours: the selection half) | +1.00 | +0.30 | yes |" in section


def test_evaluate_outputs_have_their_own_section_with_the_chance_row(tmp_path):
    """Issue 30 item 9: `evaluate`'s table and metrics are filed under their section, not "Other outputs"."""
    out = tmp_path / "data" / "08_reporting"
    out.mkdir(parents=True)
    (out / "evaluation_table.md").write_text(
        "### fcn.pt on synthetic val (60 classes, closed_set, whole): mIoU 12.00\n\n"
        "| model | mIoU |\n|---|---|\n| fcn.pt | 12.00 |\n| chance (uniform random) | 0.81 |\n"
    )
    (out / "evaluation_metrics.json").write_text(json.dumps({"evaluate": {"mIoU": 12.0, "chance_mIoU": 0.81}}))
    config = shipped_report_config()
    markdown, status = report.build_report(config, {}, tmp_path, HARDWARE)
    assert "## Other outputs" not in markdown
    section = markdown.split("### Checkpoint evaluation (`evaluate`)")[1].split("\n## ")[0]
    assert "| chance (uniform random) | 0.81 |" in section and "| evaluate.chance_mIoU | 0.81 |" in section
    assert {s.path for s in status if s.produced} == {"evaluation_table.md", "evaluation_metrics.json"}
