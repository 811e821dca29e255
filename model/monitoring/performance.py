"""Is the champion still catching the churners it promised to catch?

Two views of the same question.  *Realised* performance waits for outcomes: clients scored
earlier whose labels have since arrived give recall, precision and PR-AUC, with a confidence
interval for recall because a recall computed on 15 churners says very little.  Below
``min_churners`` the result says so and never alerts.  The alert itself compares the point
estimate with the target, so it agrees with anyone who recomputes recall from the same
rows; the interval tells people how much to trust it.

*Estimated* performance does not wait: when the champion's probabilities are calibrated,
each scored client is a churner with probability p, so the expected number of churners is
Σp and the expected number caught is Σp over the flagged ones (confidence-based performance
estimation, as in NannyML's CBPE).  It is an early warning, not a measurement: it cannot see
concept drift (a change in who churns given the same data) and it is only as good as the
calibration.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from typing import Any, Literal, cast

import numpy as np
import numpy.typing as npt
from scipy.stats import beta, norm
from sklearn.metrics import average_precision_score

from storage.errors import UserError

RecallStatus = Literal["ok", "below_target", "insufficient_data"]
EstimateStatus = Literal["ok", "early_warning", "insufficient_data"]
IntervalMethod = Literal["wilson", "exact"]


@dataclass(frozen=True)
class RealisedPerformance:
    """Recall, precision and PR-AUC on clients whose outcome is known.

    ``recall_low``/``recall_high`` bound recall at ``confidence`` (``method`` "wilson" or
    "exact" = Clopper-Pearson); metrics that cannot be computed (no churners, nobody
    flagged) are None.  ``alert`` is True only for ``status == "below_target"``.
    """

    n_scored: int
    n_churners: int
    n_flagged: int
    true_positives: int
    recall: float | None
    recall_low: float | None
    recall_high: float | None
    precision: float | None
    pr_auc: float | None
    target: float
    min_churners: int
    confidence: float
    method: IntervalMethod
    status: RecallStatus
    message: str

    @property
    def alert(self) -> bool:
        return self.status == "below_target"

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["alert"] = self.alert
        return data

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> RealisedPerformance:
        try:
            fields = {name: data[name] for name in cls.__dataclass_fields__}
        except KeyError as error:
            raise UserError(f"stored recall result is damaged or from another version: missing {error}") from error
        return cls(**fields)

    def to_text(self) -> str:
        return self.message


@dataclass(frozen=True)
class EstimatedPerformance:
    """Recall and precision expected from calibrated probabilities, before labels arrive.

    ``expected_churners`` = Σp, ``expected_caught`` = Σp over flagged clients.  The
    intervals come from simulating outcomes as independent Bernoulli(p) draws.
    """

    n_scored: int
    n_flagged: int
    expected_churners: float
    expected_caught: float
    recall: float | None
    recall_low: float | None
    recall_high: float | None
    precision: float | None
    precision_low: float | None
    precision_high: float | None
    target: float
    min_churners: int
    confidence: float
    status: EstimateStatus
    message: str

    @property
    def early_warning(self) -> bool:
        return self.status == "early_warning"

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["early_warning"] = self.early_warning
        return data

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> EstimatedPerformance:
        try:
            fields = {name: data[name] for name in cls.__dataclass_fields__}
        except KeyError as error:
            raise UserError(f"stored recall estimate is damaged or from another version: missing {error}") from error
        return cls(**fields)

    def to_text(self) -> str:
        return self.message


# --- validation ---------------------------------------------------------------------------


def _check_settings(target: float, min_churners: int, confidence: float) -> None:
    if not (isinstance(target, int | float) and 0 < target < 1):
        raise UserError(f"the recall target must be between 0 and 1 (got {target!r})")
    if isinstance(min_churners, bool) or not isinstance(min_churners, int) or min_churners < 1:
        raise UserError(f"min_churners must be a whole number of at least 1 (got {min_churners!r})")
    if not (isinstance(confidence, int | float) and 0 < confidence < 1):
        raise UserError(f"the confidence level must be between 0 and 1 (got {confidence!r})")


def _probabilities(probability: npt.ArrayLike) -> npt.NDArray[np.float64]:
    try:
        p = np.asarray(probability, dtype=float).ravel()
    except (TypeError, ValueError) as error:
        raise UserError(f"probabilities must be numbers: {error}") from None
    bad = ~np.isfinite(p) | (p < 0) | (p > 1)
    if bad.any():
        raise UserError(
            f"{int(bad.sum())} probabilit{'y is' if bad.sum() == 1 else 'ies are'} missing or outside 0–1 "
            f"(first: {p[bad][0]!r})"
        )
    return p


def _binary(values: npt.ArrayLike, what: str) -> npt.NDArray[np.bool_]:
    array = np.asarray(values).ravel()
    if array.dtype == bool:
        return array
    try:
        numbers = array.astype(float)
    except (TypeError, ValueError):
        raise UserError(f"{what} must be 0/1 or True/False (got values like {array[:3].tolist()!r})") from None
    bad = ~np.isin(numbers, (0.0, 1.0))
    if bad.any():
        raise UserError(
            f"{what} must be 0/1 or True/False; {int(bad.sum())} value(s) are not (first: {array[bad][0]!r})"
        )
    return numbers == 1.0


def recall_interval(
    caught: int, churners: int, *, confidence: float = 0.95, method: IntervalMethod = "wilson"
) -> tuple[float, float]:
    """Confidence interval of a recall of ``caught``/``churners``.

    Wilson by default: it stays inside [0, 1] and keeps close to the nominal coverage for
    the small churner counts monitoring sees, where the textbook normal interval does not.
    "exact" is Clopper-Pearson: never below the nominal coverage, wider.  Closed forms
    rather than ``scipy.stats.binomtest``, which also computes an exact p-value nobody needs.
    """
    if churners <= 0 or not 0 <= caught <= churners:
        raise ValueError(f"a recall interval needs 0 ≤ caught ≤ churners and churners ≥ 1 (got {caught}/{churners})")
    if method not in ("wilson", "exact"):
        raise UserError(f"interval method must be 'wilson' or 'exact' (got {method!r})")
    tail = (1 - confidence) / 2
    if method == "exact":
        low = 0.0 if caught == 0 else float(beta.ppf(tail, caught, churners - caught + 1))
        high = 1.0 if caught == churners else float(beta.ppf(1 - tail, caught + 1, churners - caught))
        return low, high
    z = float(norm.ppf(1 - tail))
    share, n = caught / churners, churners
    centre = (share + z * z / (2 * n)) / (1 + z * z / n)
    half = z / (1 + z * z / n) * math.sqrt(share * (1 - share) / n + z * z / (4 * n * n))
    return max(0.0, centre - half), min(1.0, centre + half)


# --- realised performance -----------------------------------------------------------------


def realised_performance(
    y_true: npt.ArrayLike,
    probability: npt.ArrayLike,
    flagged: npt.ArrayLike,
    *,
    target: float,
    min_churners: int = 30,
    confidence: float = 0.95,
    method: IntervalMethod = "wilson",
) -> RealisedPerformance:
    """Metrics for clients scored earlier whose outcomes (1 = churned) have arrived.

    ``flagged`` is what the model decided at scoring time (probability ≥ its threshold
    then), so a later threshold change does not rewrite history.
    """
    _check_settings(target, min_churners, confidence)
    y = _binary(y_true, "outcomes")
    p = _probabilities(probability)
    f = _binary(flagged, "flags")
    if not len(y) == len(p) == len(f):
        raise UserError(f"outcomes, probabilities and flags differ in length ({len(y)}, {len(p)}, {len(f)})")
    n, churners, n_flagged = len(y), int(y.sum()), int(f.sum())
    caught = int((y & f).sum())
    recall = caught / churners if churners else None
    precision = caught / n_flagged if n_flagged else None
    pr_auc = float(average_precision_score(y, p)) if 0 < churners < n else None
    low = high = None
    if churners:
        low, high = recall_interval(caught, churners, confidence=confidence, method=method)
    status: RecallStatus
    if churners < min_churners:
        status = "insufficient_data"
        message = (
            f"Not enough churners for a reliable recall (n = {churners} < {min_churners}); "
            f"{n:,} scored clients have outcomes so far. No alert."
        )
        if recall is not None:
            message += f" Provisional recall {recall:.2f} ({confidence:.0%} CI {low:.2f}–{high:.2f})."
    else:
        assert recall is not None and low is not None and high is not None
        status = "below_target" if recall < target else "ok"
        verdict = "BELOW the target" if status == "below_target" else "meets the target"
        message = (
            f"Recall {recall:.2f} ({confidence:.0%} CI {low:.2f}–{high:.2f}, {caught} of {churners} churners caught) "
            f"{verdict} {target:.2f}."
        )
        if precision is not None:
            message += f" Precision {precision:.2f} ({n_flagged:,} flagged)."
        if pr_auc is not None:
            message += f" PR-AUC {pr_auc:.3f}."
    return RealisedPerformance(
        n_scored=n,
        n_churners=churners,
        n_flagged=n_flagged,
        true_positives=caught,
        recall=recall,
        recall_low=low,
        recall_high=high,
        precision=precision,
        pr_auc=pr_auc,
        target=float(target),
        min_churners=min_churners,
        confidence=float(confidence),
        method=method,
        status=status,
        message=message,
    )


# --- estimated performance (CBPE) ---------------------------------------------------------

_EXACT_DRAWS = 20_000_000  # Bernoulli draws beyond which sums are simulated as normals


def estimate_performance(
    probability: npt.ArrayLike,
    flagged: npt.ArrayLike,
    *,
    target: float,
    min_churners: int = 30,
    confidence: float = 0.95,
    simulations: int = 2000,
    seed: int = 0,
) -> EstimatedPerformance:
    """Expected recall and precision of current scores, assuming the probabilities are calibrated.

    The interval simulates the unknown outcomes: each client churns with its own p
    (a Poisson-binomial count), exactly for moderate sizes and through normal approximations
    of the caught and missed counts for very large ones.  Below ``min_churners`` expected
    churners there is no warning, mirroring the realised check.
    """
    _check_settings(target, min_churners, confidence)
    if isinstance(simulations, bool) or not isinstance(simulations, int) or simulations < 100:
        raise UserError(f"simulations must be a whole number of at least 100 (got {simulations!r})")
    p = _probabilities(probability)
    f = _binary(flagged, "flags")
    if len(p) != len(f):
        raise UserError(f"probabilities and flags differ in length ({len(p)}, {len(f)})")
    n, n_flagged = len(p), int(f.sum())
    expected_churners = float(p.sum())
    expected_caught = float(p[f].sum())
    recall = expected_caught / expected_churners if expected_churners > 0 else None
    precision = expected_caught / n_flagged if n_flagged else None

    caught, missed = _simulate_counts(p[f], p[~f], simulations, seed)
    tail = (1 - confidence) / 2
    total = caught + missed
    recall_low = recall_high = precision_low = precision_high = None
    if recall is not None and (total > 0).any():
        draws = caught[total > 0] / total[total > 0]
        recall_low, recall_high = (float(v) for v in np.quantile(draws, [tail, 1 - tail]))
    if precision is not None:
        precision_low, precision_high = (float(v) for v in np.quantile(caught / n_flagged, [tail, 1 - tail]))

    status: EstimateStatus
    if expected_churners < min_churners or recall is None:
        status = "insufficient_data"
        message = (
            f"Too few expected churners to estimate recall (≈{expected_churners:.1f} < {min_churners}) "
            f"among {n:,} scored clients. No early warning."
        )
    else:
        status = "early_warning" if recall < target else "ok"
        head = "EARLY WARNING: estimated recall" if status == "early_warning" else "Estimated recall"
        relation = "is below" if status == "early_warning" else "meets"
        message = (
            f"{head} {recall:.2f} ({confidence:.0%} range {recall_low:.2f}–{recall_high:.2f}) {relation} the target "
            f"{target:.2f}, from calibrated probabilities of {n:,} clients (≈{expected_churners:.0f} expected "
            f"churners, {n_flagged:,} flagged); labels will confirm it."
        )
        if precision is not None:
            message += f" Estimated precision {precision:.2f}."
    return EstimatedPerformance(
        n_scored=n,
        n_flagged=n_flagged,
        expected_churners=expected_churners,
        expected_caught=expected_caught,
        recall=recall,
        recall_low=recall_low,
        recall_high=recall_high,
        precision=precision,
        precision_low=precision_low,
        precision_high=precision_high,
        target=float(target),
        min_churners=min_churners,
        confidence=float(confidence),
        status=status,
        message=message,
    )


def _simulate_counts(
    p_flagged: npt.NDArray[np.float64], p_unflagged: npt.NDArray[np.float64], simulations: int, seed: int
) -> tuple[npt.NDArray[np.float64], npt.NDArray[np.float64]]:
    """Simulated churners among flagged (caught) and unflagged (missed) clients."""
    rng = np.random.default_rng(seed)
    return _poisson_binomial(p_flagged, simulations, rng), _poisson_binomial(p_unflagged, simulations, rng)


def _poisson_binomial(
    p: npt.NDArray[np.float64], simulations: int, rng: np.random.Generator
) -> npt.NDArray[np.float64]:
    if p.size == 0:
        return np.zeros(simulations)
    if p.size * simulations > _EXACT_DRAWS:
        mean, sd = p.sum(), math.sqrt(float((p * (1 - p)).sum()))
        return cast(npt.NDArray[np.float64], np.clip(np.round(rng.normal(mean, sd, simulations)), 0, p.size))
    counts = np.zeros(simulations)
    chunk = max(1, 2_000_000 // p.size)  # bounded memory: chunk × n booleans at a time
    for start in range(0, simulations, chunk):
        size = min(chunk, simulations - start)
        counts[start : start + size] = (rng.random((size, p.size)) < p).sum(axis=1)
    return counts
