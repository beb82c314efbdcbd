"""Verdicts over seeds: is a difference between two variants beyond the noise?

One rule for every table that compares variants (the ablation tables of chapters 3-5,
the attribute ranking and greedy selection of section 5.3.4): the runs of the two
variants are paired by seed (same seed, same data order, same initialisation of the
shared parts), the per-seed differences ``candidate - baseline`` are summarised by
their mean and standard error, and the difference counts as real only when an
interval around the mean excludes zero.

Two interval rules, named so a table can say which it used:

- ``"t95"``: the two-sided 95% Student-t interval of the mean paired difference
  (``mean ± t_{0.975, n-1} · se``). With 3 seeds ``t = 4.30``: conservative.
- ``"2se"``: ``mean ± 2 · se``, the rule the attribute issue names; looser than ``t95``
  for few seeds, equal to it in the large-n limit.

With a single seed there is no interval: every comparison is ``unresolved``.
This module sits at the bottom of the import layers (pure Python + scipy), so the
prompt selection and the engine use the same rule.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

IntervalRule = Literal["t95", "2se"]
Direction = Literal["higher", "lower", "unresolved"]
Verdict = Literal["reproduced", "contradicted", "unresolved"]
INTERVAL_RULES: tuple[str, ...] = ("t95", "2se")


@dataclass(frozen=True)
class PairedComparison:
    """Mean paired difference ``candidate - baseline`` over ``n`` seeds, with its interval."""

    mean_difference: float
    std_error: float
    low: float
    high: float
    n: int
    rule: str

    @property
    def direction(self) -> Direction:
        """``higher`` / ``lower`` when the interval excludes 0, else ``unresolved``."""
        if self.n < 2 or math.isnan(self.low):
            return "unresolved"
        if self.low > 0:
            return "higher"
        if self.high < 0:
            return "lower"
        return "unresolved"

    def describe(self, decimals: int = 2) -> str:
        """``+1.23 [0.40, 2.06] (t95, n=3)``: the effect and its interval, as tables print it."""
        if self.n < 2:
            return f"{self.mean_difference:+.{decimals}f} (n=1, no interval)"
        return (
            f"{self.mean_difference:+.{decimals}f} "
            f"[{self.low:.{decimals}f}, {self.high:.{decimals}f}] ({self.rule}, n={self.n})"
        )


def paired_comparison(
    candidate: Sequence[float], baseline: Sequence[float], rule: IntervalRule = "t95"
) -> PairedComparison:
    """Compare two variants run on the same seeds (``candidate[i]`` and ``baseline[i]`` share seed i)."""
    if rule not in INTERVAL_RULES:
        raise ValueError(f"unknown interval rule {rule!r}; expected one of {INTERVAL_RULES}")
    if len(candidate) != len(baseline):
        raise ValueError(
            f"paired comparison needs one baseline run per candidate run (same seeds): "
            f"got {len(candidate)} candidate and {len(baseline)} baseline values"
        )
    if not candidate:
        raise ValueError("paired comparison needs at least one seed")
    differences = [float(c) - float(b) for c, b in zip(candidate, baseline, strict=True)]
    n = len(differences)
    mean = sum(differences) / n
    if n < 2:
        return PairedComparison(mean, math.nan, math.nan, math.nan, n, rule)
    variance = sum((d - mean) ** 2 for d in differences) / (n - 1)
    se = math.sqrt(variance / n)
    if rule == "t95":
        from scipy import stats  # here, not at import: pipeline registration reads this module

        factor = float(stats.t.ppf(0.975, n - 1))
    else:
        factor = 2.0
    return PairedComparison(mean, se, mean - factor * se, mean + factor * se, n, rule)


def finding_verdict(comparison: PairedComparison, thesis_says: Literal["higher", "lower"]) -> Verdict:
    """Judge a thesis finding ("the candidate scores higher/lower than the baseline")."""
    direction = comparison.direction
    if direction == "unresolved":
        return "unresolved"
    return "reproduced" if direction == thesis_says else "contradicted"
