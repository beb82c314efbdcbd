"""Ablation verdicts on a hand-made result table: each thesis finding is judged by the paired
comparison over seeds (seg_pipelines.statistics), printed with its effect and interval, and counted."""

from __future__ import annotations

import math

import pytest
from scipy import stats

from seg_pipelines.engine.ablations import (
    OK,
    AblationTable,
    AblationVariant,
    VariantResult,
    chapter_counts,
    judge_findings,
    report_ablation_table,
    table_findings,
    thesis_direction,
    verdict_counts,
)

ROWS = ["Baseline", "A", "B", "C"]
# per seed 0, 1, 2: A is 2, 3, 4 above Baseline (clearly higher); B 0.5 below, -0.5, +0.3 (noise);
# C 1, 1.1, 0.9 below (clearly lower)
MIOU = {
    "Baseline": [10.0, 12.0, 11.0],
    "A": [12.0, 15.0, 15.0],
    "B": [9.5, 11.5, 11.3],
    "C": [9.0, 10.9, 10.1],
}
THESIS = {"Baseline": {"mIoU": 36.0}, "A": {"mIoU": 40.0}, "B": {"mIoU": 38.0}, "C": {"mIoU": 37.0}}


def _results(scores=MIOU, seeds=(0, 1, 2)):
    out = []
    for row, values in scores.items():
        variant = AblationVariant("9.9", row, {"row": row})
        out += [VariantResult(variant, s, OK, {"mIoU": values[i]}, None, 0.0) for i, s in enumerate(seeds)]
    return out


def test_paired_verdicts_reproduced_contradicted_unresolved():
    findings = table_findings(ROWS, None, "mIoU", THESIS)
    assert [(f.row, f.baseline, f.thesis_says) for f in findings] == [
        ("A", "Baseline", "higher"),
        ("B", "Baseline", "higher"),
        ("C", "Baseline", "higher"),
    ]
    verdicts = judge_findings(_results(), findings, "t95").set_index("row")
    # A: differences 2, 3, 4 → mean 3, se 1/sqrt(3), t_{0.975,2} = 4.303
    half = stats.t.ppf(0.975, 2) * 1 / math.sqrt(3)
    assert verdicts.loc["A", "mean_difference"] == pytest.approx(3.0)
    assert verdicts.loc["A", "low"] == pytest.approx(3 - half) and verdicts.loc["A", "high"] == pytest.approx(3 + half)
    assert verdicts.loc["A", "effect"] == f"+3.00 [{3 - half:.2f}, {3 + half:.2f}] (t95, n=3)"
    assert verdicts["verdict"].to_dict() == {"A": "reproduced", "B": "unresolved", "C": "contradicted"}
    assert verdict_counts(verdicts.reset_index()) == {"reproduced": 1, "contradicted": 1, "unresolved": 1}


def test_pairing_is_by_seed_and_failed_seeds_drop_out():
    results = _results()
    # the baseline's seed 2 failed: A is compared on seeds 0 and 1 only
    results = [r for r in results if not (r.variant.row == "Baseline" and r.seed == 2)]
    verdicts = judge_findings(results, table_findings(ROWS, [("A", "Baseline")], "mIoU", THESIS))
    assert verdicts.loc[0, "n"] == 2 and verdicts.loc[0, "mean_difference"] == pytest.approx(2.5)
    # one seed: no interval, never resolved
    single = judge_findings(
        _results(seeds=(0,), scores={k: v[:1] for k, v in MIOU.items()}), table_findings(ROWS, None, "mIoU", THESIS)
    )
    assert set(single["verdict"]) == {"unresolved"} and single.loc[0, "effect"] == "+2.00 (n=1, no interval)"


def test_2se_rule_is_looser_than_t95():
    scores = {"Baseline": [0.0, 0.0, 0.0], "A": [1.0, 1.5, 0.2]}
    findings = table_findings(["Baseline", "A"], None, "mIoU", {"Baseline": {"mIoU": 1}, "A": {"mIoU": 2}})
    assert judge_findings(_results(scores), findings, "t95").loc[0, "verdict"] == "unresolved"
    assert judge_findings(_results(scores), findings, "2se").loc[0, "verdict"] == "reproduced"
    with pytest.raises(ValueError, match="verdict_rule"):
        judge_findings(_results(scores), findings, "3se")


def test_thesis_direction_uses_the_column_or_the_mean_of_the_shared_ones():
    thesis = {"X": {"ADE20K": 30.0, "COCO": 40.0}, "X+Y": {"ADE20K": 35.0, "COCO": 39.0}}
    assert thesis_direction(thesis, "X+Y", "X", "synthetic") == ("higher", pytest.approx(2.0))
    assert thesis_direction(thesis, "X+Y", "X", "COCO") == ("lower", pytest.approx(-1.0))
    assert thesis_direction(None, "X+Y", "X", "COCO")[0] is None
    with pytest.raises(ValueError, match="not in the table"):
        table_findings(["X"], [("X+Y", "X")], "m", thesis)


def test_report_table_prints_effect_verdict_and_counts():
    spec = AblationTable("9.9", "toy", [AblationVariant("9.9", r, {"row": r}) for r in ROWS], ["mIoU"], thesis=THESIS)
    table, runs, markdown, metrics = report_ablation_table(spec, _results(), decimals=2)
    table = table.set_index("Method")
    assert table.loc["A", "verdict"] == "reproduced" and table.loc["C", "verdict"] == "contradicted"
    assert table.loc["A", "Δ vs baseline"].startswith("Baseline: +3.00 [") and table.loc["Baseline", "verdict"] == ""
    assert "1 reproduced, 1 contradicted, 1 unresolved" in markdown and "| A vs Baseline |" in markdown
    assert metrics["table_9_9/findings/reproduced"] == 1.0
    assert chapter_counts(metrics, metrics) == {"reproduced": 2, "contradicted": 2, "unresolved": 2}


def test_findings_not_reproduced_carry_their_explanation_and_the_counts_say_which_kind():
    from seg_pipelines.engine.ablations import check_explanations, explanation_counts, verdicts_markdown

    findings = table_findings(ROWS, None, "mIoU", THESIS)
    verdicts = judge_findings(_results(), findings, "t95")
    labels = [f.label for f in findings]
    explanations = check_explanations({"C vs Baseline": "embedded world: no texture at 32 px (measured)"}, labels, "t")
    text = verdicts_markdown(verdicts, 2, explanations)
    assert "why not reproduced" in text
    line = {row.split("|")[1].strip(): row for row in text.splitlines() if row.startswith("| ")}
    assert "embedded world: no texture at 32 px (measured)" in line["C vs Baseline"]
    assert "not explained" in line["B vs Baseline"]  # unresolved, and nobody said why
    assert "not explained" not in line["A vs Baseline"]  # reproduced: nothing to explain
    assert explanation_counts(verdicts, explanations) == {"embedded world": 1, "bug fixed": 0, "not explained": 1}
    assert "why not reproduced" not in verdicts_markdown(verdicts, 2)  # chapters that give none: no column
    with pytest.raises(ValueError, match="must start with one of"):
        check_explanations({"C vs Baseline": "the world is small"}, labels, "t")
    with pytest.raises(ValueError, match="does not have|the table does not have"):
        check_explanations({"D vs Baseline": "bug fixed: x"}, labels, "t")
