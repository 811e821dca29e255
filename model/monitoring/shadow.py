"""Is the shadow challenger at least as good as the champion on the same new clients?

A challenger that passed the acceptance gate was judged on one held-out period.  Running it in
*shadow* — scoring every arriving client beside the champion, shown to nobody — and waiting
for the outcomes answers the question that matters: on clients neither model has seen, would
it have caught as many leavers, at what cost in contacts, and does it rank them as well?

Both models score the **same** clients, so the comparison is *paired*: a client both models
flag (or both miss) says nothing about which is better; only the clients they disagree on do.
That makes paired tests far more sensitive than comparing two recalls with two independent
intervals:

* **Recall: exact McNemar test on the churners.**  ``b`` churners only the champion flagged,
  ``c`` only the shadow flagged.  Under "equally good", each of the ``b + c`` discordant
  churners is equally likely to fall on either side, so ``min(b, c)`` is Binomial(b + c, 1/2)
  and the two-sided p-value is ``min(1, 2 · P(X ≤ min(b, c)))`` (the exact conditional test; the
  chi-square version misleads at the small counts monitoring sees).
* **Contacts: the same test on the stayers.**  Stayers only one model flags are contacts
  wasted by that model alone: more of them is the shadow's precision cost.
* **Ranking: paired bootstrap of the PR-AUC difference.**  Clients are resampled with
  replacement, churners and stayers separately (so every resample has both and its PR-AUC is
  defined), each resample scored by both models' probabilities, and the percentile interval of
  ``PR-AUC(shadow) − PR-AUC(champion)`` is reported (seeded, 1,000 resamples by default).  The
  same resamples give intervals for the recall and precision differences.  PR-AUC is average
  precision computed as scikit-learn's ``average_precision_score`` does, from counts per
  distinct score, so a resample costs one pass over its rows.

**The rule** (:func:`shadow_verdict`), with α = 1 − confidence (0.05).  It judges what the
acceptance gate judges — recall against the target, and ranking (PR-AUC) — now on new clients
and with paired tests; as in the gate, recall beyond the target counts for neither model,
because it is bought with contacts (a model that flags everyone has recall 1):

* fewer churners than ``min_churners`` among the compared clients: **wait** — too little
  evidence either way (the same floor the realised-recall alert uses);
* **retire** when the shadow is significantly worse:
  (a) it catches significantly fewer churners (McNemar p < α) and its recall is below the
  target — it breaks the promise where the champion did better; or
  (b) it ranks churners worse: its PR-AUC difference interval lies wholly below 0;
* **promote** when neither holds and its own recall meets the target;
* otherwise **wait**: not worse, but not yet keeping the recall promise on these clients.

The stayers' test is the **precision cost**: how many more (or fewer) clients the shadow
would have the team contact for nothing.  It is shown, and named in the verdict's sentence
when significant, but it decides nothing: how many clients a model flags follows from its
threshold, which the recall-guarantee rule sets and the gate accepted (the gate would have
promoted the same model at once); retiring on it would judge the threshold rule rather than
the model.

Promotion asks for "not significantly worse", not "significantly better": the challenger
already beat the champion on the gate's held-out period, and demanding a second significant
win would keep every honest retrain out.  The recall target and the churner floor keep a
tiny or weak comparison from promoting anything.  Each monthly look is a new test, so over
many looks a retirement by chance becomes likelier than α; a newer retrain takes the
shadow's place anyway.

Pure functions: numbers in, a :class:`ShadowComparison` out; the jobs do the reading,
scoring, storing and acting (jobs/shadow.py).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from typing import Any, Literal

import numpy as np
import numpy.typing as npt
from scipy.stats import binom

from model.monitoring.performance import RealisedPerformance, _binary, _probabilities, realised_performance
from storage.errors import UserError

Verdict = Literal["promote", "retire", "wait"]
DEFAULT_RESAMPLES = 1000
MIN_RESAMPLES = 100


# --- McNemar ------------------------------------------------------------------------------


def mcnemar_exact_p(only_champion: int, only_shadow: int) -> float:
    """Two-sided p-value of the exact (conditional) McNemar test for ``b`` and ``c`` discordant pairs.

    ``min(1, 2 · BinomCDF(min(b, c); b + c, 1/2))``; 1.0 when there is no discordant pair.
    """
    b, c = int(only_champion), int(only_shadow)
    if b < 0 or c < 0:
        raise ValueError(f"discordant counts cannot be negative (got {b}, {c})")
    n = b + c
    if n == 0:
        return 1.0
    return float(min(1.0, 2.0 * binom.cdf(min(b, c), n, 0.5)))


@dataclass(frozen=True)
class McNemar:
    """One paired yes/no decision (flagged or not) of both models on one group of clients.

    ``group`` is "churners" (flagging is catching) or "stayers" (flagging is a wasted contact).
    """

    group: str
    both: int
    only_champion: int
    only_shadow: int
    neither: int
    p_value: float

    @property
    def discordant(self) -> int:
        return self.only_champion + self.only_shadow

    def significant(self, alpha: float) -> bool:
        return self.p_value < alpha

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> McNemar:
        return cls(**{name: data[name] for name in cls.__dataclass_fields__})


def paired_mcnemar(group: str, champion_flagged: npt.ArrayLike, shadow_flagged: npt.ArrayLike) -> McNemar:
    """Count the 2×2 table of both models' flags on one group and test its discordant cells."""
    champion = _binary(champion_flagged, "champion flags")
    shadow = _binary(shadow_flagged, "shadow flags")
    if len(champion) != len(shadow):
        raise UserError(f"the two models flagged different numbers of clients ({len(champion)}, {len(shadow)})")
    b = int((champion & ~shadow).sum())
    c = int((~champion & shadow).sum())
    return McNemar(group, int((champion & shadow).sum()), b, c, int((~champion & ~shadow).sum()),
                   mcnemar_exact_p(b, c))


# --- paired bootstrap -----------------------------------------------------------------------


@dataclass(frozen=True)
class Difference:
    """``shadow − champion`` on the observed clients, with its bootstrap percentile interval."""

    estimate: float | None
    low: float | None
    high: float | None

    def below_zero(self) -> bool:
        """The whole interval is below 0: the shadow is significantly worse."""
        return self.high is not None and self.high < 0

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Difference:
        return cls(data.get("estimate"), data.get("low"), data.get("high"))


@dataclass(frozen=True)
class PairedBootstrap:
    """Bootstrap intervals of the shadow-minus-champion differences, from one set of resamples."""

    resamples: int
    seed: int
    confidence: float
    pr_auc: Difference
    recall: Difference
    precision: Difference

    def to_dict(self) -> dict[str, Any]:
        return {"resamples": self.resamples, "seed": self.seed, "confidence": self.confidence,
                "pr_auc": self.pr_auc.to_dict(), "recall": self.recall.to_dict(),
                "precision": self.precision.to_dict()}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> PairedBootstrap:
        return cls(int(data["resamples"]), int(data["seed"]), float(data["confidence"]),
                   Difference.from_dict(data["pr_auc"]), Difference.from_dict(data["recall"]),
                   Difference.from_dict(data["precision"]))


class _Ranking:
    """One model's scores as ranks of their distinct values, so that the average precision of any
    resample is two counts per distinct score and their cumulative sums — scikit-learn's
    definition (one point per distinct score, highest first) without sorting or touching a
    row more than once per resample.  Calibrated probabilities have few distinct values."""

    def __init__(self, probability: npt.NDArray[np.float64]) -> None:
        distinct, inverse = np.unique(probability, return_inverse=True)  # ascending
        self.groups = len(distinct)
        self.rank = (self.groups - 1 - inverse).astype(np.intp)  # 0 = the highest score

    def average_precision(self, churners: npt.NDArray[np.intp], stayers: npt.NDArray[np.intp]) -> float:
        """Average precision of the multiset of rows ``churners`` (all churned) and ``stayers``."""
        caught = np.cumsum(np.bincount(self.rank[churners], minlength=self.groups))
        flagged = caught + np.cumsum(np.bincount(self.rank[stayers], minlength=self.groups))
        precision = np.divide(caught, flagged, out=np.zeros(self.groups), where=flagged > 0)
        recall = caught / caught[-1]
        return float(np.sum(np.diff(recall, prepend=0.0) * precision))


def paired_bootstrap(
    y_true: npt.ArrayLike,
    champion_probability: npt.ArrayLike,
    champion_flagged: npt.ArrayLike,
    shadow_probability: npt.ArrayLike,
    shadow_flagged: npt.ArrayLike,
    *,
    resamples: int = DEFAULT_RESAMPLES,
    seed: int = 0,
    confidence: float = 0.95,
) -> PairedBootstrap:
    """Percentile intervals of the PR-AUC, recall and precision differences (shadow − champion).

    Stratified by outcome: each resample draws ``n_churners`` churners and ``n_stayers``
    stayers with replacement (``rng.integers``, churners first, then stayers), the same clients
    for both models.  Needs at least one churner and one stayer.
    """
    if isinstance(resamples, bool) or not isinstance(resamples, int) or resamples < MIN_RESAMPLES:
        raise UserError(f"resamples must be a whole number of at least {MIN_RESAMPLES} (got {resamples!r})")
    if not (isinstance(confidence, int | float) and 0 < confidence < 1):
        raise UserError(f"the confidence level must be between 0 and 1 (got {confidence!r})")
    y = _binary(y_true, "outcomes")
    pc, ps = _probabilities(champion_probability), _probabilities(shadow_probability)
    fc, fs = _binary(champion_flagged, "champion flags"), _binary(shadow_flagged, "shadow flags")
    if not len(y) == len(pc) == len(ps) == len(fc) == len(fs):
        raise UserError("outcomes, probabilities and flags of the two models differ in length "
                        f"({len(y)}, {len(pc)}, {len(ps)}, {len(fc)}, {len(fs)})")
    positives, negatives = np.flatnonzero(y), np.flatnonzero(~y)
    if len(positives) == 0 or len(negatives) == 0:
        raise UserError("a PR-AUC comparison needs at least one churner and one stayer")
    champion, shadow = _Ranking(pc), _Ranking(ps)
    rng = np.random.default_rng(seed)
    pr_auc_diff, recall_diff, precision_diff = (np.empty(resamples) for _ in range(3))
    with np.errstate(invalid="ignore", divide="ignore"):  # NaN where a model flagged nobody in a resample
        for r in range(resamples):
            churners = positives[rng.integers(0, len(positives), len(positives))]
            stayers = negatives[rng.integers(0, len(negatives), len(negatives))]
            pr_auc_diff[r] = shadow.average_precision(churners, stayers) - champion.average_precision(churners,
                                                                                                     stayers)
            caught_c, caught_s = np.count_nonzero(fc[churners]), np.count_nonzero(fs[churners])
            recall_diff[r] = (caught_s - caught_c) / len(positives)
            precision_diff[r] = (np.float64(caught_s) / (caught_s + np.count_nonzero(fs[stayers]))
                                 - np.float64(caught_c) / (caught_c + np.count_nonzero(fc[stayers])))
    observed_pr = shadow.average_precision(positives, negatives) - champion.average_precision(positives, negatives)
    observed_recall = float((fs[y].sum() - fc[y].sum()) / len(positives))
    observed_precision = (float(fs[y].sum() / fs.sum() - fc[y].sum() / fc.sum())
                          if fs.any() and fc.any() else None)
    tail = (1 - confidence) / 2
    return PairedBootstrap(
        resamples=resamples, seed=int(seed), confidence=float(confidence),
        pr_auc=_percentiles(observed_pr, pr_auc_diff, tail),
        recall=_percentiles(observed_recall, recall_diff, tail),
        precision=_percentiles(observed_precision, precision_diff, tail),
    )


def _percentiles(estimate: float | None, draws: npt.NDArray[np.float64], tail: float) -> Difference:
    finite = draws[np.isfinite(draws)]
    if estimate is None or len(finite) < MIN_RESAMPLES:
        return Difference(estimate, None, None)
    low, high = np.quantile(finite, [tail, 1 - tail])
    return Difference(estimate, float(low), float(high))


# --- the comparison and the rule -------------------------------------------------------------


@dataclass(frozen=True)
class ShadowComparison:
    """Both models on the same clients whose outcome is known and that neither trained on."""

    champion_version: str
    shadow_version: str
    n_clients: int
    champion: RealisedPerformance
    shadow: RealisedPerformance
    churners: McNemar
    stayers: McNemar
    bootstrap: PairedBootstrap | None
    target: float
    min_churners: int
    confidence: float
    verdict: Verdict
    reasons: list[str] = field(default_factory=list)
    message: str = ""

    @property
    def alpha(self) -> float:
        return 1 - self.confidence

    @property
    def decisive(self) -> bool:
        return self.verdict != "wait"

    def to_dict(self) -> dict[str, Any]:
        return {
            "champion_version": self.champion_version, "shadow_version": self.shadow_version,
            "n_clients": self.n_clients, "champion": self.champion.to_dict(), "shadow": self.shadow.to_dict(),
            "churners": self.churners.to_dict(), "stayers": self.stayers.to_dict(),
            "bootstrap": None if self.bootstrap is None else self.bootstrap.to_dict(),
            "target": self.target, "min_churners": self.min_churners, "confidence": self.confidence,
            "alpha": self.alpha, "verdict": self.verdict, "reasons": list(self.reasons), "message": self.message,
        }  # fmt: skip

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> ShadowComparison:
        try:
            return cls(
                champion_version=str(data["champion_version"]), shadow_version=str(data["shadow_version"]),
                n_clients=int(data["n_clients"]),
                champion=RealisedPerformance.from_dict(data["champion"]),
                shadow=RealisedPerformance.from_dict(data["shadow"]),
                churners=McNemar.from_dict(data["churners"]), stayers=McNemar.from_dict(data["stayers"]),
                bootstrap=None if data.get("bootstrap") is None else PairedBootstrap.from_dict(data["bootstrap"]),
                target=float(data["target"]), min_churners=int(data["min_churners"]),
                confidence=float(data["confidence"]), verdict=data["verdict"], reasons=list(data["reasons"]),
                message=str(data["message"]),
            )
        except (KeyError, TypeError) as error:
            raise UserError(f"stored shadow comparison is damaged or from another version: {error}") from error

    def table(self) -> list[str]:
        """Both models side by side, then the paired tests: what ``churnguard shadow`` prints."""
        c, s = self.champion, self.shadow
        head_c, head_s = f"champion {self.champion_version}", f"shadow {self.shadow_version}"
        width = max(len(head_c), 22)

        def recall(p: RealisedPerformance) -> str:
            if p.recall is None:
                return "-"
            return f"{p.recall:.2f} ({p.recall_low:.2f}–{p.recall_high:.2f})"

        def number(value: float | None, digits: int = 2) -> str:
            return "-" if value is None else f"{value:.{digits}f}"

        rows = [("", head_c, head_s),
                ("recall (95% CI)", recall(c), recall(s)),
                ("precision", number(c.precision), number(s.precision)),
                ("PR-AUC", number(c.pr_auc, 3), number(s.pr_auc, 3)),
                ("churners caught", f"{c.true_positives} of {c.n_churners}", f"{s.true_positives} of {s.n_churners}"),
                ("flagged", f"{c.n_flagged:,}", f"{s.n_flagged:,}")]
        lines = [f"  {label:<16} {left:<{width}} {right}" for label, left, right in rows]
        lines.append(f"  Churners: {self.shadow_version} caught {self.churners.only_shadow} that "
                     f"{self.champion_version} missed and missed {self.churners.only_champion} that it caught "
                     f"(exact McNemar p = {self.churners.p_value:.3g}).")
        lines.append(f"  Stayers: {self.shadow_version} flagged {self.stayers.only_shadow} that "
                     f"{self.champion_version} did not, and did not flag {self.stayers.only_champion} that it did "
                     f"(exact McNemar p = {self.stayers.p_value:.3g}).")
        boot = self.bootstrap
        if boot is not None:
            lines.append(f"  PR-AUC difference ({self.shadow_version} − {self.champion_version}): "
                         f"{_interval(boot.pr_auc, 3)} ({boot.confidence:.0%} paired bootstrap, "
                         f"{boot.resamples:,} resamples); recall {_interval(boot.recall, 2)}, "
                         f"precision {_interval(boot.precision, 2)}.")
        return lines

    def to_text(self) -> str:
        return "\n".join([self.message, *self.table()])

    def line(self) -> str:
        """Both models side by side in one line, with the paired tests: for a job's summary."""
        c, s = self.champion, self.shadow
        boot = self.bootstrap

        def pair(left: float | None, right: float | None, digits: int) -> str:
            return f"{_number(left, digits)} vs {_number(right, digits)}"

        pr = f"PR-AUC {pair(c.pr_auc, s.pr_auc, 3)}"
        if boot is not None and boot.pr_auc.low is not None:
            pr += f" (difference {_interval(boot.pr_auc, 3)}, {boot.confidence:.0%} paired bootstrap)"
        return (f"Champion {self.champion_version} vs shadow {self.shadow_version} on {self.n_clients:,} clients "
                f"neither trained on: recall {pair(c.recall, s.recall, 2)} (churners: exact McNemar p = "
                f"{self.churners.p_value:.3g}), precision {pair(c.precision, s.precision, 2)} (stayers flagged: "
                f"exact McNemar p = {self.stayers.p_value:.3g}), {pr}.")


def _number(value: float | None, digits: int) -> str:
    return "-" if value is None else f"{value:.{digits}f}"


def _interval(diff: Difference, digits: int) -> str:
    if diff.estimate is None:
        return "-"
    text = f"{diff.estimate:+.{digits}f}"
    if diff.low is not None and diff.high is not None:
        text += f" [{diff.low:+.{digits}f}, {diff.high:+.{digits}f}]"
    return text


def shadow_verdict(
    *,
    champion_version: str,
    shadow_version: str,
    n_clients: int,
    champion: RealisedPerformance,
    shadow: RealisedPerformance,
    churners: McNemar,
    stayers: McNemar,
    bootstrap: PairedBootstrap | None,
    target: float,
    min_churners: int,
    confidence: float,
) -> tuple[Verdict, list[str], str]:
    """The rule of the module docstring: the verdict, the reasons it is "retire", and a sentence."""
    alpha = 1 - confidence
    n_churners = churners.both + churners.only_champion + churners.only_shadow + churners.neither
    if n_churners < min_churners:
        return "wait", [], (
            f"Too few churners to judge shadow {shadow_version} against {champion_version}: {n_churners} < "
            f"{min_churners} among {n_clients:,} clients neither model trained on. Waiting for more outcomes.")
    assert shadow.recall is not None and champion.recall is not None
    reasons: list[str] = []
    fewer = churners.significant(alpha) and churners.only_shadow < churners.only_champion
    if fewer and shadow.recall < target:
        reasons.append(f"it missed {churners.only_champion} churners {champion_version} caught and caught only "
                       f"{churners.only_shadow} it missed (exact McNemar p = {churners.p_value:.3g} < {alpha:g}), "
                       f"leaving its recall {shadow.recall:.2f} below the target {target:.2f}")
    if bootstrap is not None and bootstrap.pr_auc.below_zero():
        pr = bootstrap.pr_auc
        reasons.append(f"it ranks churners worse: PR-AUC difference {pr.estimate:+.3f}, "
                       f"{bootstrap.confidence:.0%} interval {pr.low:+.3f} to {pr.high:+.3f}, wholly below 0")
    cost = ""
    if stayers.significant(alpha) and stayers.only_shadow != stayers.only_champion:
        extra = stayers.only_shadow - stayers.only_champion
        cost = (f" It would contact {abs(extra):,} {'more' if extra > 0 else 'fewer'} stayers than "
                f"{champion_version} (exact McNemar p = {stayers.p_value:.3g}).")
    if reasons:
        return "retire", reasons, (f"Shadow {shadow_version} is significantly worse than champion "
                                   f"{champion_version} on {n_clients:,} new clients: " + "; ".join(reasons) + "."
                                   + cost)
    if shadow.recall >= target:
        return "promote", [], (
            f"Shadow {shadow_version} meets the recall target ({shadow.recall:.2f} >= {target:.2f}, "
            f"{shadow.true_positives} of {n_churners} churners) and is not significantly worse than champion "
            f"{champion_version} (alpha {alpha:g}) on {n_clients:,} new clients neither trained on." + cost)
    return "wait", [], (
        f"Shadow {shadow_version}'s recall {shadow.recall:.2f} is below the target {target:.2f} on {n_churners} "
        f"churners, but it is not significantly worse than champion {champion_version}: waiting for more outcomes."
        + cost)


def compare_models(
    y_true: npt.ArrayLike,
    champion_probability: npt.ArrayLike,
    champion_flagged: npt.ArrayLike,
    shadow_probability: npt.ArrayLike,
    shadow_flagged: npt.ArrayLike,
    *,
    champion_version: str,
    shadow_version: str,
    target: float,
    min_churners: int,
    confidence: float = 0.95,
    resamples: int = DEFAULT_RESAMPLES,
    seed: int = 0,
) -> ShadowComparison:
    """Both models' realised metrics on the same clients, the paired tests, and the verdict.

    Every array holds one entry per client, in the same order; ``*_flagged`` is each model's
    decision at its own threshold.
    """
    y = _binary(y_true, "outcomes")
    pc, ps = _probabilities(champion_probability), _probabilities(shadow_probability)
    fc, fs = _binary(champion_flagged, "champion flags"), _binary(shadow_flagged, "shadow flags")
    if not len(y) == len(pc) == len(ps) == len(fc) == len(fs):
        raise UserError("outcomes, probabilities and flags of the two models differ in length "
                        f"({len(y)}, {len(pc)}, {len(ps)}, {len(fc)}, {len(fs)})")
    champion = realised_performance(y, pc, fc, target=target, min_churners=min_churners, confidence=confidence)
    shadow = realised_performance(y, ps, fs, target=target, min_churners=min_churners, confidence=confidence)
    churners = paired_mcnemar("churners", fc[y], fs[y])
    stayers = paired_mcnemar("stayers", fc[~y], fs[~y])
    bootstrap = None
    if y.any() and (~y).any():
        bootstrap = paired_bootstrap(y, pc, fc, ps, fs, resamples=resamples, seed=seed, confidence=confidence)
    verdict, reasons, message = shadow_verdict(
        champion_version=champion_version, shadow_version=shadow_version, n_clients=len(y), champion=champion,
        shadow=shadow,
        churners=churners, stayers=stayers, bootstrap=bootstrap, target=float(target), min_churners=min_churners,
        confidence=float(confidence))
    return ShadowComparison(champion_version, shadow_version, len(y), champion, shadow, churners, stayers, bootstrap,
                            float(target), int(min_churners), float(confidence), verdict, reasons, message)


__all__ = [
    "DEFAULT_RESAMPLES",
    "Difference",
    "McNemar",
    "PairedBootstrap",
    "ShadowComparison",
    "Verdict",
    "compare_models",
    "mcnemar_exact_p",
    "paired_bootstrap",
    "paired_mcnemar",
    "shadow_verdict",
]
