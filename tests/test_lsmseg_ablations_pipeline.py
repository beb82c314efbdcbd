"""lsmseg_ablations: variant overrides build the intended models; the pipeline runs end to end (smoke
settings) and writes Tables 5.5, 5.6, 5.7, 5.10 and 5.11 with exactly the thesis's rows and columns."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest
import torch

from seg_pipelines.engine import lsmseg_ablations as ablations

PROJECT_ROOT = Path(__file__).resolve().parents[1]

# Row and column labels as the thesis prints them (Tables 5.5, 5.6, 5.7, 5.10, 5.11).
SIX = ["A-847", "PC-459", "A-150", "PC-59", "VOC", "VOCb"]
EXPECTED = {
    "table_5_5": ("K", ["16", "32", "48", "64", "96"], SIX + ["avg."]),
    "table_5_6": ("Methods", ["CATSeg [†]", "LSMSeg(w/o SAM)", "LSMSeg(w/ Dinov2-B)", "LSMSeg(w/ SAM-B)", "LSMSeg(w/ SAM-L)"], SIX),
    "table_5_7": ("Methods", ["Baseline", "Concat", "Attn", "Weighted"], SIX + ["avg."]),
    "table_5_10": ("Methods", ["Freeze", "CLIP_qk", "CLIP_kv", "CLIP_qv"], SIX + ["avg."]),
    "table_5_11": ("Methods", [f"{m} ({d})" for d in ("COCO-Stuff", "PC-59", "A-150")
                               for m in ("ZegFormer [49]", "SimSeg [48]", "CAT-Seg [100]", "LSMSeg (ours)")], SIX),
}


def _params(env: str = "test") -> dict:
    from kedro.config import OmegaConfigLoader

    loader = OmegaConfigLoader(str(PROJECT_ROOT / "conf"), base_env="base", default_run_env=env,
                               config_patterns={"parameters": ["parameters*"]})
    return json.loads(json.dumps(loader["parameters"]["lsmseg_ablations"]))


def _variant(params: dict, table: str, row: str):
    return next(v for v in ablations.table_variants(params, table) if v.row == row)


def test_variant_overrides_build_the_intended_models():
    torch.set_num_threads(1)
    params = _params("base")
    setup = {**params["setup"], "clip": {**params["setup"]["clip"], "pretrained": None}}  # no checkpoint needed here
    # Table 5.5: k scaled to the 50 seen classes; the k=16 row builds a filter keeping 5 classes, without SAM
    model = ablations.build_variant_model(setup, _variant(params, "5.5", "16"), seed=0)
    assert model.category_filter.top_k == 5 and model.sam is None
    assert [ablations.resolve_variant(setup, v, 0)[1]["models"]["lsmseg"]["top_k"]
            for v in ablations.table_variants(params, "5.5")] == [5, 9, 14, 19, 28]
    # Table 5.10: CLIP_qk trains exactly the query and key projections of CLIP (split q/k/v, thesis Table 5.10)
    model = ablations.build_variant_model(setup, _variant(params, "5.10", "CLIP_qk"), seed=0)
    trainable = [name for name, p in model.clip.named_parameters() if p.requires_grad]
    assert trainable and all(name.endswith(("original0", "original1")) for name in trainable)
    assert any(name.endswith("original2") for name, p in model.clip.named_parameters() if not p.requires_grad)
    frozen = ablations.build_variant_model(setup, _variant(params, "5.10", "Freeze"), seed=0)
    assert not any(p.requires_grad for p in frozen.clip.parameters())
    # Table 5.7: fusion modes; Table 5.6: SAM-L proxy = tiny SAM at 64 px, CAT-Seg baseline for CATSeg [†]
    fusion = ablations.build_variant_model(setup, _variant(params, "5.7", "Concat"), seed=0)
    assert fusion.fusion.mode == "concat"
    sam_l = ablations.build_variant_model(setup, _variant(params, "5.6", "LSMSeg(w/ SAM-L)"), seed=0)
    assert sam_l.sam.image_size == 64 and sam_l.sam.variant == "tiny"
    assert type(ablations.build_variant_model(setup, _variant(params, "5.6", "CATSeg [†]"), seed=0)).__name__ == "CATSeg"
    # seeds change the initialisation; prompts: enriched rows get the prompt set, template rows none
    key, resolved = ablations.resolve_variant(setup, _variant(params, "5.6", "LSMSeg(w/o SAM)"), 3, "prompts.json")
    assert key == "lsmseg" and resolved["training"]["seed"] == 3 and resolved["prompt_set_path"] == "prompts.json"
    assert ablations.resolve_variant(setup, _variant(params, "5.7", "Weighted"), 3, "prompts.json")[1]["prompt_set_path"] is None
    # Table 5.11: training vocabulary per thesis training dataset; unimplemented methods fail loudly
    assert ablations.resolve_variant(setup, _variant(params, "5.11", "LSMSeg (ours) (PC-59)"), 0)[1]["train_vocabulary"] == "synpc59"
    with pytest.raises(NotImplementedError, match="ZegFormer"):
        ablations.resolve_variant(setup, _variant(params, "5.11", "ZegFormer [49] (A-150)"), 0)
    # bad configuration: misspelt override path, rows differing from the thesis
    with pytest.raises(KeyError, match="models.lsmseg.top_kk|no setting"):
        ablations.apply_overrides(setup, {"models.lsmsegg.top_k": 3})
    broken = json.loads(json.dumps(params))
    broken["tables"]["table_5_7"]["rows"].pop("Attn")
    with pytest.raises(ValueError, match="thesis order"):
        ablations.table_variants(broken, "5.7")


def test_enriched_prompts_fall_back_to_templates_and_complete_missing_classes(tmp_path):
    source = ablations.enriched_prompt_source(str(tmp_path / "absent.json"), ["sky"], ["a photo of a {}."], tmp_path)
    assert source.path is None and "templates" in source.description
    (tmp_path / "set.json").write_text(json.dumps({"sky": "a vast blue sky"}))
    source = ablations.enriched_prompt_source(str(tmp_path / "set.json"), ["sky", "background"], ["a photo of a {}."], tmp_path)
    completed = json.loads(Path(source.path).read_text())
    assert completed == {"sky": ["a vast blue sky"], "background": ["a photo of a background."]}
    source = ablations.enriched_prompt_source("synthetic-world", ["sky", "lime"], ["a photo of a {}."], tmp_path)
    assert source.path == "synthetic-world" and "world" in source.description


def test_lsmseg_ablations_pipeline_runs_end_to_end(project_copy: Path):
    from kedro.framework.session import KedroSession
    from kedro.framework.startup import bootstrap_project
    from mlflow.tracking import MlflowClient

    bootstrap_project(project_copy)
    with KedroSession.create(project_path=project_copy, env="test") as session:
        session.run(pipeline_names=["lsmseg_ablations"])  # data_preparation + clip_pretraining come with it
    folder = project_copy / "data/08_reporting/lsmseg_ablations"
    for key, (header, rows, columns) in EXPECTED.items():
        table = pd.read_csv(folder / f"{key}.csv", keep_default_na=False, dtype={header: str})
        measured = [c for c in table.columns if not c.startswith("thesis ") and c != "Training dataset"]
        assert measured == [header, *columns], key
        assert list(table[header]) == rows, key
        assert [c for c in table.columns if c.startswith("thesis ")] == [f"thesis {c}" for c in columns]
        markdown = (folder / f"{key}.md").read_text()
        assert markdown.startswith(f"## Table {key[6:].replace('_', '.')}:") and "Budget: 1 iterations" in markdown
        runs = pd.read_csv(folder / f"{key}.runs.csv")
        seeds = {0, 1} if key == "table_5_7" else {0}  # smoke: two seeds for Table 5.7 only
        assert set(runs["seed"]) == seeds
        for row in rows:
            cells = table.loc[table[header] == row, columns].iloc[0]
            if "Dinov2" in row or "ZegFormer" in row or "SimSeg" in row:  # not implemented: reported failed
                assert all(str(c).startswith("failed: NotImplementedError") for c in cells), (key, row)
                continue
            for cell in cells:  # "mean ± std" over two seeds, the plain mean for one; mIoU in %
                values = [float(x) for x in str(cell).split(" ± ")]
                assert len(values) == len(seeds) and 0 <= values[0] <= 100 and values[-1] >= 0, (key, row, cell)
            ok = runs[(runs["row"] == row) & (runs["metric"] == "avg.")]
            six = runs[(runs["row"] == row) & runs["metric"].isin(SIX)].groupby("seed")["value"].mean()
            assert (ok["status"] == "ok").all() and ok.set_index("seed")["value"].sort_index().tolist() == pytest.approx(six.sort_index().tolist())
        metrics = json.loads((folder / f"{key}.metrics.json").read_text())
        assert metrics[f"{key}/seconds"] > 0
    table_5_11 = pd.read_csv(folder / "table_5_11.csv")
    assert list(table_5_11["Training dataset"]) == [d for d in ("COCO-Stuff", "PC-59", "A-150") for _ in range(4)]
    # rows with identical settings are trained once per seed (Table 5.10 CLIP_qv = Table 5.6 LSMSeg(w/ SAM-L))
    qv = pd.read_csv(folder / "table_5_10.runs.csv").query("row == 'CLIP_qv' and metric == 'A-847'")["value"].tolist()
    sam_l = pd.read_csv(folder / "table_5_6.runs.csv").query("row == 'LSMSeg(w/ SAM-L)' and metric == 'A-847'")["value"].tolist()
    assert qv == sam_l
    # MLflow: one child run per row x seed under the kedro run, the table's mean/std as metrics
    client = MlflowClient()
    runs = client.search_runs([client.get_experiment_by_name("seg_pipelines").experiment_id], max_results=500)
    children = [r for r in runs if r.data.tags.get("ablation") == "lsmseg_ablations/table_5_7"]
    assert len(children) == 4 * 2 and {r.data.tags["seed"] for r in children} == {"0", "1"}
    assert all("mlflow.parentRunId" in r.data.tags and r.data.tags["method"] == "lsmseg" for r in children)
    parent = next(r for r in runs if "mlflow.parentRunId" not in r.data.tags)
    assert "table_5_5/16/A-847_mean" in parent.data.metrics and "table_5_7/Weighted/avg._std" in parent.data.metrics
