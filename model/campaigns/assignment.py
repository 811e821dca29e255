"""Who is held out: a seeded hash of the campaign and the client, stratified by risk band.

Why a hash and not a random generator: the draw of a client depends only on
``(seed, campaign id, client id)``, so it is the same on every machine, after a restart, in
a re-run, and whatever order the clients come in; nobody can re-roll a campaign until the
holdout looks convenient.  The draw is sha256 of those three, read as a uniform number in
[0, 1).  The assignment is also stored with the campaign (storage/campaigns.py) and never
recomputed: the hash is how it was made, not how it is looked up.

Why stratified: high-risk clients churn far more often than medium-risk ones, so a holdout
that happened to take more of one band would bias the comparison.  Within each band the
clients with the lowest draws are held out, exactly ``round(share x band size)`` of them,
so every band holds out the same share.
"""

from __future__ import annotations

import hashlib
from collections import defaultdict
from collections.abc import Sequence

TREATMENT, HOLDOUT = "treatment", "holdout"
ARMS = (TREATMENT, HOLDOUT)
MIN_HOLDOUT_SHARE = 0.01
MAX_HOLDOUT_SHARE = 0.9
_SCALE = float(1 << 64)


def draw(client_id: str, campaign_key: str) -> float:
    """The client's uniform number in [0, 1) for this campaign key (sha256, first 8 bytes)."""
    digest = hashlib.sha256(f"{campaign_key}\x1f{client_id}".encode()).digest()
    return int.from_bytes(digest[:8], "big") / _SCALE


def campaign_key(campaign_id: int, seed: int) -> str:
    """What the draws of one campaign hash with its clients: its id and its seed."""
    return f"churnguard-campaign:{int(campaign_id)}:{int(seed)}"


def held_out_count(size: int, share: float) -> int:
    """How many of a band of ``size`` clients are held out."""
    return min(size, max(0, round(size * share)))


def assign(client_ids: Sequence[str], bands: Sequence[str], *, key: str, share: float) -> tuple[list[str], list[float]]:
    """The arm (``treatment`` or ``holdout``) and the draw of each client, in input order."""
    if len(client_ids) != len(bands):
        raise ValueError("one risk band per client is needed")
    if len(set(client_ids)) != len(client_ids):
        raise ValueError("client ids must be unique within a campaign")
    if not MIN_HOLDOUT_SHARE <= share <= MAX_HOLDOUT_SHARE:
        raise ValueError(f"the holdout share must be between {MIN_HOLDOUT_SHARE} and {MAX_HOLDOUT_SHARE}")
    draws = [draw(str(client), key) for client in client_ids]
    by_band: dict[str, list[int]] = defaultdict(list)
    for index, band in enumerate(bands):
        by_band[str(band)].append(index)
    arms = [TREATMENT] * len(client_ids)
    for members in by_band.values():
        members.sort(key=lambda i: (draws[i], str(client_ids[i])))
        for index in members[:held_out_count(len(members), share)]:
            arms[index] = HOLDOUT
    return arms, draws


__all__ = ["ARMS", "HOLDOUT", "MAX_HOLDOUT_SHARE", "MIN_HOLDOUT_SHARE", "TREATMENT", "assign", "campaign_key",
           "draw", "held_out_count"]
