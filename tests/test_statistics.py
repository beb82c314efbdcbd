"""The one verdict rule (seg_pipelines.statistics) on hand-made tables."""

import math

import pytest

from seg_pipelines.statistics import finding_verdict, paired_comparison


def test_t95_interval_matches_the_textbook_formula():
    candidate, baseline = [21.0, 22.5, 23.0], [20.0, 20.5, 21.5]
    diffs = [1.0, 2.0, 1.5]
    mean = 1.5
    se = math.sqrt(sum((d - mean) ** 2 for d in diffs) / 2 / 3)
    comparison = paired_comparison(candidate, baseline, rule="t95")
    assert comparison.mean_difference == pytest.approx(mean)
    assert comparison.std_error == pytest.approx(se)
    assert comparison.low == pytest.approx(mean - 4.302652729911275 * se)
    assert comparison.high == pytest.approx(mean + 4.302652729911275 * se)
    assert comparison.direction == "higher"
    assert finding_verdict(comparison, "higher") == "reproduced"
    assert finding_verdict(comparison, "lower") == "contradicted"


def test_a_difference_inside_the_noise_is_unresolved():
    comparison = paired_comparison([20.0, 23.0, 19.0], [21.0, 20.0, 20.5])
    assert comparison.direction == "unresolved"
    assert finding_verdict(comparison, "higher") == "unresolved"


def test_2se_is_looser_than_t95_with_three_seeds():
    candidate, baseline = [20.9, 21.6, 21.5], [20.0, 20.0, 21.0]
    assert paired_comparison(candidate, baseline, rule="t95").direction == "unresolved"
    assert paired_comparison(candidate, baseline, rule="2se").direction == "higher"


def test_pairing_matters_a_shared_seed_effect_cancels():
    # seed effects of +-5 swamp an unpaired comparison, a paired one sees the +1 shift
    baseline = [15.0, 20.0, 25.0, 30.0]
    candidate = [b + 1.0 + 0.1 * i for i, b in enumerate(baseline)]
    comparison = paired_comparison(candidate, baseline)
    assert comparison.direction == "higher"
    assert comparison.describe().startswith("+1.15 [")


def test_one_seed_gives_no_verdict_and_bad_input_is_refused():
    single = paired_comparison([30.0], [20.0])
    assert single.direction == "unresolved"
    assert "no interval" in single.describe()
    with pytest.raises(ValueError, match="same seeds"):
        paired_comparison([1.0, 2.0], [1.0])
    with pytest.raises(ValueError, match="at least one seed"):
        paired_comparison([], [])
    with pytest.raises(ValueError, match="unknown interval rule"):
        paired_comparison([1.0], [1.0], rule="3se")  # type: ignore[arg-type]
