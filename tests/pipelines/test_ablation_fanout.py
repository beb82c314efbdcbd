"""Kedro-native fan-out of the ablation tables: one node per (variant, seed) generated from the
table spec and namespaced, one summary node per table, picklable nodes, and one table run end to
end with ``ParallelRunner`` on the test env (finished settings reused by their hash)."""

from __future__ import annotations

import json
import os
import pickle
from pathlib import Path

import pandas as pd
import pytest
from kedro.framework.session import KedroSession
from kedro.framework.startup import bootstrap_project
from kedro.runner import ParallelRunner

from seg_pipelines.experiments import caa_ablations, ecac_ablations, lsmseg_ablations
from seg_pipelines.pipelines.caa_ablations import create_pipeline as caa_pipeline
from seg_pipelines.pipelines.ecac_ablations import create_pipeline as ecac_pipeline
from seg_pipelines.pipelines.lsmseg_ablations import create_pipeline as lsmseg_pipeline
from seg_pipelines.thesis_tables import SEED_SLOTS, slot_names


def _table_nodes(pipeline, namespace: str) -> list[str]:
    return sorted(n.name.removeprefix(namespace + ".") for n in pipeline.nodes if n.namespace == namespace)


def test_one_node_per_variant_and_seed_and_one_summary_per_table():
    caa = caa_pipeline()
    spec = caa_ablations.build_table("3.2", {"model": {}, "addon": {}}, {"family": "synthetic"})
    expected = sorted([f"{r}_seed{k}" for r in slot_names(spec.rows) for k in range(SEED_SLOTS)] + ["summary"])
    assert _table_nodes(caa, "caa_ablations.table_3_2") == expected
    assert expected[:3] == ["Baseline_seed0", "Baseline_seed1", "Baseline_seed2"] and "CC_SA_seed2" in expected
    assert len(_table_nodes(caa, "caa_ablations.table_3_7")) == 12 * SEED_SLOTS + 1  # 6 heads x (head, +CAA)
    # the summary reads every record of its table; the records are persisted datasets (JSON pattern)
    summary = next(n for n in caa.nodes if n.name == "caa_ablations.table_3_2.summary")
    assert {i for i in summary.inputs if i.endswith("_result")} == {
        f"caa_ablations.table_3_2.{name}_result" for name in expected if name != "summary"
    }
    assert summary.outputs == [f"caa_ablations_table_3_2_{o}" for o in ("summary", "runs", "md", "metrics")]
    ecac = ecac_pipeline(seed_slots=5)
    assert len(_table_nodes(ecac, "ecac_ablations.table_4_3")) == 8 * 5 + 1
    assert len(_table_nodes(ecac, "ecac_ablations.table_4_8")) == 2 * 5 + 1
    assert ecac_ablations.build_table("4.8", {"model": {}}, {}).rows == ["DeeplabV3plus", "DeeplabV3plus + ECAC"]
    lsmseg = lsmseg_pipeline()
    rows = lsmseg_ablations.TABLES["5.11"].rows
    assert len(_table_nodes(lsmseg, "lsmseg_ablations.table_5_11")) == len(rows) * SEED_SLOTS + 1
    # ParallelRunner and cluster runners pickle every node
    for pipeline in (caa, ecac, lsmseg):
        for node in pipeline.nodes:
            pickle.dumps(node)


def test_seed_nodes_follow_the_environment_variable(monkeypatch):
    from seg_pipelines.engine.ablations import check_slots
    from seg_pipelines.thesis_tables import SEED_SLOTS_ENV

    monkeypatch.setenv(SEED_SLOTS_ENV, "7")
    nodes = _table_nodes(caa_pipeline(), "caa_ablations.table_3_2")
    assert len(nodes) == 4 * 7 + 1 and "CC_SA_seed6" in nodes
    assert len(_table_nodes(lsmseg_pipeline(), "lsmseg_ablations.table_5_7")) == 4 * 7 + 1
    assert len(_table_nodes(caa_pipeline(seed_slots=2), "caa_ablations.table_3_2")) == 4 * 2 + 1  # argument first
    monkeypatch.setenv(SEED_SLOTS_ENV, "")
    assert len(_table_nodes(ecac_pipeline(), "ecac_ablations.table_4_8")) == 2 * SEED_SLOTS + 1
    for bad in ("0", "-2", "five", "2.5"):
        monkeypatch.setenv(SEED_SLOTS_ENV, bad)
        with pytest.raises(ValueError, match=SEED_SLOTS_ENV):
            caa_pipeline()
    with pytest.raises(ValueError, match=f"set {SEED_SLOTS_ENV}=6 for this run"):
        check_slots("caa_ablations/table_3_2", variants=4, row_slots=4, seeds=6, seed_slots=5)


def test_chapter_report_sums_the_tables_verdicts_and_reads_either_rule_key():
    from seg_pipelines.engine.ablations import ChapterReport

    report = pickle.loads(pickle.dumps(ChapterReport("Chapter 9 ablations (X)")))
    tables = ("## Table 9.1: a\n", "## Table 9.2: b\n")
    metrics = (
        {"table_9_1/findings/reproduced": 2.0, "table_9_1/findings/unresolved": 1.0, "table_9_1/A/mIoU_mean": 5.0},
        {"table_9_2/findings/contradicted": 1.0, "table_9_2/findings/reproduced": 1.0},
    )
    text = report({"verdict_rule": "2se"}, *tables, *metrics)  # chapter 5's parameters: verdict_rule on top
    assert text.startswith(
        "# Chapter 9 ablations (X)\n\n- chapter findings (2se interval of the paired difference over seeds): "
        "3 reproduced, 1 contradicted, 1 unresolved\n\n## Table 9.1: a\n"
    )
    assert text.endswith("## Table 9.2: b\n")
    assert "(t95 interval" in report({"report": {"verdict_rule": "t95"}}, *tables, *metrics)  # chapters 3-4
    assert "(t95 interval" in report({}, *tables, *metrics)
    reports = {n.name: n for p in (caa_pipeline(), lsmseg_pipeline()) for n in p.nodes if n.name.endswith("_report")}
    assert reports["lsmseg_ablations_report"].outputs == ["lsmseg_ablations_report_md"]
    assert reports["lsmseg_ablations_report"].inputs[:2] == [
        "params:lsmseg_ablations",
        "lsmseg_ablations_table_5_5_md",
    ]
    assert reports["caa_ablations_report"].inputs[-1] == "caa_ablations_table_3_7_metrics"


def test_one_table_with_parallel_runner_and_reuse_by_settings_hash(project_copy: Path):
    bootstrap_project(project_copy)
    outputs = [f"caa_ablations_table_3_2_{o}" for o in ("summary", "runs", "md", "metrics")]
    with KedroSession.create(project_path=project_copy, env="test") as session:
        session.run(pipeline_names=["caa_ablations"], runner=ParallelRunner(max_workers=2), to_outputs=outputs)
    out = project_copy / "data/test/08_reporting/caa_ablations"
    table = pd.read_csv(out / "table_3_2.csv", keep_default_na=False, dtype=str)
    assert table["Variant"].tolist() == ["Baseline", "CC", "SA", "CC+SA"]
    assert table["verdict"].tolist() == ["", "unresolved", "unresolved", "unresolved"]  # 1 smoke seed
    runs = pd.read_csv(out / "table_3_2_runs.csv")
    assert (runs["status"] == "ok").all() and set(runs["seed"]) == {0}
    records = project_copy / "data/test/07_model_output/caa_ablations/table_3_2"
    statuses = {p.stem: json.loads(p.read_text())["status"] for p in records.glob("*.json")}
    assert statuses["CC_SA_seed0"] == "ok" and statuses["CC_SA_seed1"] == "skipped"  # test env: 1 seed
    cached = sorted((project_copy / "data/test/06_models/caa_ablations_runs/results").glob("*.json"))
    assert len(cached) == 4  # one evaluation per (row, seed) setting
    # a second run (sequential) reuses every finished setting: same numbers, no new cache entry
    before = runs.set_index(["row", "metric"])["value"]
    with KedroSession.create(project_path=project_copy, env="test") as session:
        session.run(pipeline_names=["caa_ablations"], to_outputs=outputs)
    again = pd.read_csv(out / "table_3_2_runs.csv").set_index(["row", "metric"])["value"]
    assert again.equals(before) and len(list(cached[0].parent.glob("*.json"))) == 4
    # MLflow: the worker processes logged each (row, seed) as a child run of the first kedro run
    import mlflow

    mlflow.set_tracking_uri(os.environ["MLFLOW_TRACKING_URI"])
    runs = mlflow.search_runs(search_all_experiments=True, order_by=["start_time ASC"])
    parent = runs[runs["tags.kedro.pipeline"] == "caa_ablations"].iloc[0]
    children = runs[runs["tags.mlflow.parentRunId"] == parent["run_id"]]
    assert sorted(children["tags.mlflow.runName"]) == sorted(
        f"caa_ablations/table_3_2/{row}/seed0" for row in ("Baseline", "CC", "SA", "CC+SA")
    )
    assert (children["status"] == "FINISHED").all() and (children["tags.status"] == "ok").all()
    assert children["metrics.mIoU"].notna().all() and set(children["tags.seed"]) == {"0"}
    assert (runs["status"] == "FINISHED").all()  # no orphan run left RUNNING by a worker process
    assert parent["metrics.table_3_2/findings/unresolved"] == 3  # the summary's metrics, saved in a worker
    assert "SEG_PIPELINES_MLFLOW_PARENT_RUN_ID" not in os.environ  # withdrawn when the run ended


def test_the_table_specs_are_the_thesis_tables_module():
    # the pipelines are built from seg_pipelines.thesis_tables (no torch at registration); under the
    # default parameters the experiments' table specs must have its rows, columns and numbers
    from seg_pipelines.experiments import caa_ablations as caa
    from seg_pipelines.experiments import ecac_ablations as ecac
    from seg_pipelines.experiments.closed_set_ablations import LAYOUT_MANIFEST, table_layout
    from seg_pipelines.thesis_tables import MIOU, ablation_tables

    assert caa.TABLE_IDS == ("3.2", "3.3", "3.4", "3.7") and ecac.TABLE_IDS == (
        "4.2",
        "4.3",
        "4.4",
        "4.5",
        "4.7",
        "4.8",
    )
    assert list(lsmseg_ablations.TABLES) == ["5.5", "5.6", "5.7", "5.10", "5.11"]
    with pytest.raises(KeyError, match=r"known: \('3.2', '3.3', '3.4', '3.7'\)"):
        caa.build_table("3.5", {"model": {}}, LAYOUT_MANIFEST)
    for module, chapter in ((caa, "caa_ablations"), (ecac, "ecac_ablations")):
        for printed in ablation_tables(chapter):
            assert list(printed.rows) == table_layout(module.build_table, printed.id), f"{chapter} {printed.id}"
            spec = module.build_table(printed.id, {"model": {}, "addon": {}}, LAYOUT_MANIFEST)
            if printed.columns == (MIOU,):  # the one-column tables print the thesis beside ours, by row
                assert spec.columns == [MIOU] and spec.thesis == printed.thesis, f"{chapter} {printed.id}"
    assert caa.build_table("3.7", {"model": {}}, LAYOUT_MANIFEST).thesis == ablation_tables("caa_ablations")[3].thesis
    table_4_7 = ecac.build_table("4.7", {"model": {}}, LAYOUT_MANIFEST)
    assert table_4_7.thesis["FCN + ECAC"] == {"ADE20K": 43.12, "COCO-Stuff": 36.68, "Pascal-Context": 50.68}
    assert ecac.build_table("4.3", {"model": {}}, LAYOUT_MANIFEST).thesis[
        "L_{rceS} + L_{rceT} + L_M + L_{KL} + 50 · L_{iv}"
    ] == {MIOU: 50.68}
    for printed in ablation_tables("lsmseg_ablations"):
        spec = lsmseg_ablations.TABLES[printed.id]
        assert (spec.key, spec.rows, spec.columns, spec.thesis) == (
            printed.key,
            printed.rows,
            printed.columns,
            printed.thesis,
        )
    # the measured columns of chapter 5 are the benchmark columns of the OVSS evaluation
    assert lsmseg_ablations.TABLES["5.6"].columns == lsmseg_ablations.BENCHMARK_COLUMNS
    assert lsmseg_ablations.TABLES["5.5"].columns == (*lsmseg_ablations.BENCHMARK_COLUMNS, "avg.")
    assert (
        lsmseg_ablations.TABLES["5.5"].thesis["32"]["avg."] == 49.6 and lsmseg_ablations.TABLES["5.5"].row_header == "K"
    )


def test_ablation_nodes_are_plain_picklable_callables_with_kedro_readable_signatures():
    import inspect
    import typing

    from seg_pipelines.pipelines.ablation_fanout import SummaryNode, VariantNode

    for pipeline in (caa_pipeline(), ecac_pipeline(), lsmseg_pipeline()):
        for node in pipeline.nodes:
            typing.get_type_hints(node.func)  # Kedro's parameter type extractor reads every node's hints
            inspect.signature(node.func).bind(*node.inputs)  # Kedro's input check
            restored = pickle.loads(pickle.dumps(node.func))  # ParallelRunner pickles every node
            if isinstance(node.func, (VariantNode, SummaryNode)):
                assert restored == node.func, node.name
    variant = next(n for n in caa_pipeline().nodes if n.name == "caa_ablations.table_3_7.FCN_CAA_seed2").func
    assert (type(variant).__name__, variant.table, variant.row, variant.seed_slot) == ("CAAVariant", "3.7", 1, 2)
    summary = next(n for n in lsmseg_pipeline(seed_slots=2).nodes if n.name == "lsmseg_ablations.table_5_11.summary")
    assert (summary.func.table, summary.func.row_slots, summary.func.seed_slots) == ("5.11", 12, 2)
    assert summary.outputs == [f"lsmseg_ablations_table_5_11_{o}" for o in ("summary", "md", "runs", "metrics")]
