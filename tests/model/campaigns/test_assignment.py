"""Assignment: a seeded hash, stratified by risk band, the same on every run and machine."""

from __future__ import annotations

import json
import random
import subprocess
import sys
from collections import Counter

import pytest

from model.campaigns.assignment import HOLDOUT, TREATMENT, assign, campaign_key, draw
from tests.conftest import REPO

IDS = [f"C{i:05d}" for i in range(1000)]
BANDS = ["high" if i % 4 == 0 else "medium" for i in range(1000)]


def test_the_draw_is_sha256_of_the_campaign_key_and_the_client():
    import hashlib

    key = campaign_key(7, 42)
    digest = hashlib.sha256(f"{key}\x1fC00001".encode()).digest()
    assert draw("C00001", key) == int.from_bytes(digest[:8], "big") / 2**64
    assert 0 <= draw("C00001", key) < 1


def test_every_band_holds_out_the_same_share():
    arms, _ = assign(IDS, BANDS, key=campaign_key(1, 42), share=0.2)

    per_band = Counter((band, arm) for band, arm in zip(BANDS, arms, strict=True))
    assert per_band[("high", HOLDOUT)] == 50 and per_band[("high", TREATMENT)] == 200
    assert per_band[("medium", HOLDOUT)] == 150 and per_band[("medium", TREATMENT)] == 600


def test_the_assignment_does_not_depend_on_the_order_of_the_clients():
    arms, draws = assign(IDS, BANDS, key=campaign_key(3, 42), share=0.3)
    order = list(range(len(IDS)))
    random.Random(5).shuffle(order)

    shuffled_arms, shuffled_draws = assign([IDS[i] for i in order], [BANDS[i] for i in order],
                                           key=campaign_key(3, 42), share=0.3)

    assert {IDS[i]: a for i, a in zip(order, shuffled_arms, strict=True)} == dict(zip(IDS, arms, strict=True))
    assert {IDS[i]: d for i, d in zip(order, shuffled_draws, strict=True)} == dict(zip(IDS, draws, strict=True))


def test_the_assignment_is_the_same_in_a_new_process():
    """Stable across restarts: a fresh interpreter (a new hash seed) draws the same holdout."""
    script = ("import json; from model.campaigns.assignment import assign, campaign_key; "
              f"ids = {IDS[:200]!r}; bands = {BANDS[:200]!r}; "
              "print(json.dumps(assign(ids, bands, key=campaign_key(9, 11), share=0.25)[0]))")
    env = {"PYTHONPATH": str(REPO), "PYTHONHASHSEED": "12345", "PATH": "/usr/bin:/bin"}
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, env=env, cwd=REPO, check=True)

    assert json.loads(out.stdout) == assign(IDS[:200], BANDS[:200], key=campaign_key(9, 11), share=0.25)[0]


def test_campaigns_and_seeds_hold_out_different_clients():
    first, _ = assign(IDS, BANDS, key=campaign_key(1, 42), share=0.2)
    other_campaign, _ = assign(IDS, BANDS, key=campaign_key(2, 42), share=0.2)
    other_seed, _ = assign(IDS, BANDS, key=campaign_key(1, 43), share=0.2)

    held = {c for c, a in zip(IDS, first, strict=True) if a == HOLDOUT}
    for arms in (other_campaign, other_seed):
        again = {c for c, a in zip(IDS, arms, strict=True) if a == HOLDOUT}
        assert len(held & again) < 0.4 * len(held)  # about 20 % overlap by chance, never the same clients


@pytest.mark.parametrize("share", [0.0, 0.95, -0.1])
def test_shares_without_a_useful_holdout_are_refused(share):
    with pytest.raises(ValueError, match="holdout share"):
        assign(IDS, BANDS, key="k", share=share)


def test_duplicate_clients_are_refused():
    with pytest.raises(ValueError, match="unique"):
        assign(["a", "a"], ["high", "high"], key="k", share=0.5)
