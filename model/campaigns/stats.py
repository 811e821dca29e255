"""The statistics of a campaign with a control group: intervals for rates and their
difference, and the power of the comparison before it is run.

Why these methods:

* **Wilson score interval** for one churn rate: unlike the textbook Wald interval it stays
  inside [0, 1] and keeps its coverage for small groups and rates near 0 or 1 (a risk band
  of 40 clients, a holdout where nobody left).
* **Newcombe's hybrid score interval** (method 10 of Newcombe 1998, "Interval estimation
  for the difference between independent proportions: comparison of eleven methods") for
  the difference of two rates: it combines the two Wilson intervals, so it inherits their
  behaviour at the edges, and its coverage is close to nominal where Wald's is not.
* **Risk ratio** (Katz log interval) for the share of would-be churners a contact keeps:
  ``1 - treated rate / holdout rate``.
* **Power** of exactly the call the report makes: the probability that Newcombe's interval
  excludes 0, summed over the binomial outcomes of both groups.  The textbook normal
  approximation (``approximate_power``) flatters small holdouts, where the score interval
  is wider than it assumes; ``bench/campaigns.py`` checks the promise by simulation.

Everything here is pure arithmetic on counts: no I/O, no pandas.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np
from scipy.optimize import brentq
from scipy.stats import binom, norm

CONFIDENCE = 0.95
ALPHA = 0.05
TARGET_POWER = 0.80


@dataclass(frozen=True)
class Interval:
    """An estimate with its confidence interval (``low <= high``)."""

    estimate: float
    low: float
    high: float

    def covers(self, value: float) -> bool:
        return self.low <= value <= self.high

    @property
    def excludes_zero(self) -> bool:
        return self.low > 0 or self.high < 0

    def scaled(self, factor: float, offset: float = 0.0) -> Interval:
        """``factor * x + offset`` of each bound (bounds swap when the factor is negative)."""
        a, b = factor * self.low + offset, factor * self.high + offset
        return Interval(factor * self.estimate + offset, min(a, b), max(a, b))

    def as_dict(self, digits: int = 6) -> dict[str, float]:
        return {"estimate": round(self.estimate, digits), "low": round(self.low, digits),
                "high": round(self.high, digits)}


def _z(confidence: float) -> float:
    if not 0 < confidence < 1:
        raise ValueError(f"confidence must be between 0 and 1, got {confidence}")
    return float(norm.ppf(0.5 + confidence / 2))


def _counts(successes: int, trials: int) -> None:
    if trials <= 0 or not 0 <= successes <= trials:
        raise ValueError(f"need 0 <= successes <= trials and trials > 0, got {successes}/{trials}")


def wilson(successes: int, trials: int, confidence: float = CONFIDENCE) -> Interval:
    """Wilson's score interval for the proportion ``successes / trials``."""
    _counts(successes, trials)
    z = _z(confidence)
    p = successes / trials
    denominator = 1 + z * z / trials
    centre = (p + z * z / (2 * trials)) / denominator
    half = z * math.sqrt(p * (1 - p) / trials + z * z / (4 * trials * trials)) / denominator
    return Interval(p, max(0.0, centre - half), min(1.0, centre + half))


def newcombe_difference(x1: int, n1: int, x2: int, n2: int, confidence: float = CONFIDENCE) -> Interval:
    """Newcombe's hybrid score interval for ``x1/n1 - x2/n2`` (method 10, no continuity correction)."""
    first, second = wilson(x1, n1, confidence), wilson(x2, n2, confidence)
    p1, p2 = first.estimate, second.estimate
    difference = p1 - p2
    low = difference - math.sqrt((p1 - first.low) ** 2 + (second.high - p2) ** 2)
    high = difference + math.sqrt((first.high - p1) ** 2 + (p2 - second.low) ** 2)
    return Interval(difference, max(-1.0, low), min(1.0, high))


def risk_ratio(x1: int, n1: int, x2: int, n2: int, confidence: float = CONFIDENCE) -> Interval | None:
    """``(x1/n1) / (x2/n2)`` with Katz's log interval.  When the first count is 0, 0.5 is added
    to every cell (the usual correction) so that the interval stays finite; the estimate
    stays 0.  None when the second rate is 0: the ratio has no meaning then."""
    _counts(x1, n1)
    _counts(x2, n2)
    if x2 == 0:
        return None
    a, b, c, d = float(x1), float(n1 - x1), float(x2), float(n2 - x2)
    if x1 == 0:
        a, b, c, d = a + 0.5, b + 0.5, c + 0.5, d + 0.5
    spread = _z(confidence) * math.sqrt(1 / a - 1 / (a + b) + 1 / c - 1 / (c + d))
    centre = math.log((a / (a + b)) / (c / (c + d)))
    return Interval((x1 / n1) / (x2 / n2), math.exp(centre - spread), math.exp(centre + spread))


# --------------------------------------------------------------------------------------------
# Power at creation
# --------------------------------------------------------------------------------------------

def approximate_power(p_control: float, p_treated: float, n_treated: int, n_control: int,
                      alpha: float = ALPHA) -> float:
    """The textbook normal approximation of the power of a two-sided two-proportion test
    (pooled variance under "no effect", unpooled under the effect; no continuity correction)."""
    if n_treated <= 0 or n_control <= 0:
        return 0.0
    _rates(p_control, p_treated)
    z = _z(1 - alpha)
    pooled = (n_treated * p_treated + n_control * p_control) / (n_treated + n_control)
    null_se = math.sqrt(pooled * (1 - pooled) * (1 / n_treated + 1 / n_control))
    alt_se = math.sqrt(p_treated * (1 - p_treated) / n_treated + p_control * (1 - p_control) / n_control)
    delta = abs(p_control - p_treated)
    if alt_se == 0:
        return 1.0 if delta > 0 else alpha
    upper = norm.cdf((delta - z * null_se) / alt_se)
    lower = norm.cdf((-delta - z * null_se) / alt_se)
    return float(min(1.0, upper + lower))


def _rates(*rates: float) -> None:
    for p in rates:
        if not 0 <= p <= 1:
            raise ValueError(f"rates must be between 0 and 1, got {p}")


def _wilson_bounds(counts: np.ndarray, trials: int, z: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    p = counts / trials
    denominator = 1 + z * z / trials
    centre = (p + z * z / (2 * trials)) / denominator
    half = z * np.sqrt(p * (1 - p) / trials + z * z / (4 * trials * trials)) / denominator
    return p, np.maximum(centre - half, 0.0), np.minimum(centre + half, 1.0)


def _support(trials: int, rate: float) -> np.ndarray:
    low, high = binom.ppf(_TAIL, trials, rate), binom.isf(_TAIL, trials, rate)
    return np.arange(int(max(low, 0)), int(min(high, trials)) + 1)


_TAIL = 1e-10
_EXACT_CELLS = 4_000_000  # above this many (control, treated) outcome pairs, the normal approximation


def power(p_control: float, p_treated: float, n_treated: int, n_control: int, alpha: float = ALPHA) -> float:
    """Probability that the campaign report calls the difference significant: that Newcombe's
    interval of (holdout rate - treated rate) at level 1 - ``alpha`` excludes 0, when the
    groups' churn counts are binomial with these rates and sizes.

    Computed exactly, by summing over the outcomes of both groups (those outside 1e-10 of
    either tail left out), so the promise made at creation is about the very test the report
    runs; small holdouts, where Newcombe's interval is wider than the normal approximation
    assumes, are not flattered.  Huge designs fall back to ``approximate_power``."""
    if n_treated <= 0 or n_control <= 0:
        return 0.0
    _rates(p_control, p_treated)
    control, treated = _support(n_control, p_control), _support(n_treated, p_treated)
    if len(control) * len(treated) > _EXACT_CELLS:
        return approximate_power(p_control, p_treated, n_treated, n_control, alpha)
    z = _z(1 - alpha)
    pc, lc, uc = _wilson_bounds(control.astype(float), n_control, z)
    pt, lt, ut = _wilson_bounds(treated.astype(float), n_treated, z)
    difference = pc[:, None] - pt[None, :]
    low = difference - np.sqrt(((pc - lc) ** 2)[:, None] + ((ut - pt) ** 2)[None, :])
    high = difference + np.sqrt(((uc - pc) ** 2)[:, None] + ((pt - lt) ** 2)[None, :])
    significant = (low > 0) | (high < 0)
    weights = binom.pmf(control, n_control, p_control)[:, None] * binom.pmf(treated, n_treated, p_treated)[None, :]
    return float(min(1.0, np.sum(weights * significant)))


def detectable_drop(p_control: float, n_treated: int, n_control: int, target: float = TARGET_POWER,
                    alpha: float = ALPHA) -> float | None:
    """The smallest drop in churn (holdout rate minus treated rate, as a share) that this design
    detects with ``target`` power; None when even a drop to zero churn is not enough."""
    if n_treated <= 0 or n_control <= 0 or p_control <= 0:
        return None

    def gap(drop: float) -> float:
        return power(p_control, p_control - drop, n_treated, n_control, alpha) - target

    if gap(p_control) < 0:
        return None
    return float(brentq(gap, 1e-9, p_control, xtol=1e-7))


def holdout_share_needed(p_control: float, drop: float, clients: int, target: float = TARGET_POWER,
                         alpha: float = ALPHA) -> float | None:
    """The smallest holdout share of ``clients`` that detects ``drop`` with ``target`` power, or
    None when no split of this many clients can (the best split is close to half and half)."""
    if clients < 2 or drop <= 0 or p_control <= 0:
        return None
    treated = max(p_control - drop, 0.0)

    def achieved(share: float) -> float:
        held = max(1, round(clients * share))
        return power(p_control, treated, clients - held, held, alpha)

    shares = [step / 100 for step in range(1, 51)]
    for share in shares:
        if achieved(share) >= target:
            return share
    return None


@dataclass(frozen=True)
class PowerPlan:
    """What the design can show, said before the campaign runs."""

    treated: int
    holdout: int
    baseline: float  # expected churn without contact: the members' mean calibrated probability
    offer_success_rate: float
    assumed_drop: float  # baseline x offer success rate, if every treated client is contacted
    power_for_assumed: float
    detectable_drop: float | None
    holdout_needed: float | None
    holdout_share: float

    @property
    def too_small(self) -> bool:
        return self.power_for_assumed < TARGET_POWER

    def statement(self) -> str:
        size = f"With {self.treated:,} treated and {self.holdout:,} held out"
        if self.detectable_drop is None:
            return (f"{size}, not even a drop to zero churn (from the expected {_pct(self.baseline)}) would be "
                    f"detected with {TARGET_POWER:.0%} power.")
        return (f"{size} you can detect a {_points(self.detectable_drop)}-point drop in churn with "
                f"{TARGET_POWER:.0%} power (expected churn without contact: {_pct(self.baseline)}).")

    def warning(self) -> str | None:
        if not self.too_small:
            return None
        assumed = (f"The assumed effect, a {_points(self.assumed_drop)}-point drop ({_pct(self.baseline)} expected "
                   f"churn × {_pct(self.offer_success_rate)} offer success rate), would be detected with only "
                   f"{self.power_for_assumed:.0%} power: the holdout is too small to show it.")
        if self.holdout_needed is not None and self.holdout_needed > self.holdout_share:
            return assumed + f" Hold out at least {self.holdout_needed:.0%} of these clients to reach {TARGET_POWER:.0%}."
        return assumed + (f" No split of this many clients reaches {TARGET_POWER:.0%} power: the campaign needs more "
                          "clients.")

    def as_dict(self) -> dict[str, Any]:
        return {
            "treated": self.treated, "holdout": self.holdout, "holdout_share": self.holdout_share,
            "baseline_churn": round(self.baseline, 6), "offer_success_rate": self.offer_success_rate,
            "assumed_drop": round(self.assumed_drop, 6), "power_for_assumed_drop": round(self.power_for_assumed, 4),
            "detectable_drop": None if self.detectable_drop is None else round(self.detectable_drop, 6),
            "target_power": TARGET_POWER, "alpha": ALPHA,
            "holdout_share_needed": self.holdout_needed, "too_small": self.too_small,
            "statement": self.statement(), "warning": self.warning(),
        }


def power_plan(*, treated: int, holdout: int, baseline: float, offer_success_rate: float) -> PowerPlan:
    """The power statement of a design: ``baseline`` is the expected churn of the members
    without contact, and the assumed effect is that a contact keeps ``offer_success_rate``
    of them (every treated client contacted)."""
    baseline = min(max(float(baseline), 0.0), 1.0)
    drop = baseline * float(offer_success_rate)
    total = treated + holdout
    return PowerPlan(
        treated=treated, holdout=holdout, baseline=baseline, offer_success_rate=float(offer_success_rate),
        assumed_drop=drop, power_for_assumed=power(baseline, baseline - drop, treated, holdout),
        detectable_drop=detectable_drop(baseline, treated, holdout),
        holdout_needed=holdout_share_needed(baseline, drop, total),
        holdout_share=holdout / total if total else 0.0,
    )


def _pct(share: float) -> str:
    return f"{100 * share:.1f} %"


def _points(share: float) -> str:
    value = 100 * share
    return f"{value:.0f}" if value >= 9.5 else f"{value:.1f}"


__all__ = [
    "ALPHA",
    "CONFIDENCE",
    "TARGET_POWER",
    "Interval",
    "PowerPlan",
    "approximate_power",
    "detectable_drop",
    "holdout_share_needed",
    "newcombe_difference",
    "power",
    "power_plan",
    "risk_ratio",
    "wilson",
]
