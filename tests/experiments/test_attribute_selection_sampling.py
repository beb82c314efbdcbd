"""The LLM as a noise source (issue 26 item 4): n sampled answers per question, scored as an ensemble
(the mean of the L2-normalised text embeddings, CuPL) or as replicates of the headline verdict."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from seg_pipelines.experiments import attribute_scoring as scoring
from seg_pipelines.experiments.attribute_selection import (
    _prompts,
    _texts,
    combine_attributes,
    description_sets,
    sample_settings,
    sampled_entries,
    score_attributes,
    shortened_cell,
)
from seg_pipelines.models.ovss.clip import TINY_CLIP_NAME, clip_state_dict, load_clip
from seg_pipelines.parameters import AttributeSelection, LLMSamples
from seg_pipelines.prompts import ResponseCache, generate_descriptions


def reps(*averages):
    return [{"A": a - 1.0, "B": a + 1.0} for a in averages]


class WordScorer:
    """A stand-in scorer: a prompt set's replicates are looked up by which attribute words the
    ``lime`` prompt holds ("color word", "shape word"); selection and held-out halves alike."""

    mode, held_out, context_length, images_encoded = "zero_shot", True, 77, 0
    class_names = ["lime", "sky"]

    def __init__(self, by_words):
        self.by_words = by_words
        self.times = scoring.ScoringTimes()

    def evaluate_split(self, prompts, seeds):
        lime = prompts["lime"] if isinstance(prompts["lime"], str) else " ".join(prompts["lime"])
        named = tuple(a for a in ("color", "shape") if f"{a} word" in lime)
        values = self.by_words[named]
        return [dict(r) for r in values], [dict(r) for r in values]


def answers(color_says_its_word: bool):
    """One sample's descriptions: every class names its shape word; the colour answer names its
    word only in some samples (a sampled LLM answering differently)."""
    color = "has its color word" if color_says_its_word else "is dull"
    return {n: {"color": f"A {n} {color}.", "shape": f"A {n} has its shape word."} for n in ("lime", "sky")}


BY_WORDS = {
    (): reps(20.0, 21.0, 22.0),  # the template
    ("color",): reps(22.0, 23.0, 24.0),  # +2 every fold: beyond noise
    ("shape",): reps(21.0, 20.5, 22.3),  # +1, -0.5, +0.3: within noise
    ("color", "shape"): reps(22.1, 23.0, 24.1),  # vs colour +0.1, 0, +0.1: not adopted
}
PARAMS = {"noise": {"replicates": 3, "rule": "2se"}, "top_k": 2, "prompt_composition": "description"}


def test_sample_settings_give_each_sample_its_seed_and_refuse_greedy_copies():
    assert sample_settings({"n": 1}) == [None]
    assert sample_settings({"n": 3, "temperature": 0.7, "seed": 5}) == [
        {"temperature": 0.7, "seed": 5},
        {"temperature": 0.7, "seed": 6},
        {"temperature": 0.7, "seed": 7},
    ]
    with pytest.raises(ValueError, match="temperature > 0"):
        sample_settings({"n": 2, "temperature": 0.0})
    with pytest.raises(ValueError, match="temperature > 0"):
        LLMSamples.of({"n": 2, "temperature": 0})
    block = AttributeSelection.of({"attributes": ["color"], "benchmarks": ["syn150"]})
    assert dict(block.llm_samples) == {"n": 1, "temperature": 0.7, "seed": 0, "use": "ensemble"}


def test_replicates_report_how_often_the_headline_verdict_agrees_over_llm_samples():
    sets = [answers(True), answers(True), answers(False)]
    llms = sampled_entries("qwen", "fake", "fake-1", sets, {"n": 3, "seed": 0, "use": "replicates"})
    assert list(llms) == ["qwen#s0", "qwen#s1", "qwen#s2"] and llms["qwen#s2"]["sample_of"] == "qwen"
    descriptions = {"attributes": ["color", "shape"], "class_names": ["lime", "sky"], "llms": llms}
    scorer = WordScorer(BY_WORDS)
    _, scores = score_attributes(scorer, descriptions, PARAMS)
    _, _, prompt_set, summary = combine_attributes(scorer, descriptions, scores, PARAMS)
    agreement = summary["llm_sample_agreement"]["qwen"]
    assert agreement["per_sample"]["qwen#s0"] == {"combination": "color", "beats_template": True}
    # the third sample's colour answer lacks the word: shape is chosen there, within noise of the template
    assert agreement["per_sample"]["qwen#s2"] == {"combination": "shape", "beats_template": False}
    assert agreement["headline_agreement"] == pytest.approx(2 / 3)
    assert agreement["modal_headline"] == "color, beats the template"
    assert agreement["beats_template_share"] == pytest.approx(2 / 3)
    assert summary["primary_llm"] == "qwen#s0" and prompt_set["lime"] == "A lime has its color word."


def test_an_ensemble_scores_one_list_of_prompts_per_class_and_matches_a_hand_computed_mean():
    sets = [answers(True), answers(False)]
    entry = sampled_entries("qwen", "fake", "fake-1", sets, {"n": 2, "use": "ensemble"})["qwen"]
    assert description_sets(entry) == sets and entry["descriptions"] == sets[0]
    composed = _prompts(WordScorer(BY_WORDS), description_sets(entry), ["color"])
    texts = _texts(composed)
    assert texts["lime"] == ["A lime has its color word.", "A lime is dull."]
    assert shortened_cell(composed) == "0/2"
    # the text side of the ensemble: the mean of the L2-normalised embeddings, re-normalised (CuPL)
    torch.manual_seed(0)
    model = scoring.build_scoring_model(
        {"model_name": TINY_CLIP_NAME, "image_size": 64},
        clip_state_dict(load_clip(TINY_CLIP_NAME, None, image_size=64)),
    )
    names = ["lime", "sky"]
    ensemble = scoring.encode_class_prompts(model, scoring.normalise_prompts(texts, names))
    by_hand = []
    for name in names:
        tokens = model.clip.tokenize([[p] for p in texts[name]])
        each = F.normalize(model.clip.encode_text_tokens(tokens)[:, 0], dim=-1)
        by_hand.append(F.normalize(each.sum(0), dim=-1))
    assert torch.allclose(ensemble, torch.stack(by_hand), atol=1e-5)
    # an ensemble of one is the prompt itself
    single = _texts(_prompts(WordScorer(BY_WORDS), [sets[0]], ["color"]))
    assert single["lime"] == "A lime has its color word."


class SeededLLM:
    """Answers depend on the sampling seed; records the settings of every call."""

    name, model, concurrency = "seeded", "fake-1", 1
    generation_settings = {"temperature": 0.0}

    def __init__(self):
        self.calls = []

    def complete(self, messages, **gen):
        self.calls.append(dict(gen))
        return f"A lime is shade {gen.get('seed', 'greedy')}."


def test_each_sample_is_asked_with_its_seed_cached_apart_and_replayed(tmp_path):
    cache = ResponseCache(tmp_path / "answers.jsonl")
    llm = SeededLLM()
    sets = [
        generate_descriptions(llm, cache, ["lime"], ["color"], gen=gen, progress=False)
        for gen in sample_settings({"n": 3, "temperature": 0.7, "seed": 0})
    ]
    assert [s["lime"]["color"] for s in sets] == [f"A lime is shade {i}." for i in range(3)]
    assert [c["seed"] for c in llm.calls] == [0, 1, 2] and {c["temperature"] for c in llm.calls} == {0.7}
    again = SeededLLM()
    replayed = [
        generate_descriptions(again, ResponseCache(tmp_path / "answers.jsonl"), ["lime"], ["color"], gen=gen)
        for gen in sample_settings({"n": 3, "temperature": 0.7, "seed": 0})
    ]
    assert replayed == sets and again.calls == []
