"""The noise rule on hand-made Table 5.3/5.4 replicates: cells are mean ± std, "beats the
template" and the greedy steps use seg_pipelines.statistics.paired_comparison ("2se" or "t95")."""

from __future__ import annotations

import pandas as pd
import pytest

from seg_pipelines.experiments.attribute_selection import (
    _markdown,
    annotate_noise,
    greedy_steps_beyond_noise,
    noise_settings,
)


def reps(*averages_per_seed):
    """Replicates over two benchmarks whose avg. is the given value (A = avg - 1, B = avg + 1)."""
    return [{"A": a - 1.0, "B": a + 1.0} for a in averages_per_seed]


TEMPLATE = reps(20.0, 21.0, 22.0)
REPLICATES = {
    "template": TEMPLATE,
    # +2.0 each seed: differences 2, 2, 2 -> se 0 -> beyond noise under both rules
    "color": reps(22.0, 23.0, 24.0),
    # differences +1.0, +0.0, +2.0: mean 1, se 0.577 -> 2se interval [-0.15, 2.15], unresolved
    "shape": reps(21.0, 21.0, 24.0),
    # differences -3, -3.5, -2.5: clearly below
    "size": reps(17.0, 17.5, 19.5),
    # differences +1.0, +1.2, +0.8: mean 1, se 0.115 -> 2se [0.77, 1.23] beyond; t95 [0.50, 1.50] beyond
    "texture": reps(21.0, 22.2, 22.8),
}


def hand_table():
    rows = {name: {b: sum(r[b] for r in values) / 3 for b in ("A", "B")} for name, values in REPLICATES.items()}
    table = pd.DataFrame.from_dict(rows, orient="index")
    table["avg."] = table.mean(axis=1)
    return table


@pytest.mark.parametrize("rule", ["2se", "t95"])
def test_verdicts_on_a_hand_made_table(rule):
    table = annotate_noise(hand_table(), REPLICATES, TEMPLATE, rule)
    verdicts = table["verdict"].to_dict()
    assert verdicts == {
        "template": "",
        "color": "beats template",
        "shape": "within noise",
        "size": "below template",
        "texture": "beats template",
    }
    assert table.at["shape", "avg. std"] == pytest.approx(pd.Series([21.0, 21.0, 24.0]).std())
    assert table.at["color", "A std"] == pytest.approx(1.0)
    text = table.at["shape", "vs. template"]
    assert text.startswith("+1.00 [") and f"({rule}, n=3)" in text


def test_rules_differ_where_the_interval_is_between_them():
    # differences +1, +1, +2.2: mean 1.4, se 0.4 -> 2se [0.60, 2.20] beyond, t95 [-0.32, 3.12] not
    replicates = {**REPLICATES, "pattern": reps(21.0, 22.0, 24.2)}
    table = hand_table()
    table.loc["pattern"] = {"A": 21.4 - 1, "B": 21.4 + 1 + 2, "avg.": 22.4}
    assert annotate_noise(table, replicates, TEMPLATE, "2se").at["pattern", "verdict"] == "beats template"
    assert annotate_noise(table, replicates, TEMPLATE, "t95").at["pattern", "verdict"] == "within noise"


def test_greedy_steps_adopt_a_longer_combination_only_beyond_noise():
    replicates = {
        "color": reps(22.0, 23.0, 24.0),
        "color + shape": reps(22.5, 23.2, 24.9),  # +0.5, +0.2, +0.9: mean 0.53, se 0.20 -> 2se [0.13, 0.94] adopted
        "color + shape + size": reps(22.0, 24.5, 24.0),  # vs the adopted: -0.5, +1.3, -0.9: not adopted
    }
    chosen, steps = greedy_steps_beyond_noise(list(replicates), replicates, "2se")
    assert chosen == "color + shape"
    assert steps["color + shape"].endswith("vs. color: selected instead")
    assert steps["color + shape + size"].endswith("vs. color + shape: color + shape stays selected")
    # the stricter t95 interval keeps the single attribute
    chosen_t95, _ = greedy_steps_beyond_noise(list(replicates), replicates, "t95")
    assert chosen_t95 == "color"


def test_markdown_prints_mean_and_std_and_noise_settings_are_checked():
    table = annotate_noise(hand_table(), REPLICATES, TEMPLATE, "2se")
    text = _markdown(table.reset_index(names="attribute"), "T")
    assert "| color | 22.0 ± 1.0 | 24.0 ± 1.0 | 23.0 ± 1.0 |" in text
    assert noise_settings({"noise": {"replicates": 3, "rule": "t95"}, "scoring": {"seed": 5}}) == ([5, 6, 7], "t95")
    with pytest.raises(ValueError, match="noise.replicates"):
        noise_settings({"noise": {"replicates": 0}})


# --------------------------------------------------------------------------- held-out half


class HalvesScorer:
    """A stand-in scorer: each prompt set's (selection, held-out) replicates are looked up by the
    attributes its prompt for ``lime`` contains (the descriptions below name their attribute)."""

    mode, held_out, context_length, images_encoded = "zero_shot", True, 77, 0
    class_names = ["lime", "sky"]

    def __init__(self, by_attributes):
        from seg_pipelines.experiments.attribute_scoring import ScoringTimes

        self.by_attributes = by_attributes
        self.times = ScoringTimes()

    def evaluate_split(self, prompts, seeds):
        named = tuple(a for a in ("color", "shape") if f"{a} word" in prompts["lime"])
        selection, held_out = self.by_attributes[named]
        return [dict(r) for r in selection], [dict(r) for r in held_out]


DESCRIPTIONS = {
    "attributes": ["color", "shape"],
    "class_names": ["lime", "sky"],
    "llms": {
        "fake": {
            "backend": "replay",
            "model": "fake-1",
            "descriptions": {n: {a: f"A {n} has its {a} word." for a in ("color", "shape")} for n in ("lime", "sky")},
        }
    },
}


def _select(by_attributes):
    from seg_pipelines.experiments.attribute_selection import combine_attributes, score_attributes

    params = {"noise": {"replicates": 3, "rule": "2se"}, "top_k": 2, "prompt_composition": "description"}
    scorer = HalvesScorer(by_attributes)
    table_5_3, scores = score_attributes(scorer, DESCRIPTIONS, params)
    return table_5_3.set_index("attribute"), *combine_attributes(scorer, DESCRIPTIONS, scores, params)


def test_the_prompt_set_follows_the_held_out_half_not_the_half_that_chose_it():
    # colour is +2 on every fold of the selection half (it is chosen there, beyond noise), but on
    # the held-out half it is +0.5, -0.5, +0.3 against the template: within noise -> the fallback
    template = (reps(20.0, 21.0, 22.0), reps(20.0, 21.0, 22.0))
    lucky = {
        (): template,
        ("color",): (reps(22.0, 23.0, 24.0), reps(20.5, 20.5, 22.3)),
        ("shape",): (reps(19.0, 20.0, 21.0), reps(19.0, 20.0, 21.0)),
        ("color", "shape"): (reps(21.0, 22.0, 23.0), reps(20.0, 21.0, 22.0)),
    }
    table_5_3, table_5_4, table_5_9, prompt_set, summary = _select(lucky)
    assert table_5_3.at["color", "verdict"] == "beats template"  # the selection half's verdict
    assert summary["best_combination"] == ["color"]
    row = table_5_9.set_index("llm").loc["fake"]
    assert row["verdict"] == "beats template" and row["held-out verdict"] == "within noise"
    assert row["held-out vs. template"].startswith("+0.10 [")
    assert summary["noise"]["held_out"] and not summary["noise"]["best_beats_template"]
    assert summary["noise"]["selection_best_vs_template"].startswith("+2.00 [")
    assert summary["prompt_set_combination"] == [] and prompt_set["lime"] == "a photo of a lime."

    # the same choice confirmed on the held-out half (+1.5, +1.2, +1.8): the prompt set is colour's
    confirmed = {**lucky, ("color",): (reps(22.0, 23.0, 24.0), reps(21.5, 22.2, 23.8))}
    _, _, table_5_9, prompt_set, summary = _select(confirmed)
    assert table_5_9.set_index("llm").at["fake", "held-out verdict"] == "beats template"
    assert summary["noise"]["best_beats_template"] and summary["prompt_set_combination"] == ["color"]
    assert prompt_set["lime"] == "A lime has its color word."


def test_held_out_setting_is_checked():
    from seg_pipelines.experiments.attribute_selection import held_out_half

    assert held_out_half({}) is True and held_out_half({"noise": {"held_out": False}}) is False
    with pytest.raises(ValueError, match="held_out must be true or false"):
        held_out_half({"noise": {"held_out": "yes"}})


def test_markdown_prints_empty_text_cells_read_back_as_nan_empty():
    table = pd.DataFrame({"llm": ["a", "b"], "avg.": [1.0, float("nan")], "vs. a": [float("nan"), "+0.5"]})
    text = _markdown(table, "T")
    assert "nan" not in text and "| a | 1.0 |  |" in text and "| b | – | +0.5 |" in text


# --------------------------------------------------------------------------- no prompt shortened in silence


def test_a_combination_that_does_not_fit_the_text_context_is_reported_or_refused():
    class ShortContext(HalvesScorer):
        context_length = 12  # 10 content tokens: one "A lime has its color word." fits, two do not

    confirmed = {
        (): (reps(20.0, 21.0, 22.0), reps(20.0, 21.0, 22.0)),
        ("color",): (reps(22.0, 23.0, 24.0), reps(21.5, 22.2, 23.8)),
        ("shape",): (reps(21.0, 22.0, 23.0), reps(21.0, 22.0, 23.0)),
    }
    from seg_pipelines.experiments.attribute_selection import combine_attributes, score_attributes

    params = {"noise": {"replicates": 3, "rule": "2se"}, "top_k": 2, "prompt_composition": "description"}
    scorer = ShortContext(confirmed)
    table_5_3, scores = score_attributes(scorer, DESCRIPTIONS, params)
    assert table_5_3.set_index("attribute")["prompts shortened"].to_dict() == {
        "color": "0/2",
        "shape": "0/2",
        "template": "0/2",
    }
    table_5_4, _, prompt_set, summary = combine_attributes(scorer, DESCRIPTIONS, scores, params)
    shortened = table_5_4.set_index(table_5_4.columns[0])["prompts shortened"]
    assert shortened["color"] == "0/2" and shortened["color + shape"] == "2/2: lime, sky"
    composition = summary["prompt_set_composition"]["lime"]
    assert composition["attributes"] == ["color"] and composition["dropped"] == [] and composition["tokens"] > 0

    with pytest.raises(ValueError, match=r"do not fit the 10-token text context for 2 classes: \['lime', 'sky'\]"):
        combine_attributes(scorer, DESCRIPTIONS, scores, {**params, "prompt_overflow": "refuse"})
