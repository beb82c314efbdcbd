"""Shared ablation engine (seg_pipelines.engine.ablations): failures isolated, mean ± std, exact
rows, long table, markdown, flat metrics and MLflow nested child runs."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from seg_pipelines.engine.ablations import (
    AblationVariant,
    ablation_long_table,
    ablation_markdown,
    ablation_metrics,
    run_ablation,
    summarise_ablation,
)
from seg_pipelines.engine.tracking import mlflow_key

VARIANTS = [
    AblationVariant("3.2", "Baseline", {"addon": None}, {"CC": "", "SA": ""}),
    AblationVariant("3.2", "CC", {"addon": "caa", "caa": {"use_semantic_affinity": False}}, {"CC": "✓", "SA": ""}),
    AblationVariant("3.2", "CC+SA", {"addon": "caa"}, {"CC": "✓", "SA": "✓"}),
]
ROWS = ["Baseline", "CC", "CC+SA"]
SCORES = {"Baseline": [40.0, 42.0, 44.0], "CC": [50.0, 50.0, 50.0], "CC+SA": [10.0, 20.0, 30.0]}


def _fake(variant: AblationVariant, seed: int) -> dict[str, float]:
    if variant.row == "CC":
        raise RuntimeError("CUDA out of memory\nsecond line")
    return {"mIoU": SCORES[variant.row][seed], "mAcc": 2 * SCORES[variant.row][seed]}


def test_failed_variant_reported_and_others_finish():
    results = run_ablation(VARIANTS, [0, 1, 2], _fake, name="caa_ablations/table_3_2", progress=False)
    assert len(results) == 9
    assert [(r.variant.row, r.seed) for r in results[:3]] == [("Baseline", 0), ("Baseline", 1), ("Baseline", 2)]
    failed = [r for r in results if r.status == "failed"]
    assert {r.variant.row for r in failed} == {"CC"} and len(failed) == 3
    assert failed[0].error.startswith("RuntimeError: CUDA out of memory") and failed[0].metrics == {}
    assert all(r.status == "ok" and r.seconds >= 0 for r in results if r.variant.row != "CC")
    assert results[-1].metrics == {"mIoU": 30.0, "mAcc": 60.0}


def test_summary_mean_std_exact_rows_and_failed_cells():
    results = run_ablation(VARIANTS, [0, 1, 2], _fake, name="t", progress=False)
    table = summarise_ablation(results, ROWS, ["mIoU", "mAcc"], decimals=1)
    assert list(table.index) == ROWS and table.index.name == "row"
    assert list(table.columns) == ["CC", "SA", "mIoU", "mAcc"]
    # mean 42, sample std 2; mean 20, std 10
    assert table.loc["Baseline", "mIoU"] == "42.0 ± 2.0"
    assert table.loc["CC+SA", "mIoU"] == "20.0 ± 10.0"
    assert table.loc["CC+SA", "mAcc"] == "40.0 ± 20.0"
    assert table.loc["CC", "mIoU"] == "failed: RuntimeError: CUDA out of memory"
    assert table.loc["CC+SA", "CC"] == "✓" and table.loc["Baseline", "SA"] == ""
    # reordering follows `rows`
    assert list(summarise_ablation(results, ROWS[::-1], ["mIoU"]).index) == ROWS[::-1]
    with pytest.raises(ValueError, match="do not match"):
        summarise_ablation(results, ["Baseline", "CC"], ["mIoU"])
    with pytest.raises(ValueError, match="do not match"):
        summarise_ablation(results, ROWS + ["CA"], ["mIoU"])


def test_summary_single_seed_partial_failure_and_thesis_columns():
    calls = {"n": 0}

    def flaky(variant, seed):
        calls["n"] += 1
        if variant.row == "CC" and seed == 1:
            raise ValueError("diverged")
        return {"mIoU": 10.0 + seed}

    results = run_ablation(VARIANTS, [0, 1], flaky, name="t", progress=False)
    table = summarise_ablation(results, ROWS, ["mIoU"], decimals=2, thesis={"CC+SA": {"mIoU": 45.7}})
    assert table.loc["CC", "mIoU"] == "10.00 (1/2 seeds)"
    assert table.loc["Baseline", "mIoU"] == f"10.50 ± {np.std([10, 11], ddof=1):.2f}"
    assert table.loc["CC+SA", "thesis mIoU"] == "45.70" and table.loc["Baseline", "thesis mIoU"] == "–"
    one = summarise_ablation(run_ablation(VARIANTS[:1], [3], flaky, name="t", progress=False), ["Baseline"], ["mIoU"])
    assert one.loc["Baseline", "mIoU"] == "13.0"


def test_bad_input_is_rejected():
    with pytest.raises(ValueError, match="no seeds"):
        run_ablation(VARIANTS, [], _fake, name="t", progress=False)
    with pytest.raises(ValueError, match="duplicate"):
        run_ablation(VARIANTS + VARIANTS[:1], [0], _fake, name="t", progress=False)
    mixed = run_ablation(
        [VARIANTS[0], AblationVariant("3.3", "Intra")], [0], lambda v, s: {"mIoU": 1.0}, name="t", progress=False
    )
    with pytest.raises(ValueError, match="mix tables"):
        summarise_ablation(mixed, ["Baseline", "Intra"], ["mIoU"])
    bad = run_ablation(VARIANTS[:1], [0], lambda v, s: 3.0, name="t", progress=False)
    assert bad[0].status == "failed" and "mapping" in bad[0].error


def test_long_table_markdown_and_metrics():
    results = run_ablation(VARIANTS, [0, 1, 2], _fake, name="t", progress=False)
    long = ablation_long_table(results)
    # 2 ok variants x 3 seeds x 2 metrics + 1 failed variant x 3 seeds x 1 line
    assert len(long) == 15
    assert list(long.columns) == ["table", "row", "seed", "metric", "value", "status", "error", "seconds", "overrides"]
    ok = long[(long["row"] == "CC+SA") & (long["metric"] == "mIoU")]
    assert ok["value"].tolist() == [10.0, 20.0, 30.0]
    assert long[long["row"] == "CC"]["value"].isna().all()
    assert (long[long["row"] == "CC"]["status"] == "failed").all()

    table = summarise_ablation(results, ROWS, ["mIoU"])
    text = ablation_markdown(table, "Table 3.2: CAA components", notes=["3 seeds"])
    lines = text.splitlines()
    assert lines[0] == "## Table 3.2: CAA components"
    assert lines[2] == "| row | CC | SA | mIoU |"
    assert lines[4] == "| Baseline |  |  | 42.0 ± 2.0 |"
    assert lines[-1] == "- 3 seeds"

    flat = ablation_metrics(results)
    assert flat["table_3_2/CC_SA/mIoU_mean"] == pytest.approx(20.0)
    assert flat["table_3_2/CC_SA/mIoU_std"] == pytest.approx(10.0)
    assert flat["table_3_2/CC/failed_seeds"] == 3.0 and "table_3_2/CC/mIoU_mean" not in flat
    assert mlflow_key("α=0.1, β=50", component=True) == "α_0.1_ β_50"
    assert mlflow_key("w/o L_aux", component=True) == "w_o L_aux"


def test_mlflow_nested_child_runs(tmp_path):
    mlflow = pytest.importorskip("mlflow")
    mlflow.set_tracking_uri(f"sqlite:///{tmp_path}/m.db")
    mlflow.set_experiment("ablation-test")
    # without an active run nothing is logged
    run_ablation(VARIANTS[:1], [0], _fake, name="t", progress=False)
    assert len(mlflow.search_runs(search_all_experiments=True)) == 0
    with mlflow.start_run(run_name="parent") as parent:
        results = run_ablation(
            VARIANTS,
            [0, 1],
            _fake,
            name="caa_ablations/table_3_2",
            tags={"method": "caa", "head": "fcn"},
            progress=False,
        )
        assert mlflow.active_run().info.run_id == parent.info.run_id  # the parent is active again
    runs = mlflow.search_runs(
        search_all_experiments=True, filter_string=f"tags.mlflow.parentRunId = '{parent.info.run_id}'"
    )
    assert len(runs) == len(results) == 6
    by_name = runs.set_index("tags.mlflow.runName")
    child = by_name.loc["caa_ablations/table_3_2/CC+SA/seed1"]
    assert child["metrics.mIoU"] == 20.0 and child["tags.method"] == "caa" and child["tags.seed"] == "1"
    assert child["tags.table"] == "3.2" and child["tags.variant"] == "CC+SA" and child["status"] == "FINISHED"
    failed = by_name.loc["caa_ablations/table_3_2/CC/seed0"]
    assert failed["status"] == "FAILED" and failed["tags.error"].startswith("RuntimeError")
    assert failed["params.caa.use_semantic_affinity"] == "False"
    assert math.isnan(failed.get("metrics.mIoU", float("nan")))


# --- tables and the closed-set helpers ---------------------------------------------------------------


def test_report_table_verdicts_thesis_columns_and_notes():
    from seg_pipelines.engine.ablations import AblationTable, report_ablation_table

    variants = [
        AblationVariant("3.7", "FCN", {}, {"Backbone": "r"}),
        AblationVariant("3.7", "FCN+CAA", {}, {"Backbone": "r"}),
    ]
    values = {("FCN", 0): 10.0, ("FCN", 1): 12.0, ("FCN+CAA", 0): 15.0, ("FCN+CAA", 1): 16.0}

    def fail_caa_seed1(variant, seed):
        return {"synthetic": values[(variant.row, seed)]}

    results = run_ablation(variants, [0, 1], fail_caa_seed1, name="t", progress=False)
    spec = AblationTable(
        "3.7",
        "CAA on heads",
        variants,
        ["synthetic"],
        "Method",
        {"FCN": {"ADE20K": 36.1}, "FCN+CAA": {"ADE20K": 43.12, "COCO-Stuff": 35.23}},
        [("FCN+CAA", "FCN")],
        ["a note"],
    )
    table, runs, markdown, metrics = report_ablation_table(spec, results, decimals=2)
    assert list(table.columns) == [
        "Method",
        "Backbone",
        "synthetic",
        "Δ vs baseline",
        "verdict",
        "thesis ADE20K",
        "thesis COCO-Stuff",
    ]
    assert table["synthetic"].tolist() == [
        f"11.00 ± {np.std([10, 12], ddof=1):.2f}",
        f"15.50 ± {np.std([15, 16], ddof=1):.2f}",
    ]
    # paired differences 5 and 4: mean 4.5, se 0.5, t_{0.975,1} = 12.71 → [-1.85, 10.85], unresolved
    assert table["Δ vs baseline"].tolist() == ["", "FCN: +4.50 [-1.85, 10.85] (t95, n=2)"]
    assert table["verdict"].tolist() == ["", "unresolved"] and metrics["table_3_7/findings/unresolved"] == 1
    assert table["thesis COCO-Stuff"].tolist() == ["–", "35.23"] and table["thesis ADE20K"].tolist() == [
        "36.10",
        "43.12",
    ]
    assert markdown.startswith("## Table 3.7: CAA on heads") and "- a note" in markdown
    assert len(runs) == 4 and metrics["table_3_7/FCN_CAA/synthetic_mean"] == pytest.approx(15.5)


def test_seeds_and_evaluation_subset():
    from seg_pipelines.engine.ablations import resolve_seeds
    from seg_pipelines.experiments.closed_set_ablations import evaluation_index

    assert resolve_seeds(3) == [0, 1, 2] and resolve_seeds([5, 7]) == [5, 7]
    with pytest.raises(ValueError, match="seeds"):
        resolve_seeds(0)
    index = pd.DataFrame({"split": ["train"] * 3 + ["val"] * 5, "sample_id": range(8)})
    cut = evaluation_index(index, {"split": "val", "max_images": 2})
    assert cut[cut["split"] == "val"]["sample_id"].tolist() == [3, 4] and (cut["split"] == "train").sum() == 3
    assert evaluation_index(index, {"split": "val"}) is index


def test_pixel_features_are_the_decode_head_features_of_the_requested_classes():
    import torch

    from seg_pipelines.experiments.closed_set import build_segmentor
    from seg_pipelines.experiments.closed_set_ablations import sample_pixel_features, tsne_embedding

    torch.manual_seed(0)
    model = build_segmentor(
        {"name": "fcn", "num_classes": 4, "backbone": "resnet_tiny", "channels": 8, "aux_channels": 8}
    )
    labels = torch.zeros(2, 32, 32, dtype=torch.long)
    labels[:, :, 16:] = 2
    labels[:, :4] = 255
    dataset = [{"image": torch.randn(3, 32, 32), "label": labels[i]} for i in range(2)]
    features, classes = sample_pixel_features(model, dataset, [2, 0, 3], per_class=5, seed=0)
    assert features.shape == (10, 8) and sorted(set(classes.tolist())) == [0, 2]  # class 3 absent
    with torch.no_grad():  # every sampled row is one of the head's pixel features of its class
        head, _ = model.decode_head.forward_features_with_extras(
            model.extract_features(torch.stack([d["image"] for d in dataset]))
        )
    pixels = head.permute(0, 2, 3, 1).reshape(-1, 8).numpy()
    assert all(np.isclose(pixels, row, atol=1e-5).all(axis=1).any() for row in features)
    embedding = tsne_embedding(np.concatenate([features, features + 10]), seed=0, perplexity=5)
    assert embedding.shape == (20, 2) and np.isfinite(embedding).all()
    with pytest.raises(ValueError, match="none of the classes"):
        sample_pixel_features(model, dataset, [1], per_class=5)
