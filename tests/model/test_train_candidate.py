"""``churnguard train`` and the promotion policy: ``--candidate`` keeps a passing model as a
candidate, and ``CHURNGUARD_PROMOTION=shadow`` does so for every model trained while a champion
serves, the newest candidate superseding the older ones (issue 13 item 4)."""

from __future__ import annotations

import contextlib
import io
import json
import os

import pytest

from churnguard import main
from model.challenger import promotes_at_once
from tests.model.trained_store import adopt_quick_model, ingest_telco, open_store


def run(*argv: str, **env: str) -> tuple[int, str]:
    patch = pytest.MonkeyPatch()
    for name in list(os.environ):
        if name.startswith(("CHURNGUARD_", "TELEGRAM_")):
            patch.delenv(name, raising=False)
    for name, value in env.items():
        patch.setenv(name, value)
    out = io.StringIO()
    try:
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(io.StringIO()):
            code = main(list(argv))
    finally:
        patch.undo()
    return code, out.getvalue()


def test_a_trained_model_waits_as_a_candidate_when_asked_or_when_promotion_needs_the_shadow(tmp_path):
    home = tmp_path / "home"
    store = open_store(f"sqlite:///{(home / 'churnguard.db').as_posix()}", home)
    try:
        ingest_telco(store)
        adopt_quick_model(store)
    finally:
        store.db.dispose()
    # a generous tolerance: this test is about where a passing model goes, not about the gate
    env = {"CHURNGUARD_HOME": str(home), "CHURNGUARD_TUNING_SECONDS": "1", "CHURNGUARD_CHAMPION_TOLERANCE": "0.5"}

    code, out = run("train", "--candidate", "--seed", "3", "--json", **env)
    first = json.loads(out)
    assert code == 0 and (first["version"], first["status"]) == ("v2", "candidate")
    assert first["shadow"] is False and first["superseded"] == []

    code, out = run("train", "--seed", "4", **env, CHURNGUARD_SHADOW="on", CHURNGUARD_PROMOTION="shadow")
    assert code == 0
    assert "Model v3 passed the gate and is stored as a candidate" in out
    assert "It runs in shadow beside the champion" in out
    assert "It replaces the earlier candidate(s) v2, now rejected." in out

    code, out = run("models", "--json", **env)
    statuses = {row["version"]: (row["status"], row["reasons"]) for row in json.loads(out)["versions"]}
    assert statuses["v1"][0] == "champion" and statuses["v3"] == ("candidate", [])
    assert statuses["v2"] == ("rejected", ["superseded by v3 before its shadow comparison decided"])


def test_the_first_model_of_a_store_is_champion_at_once_under_either_policy(tmp_path):
    store = open_store(f"sqlite:///{(tmp_path / 'churnguard.db').as_posix()}", tmp_path / "home",
                       shadow=True, promotion="shadow")
    try:
        assert promotes_at_once(store.settings, store.registry)  # nothing to run beside
        adopt_quick_model(store)
        assert not promotes_at_once(store.settings, store.registry)
        gate = store.settings.model_copy(update={"promotion": "gate"})
        assert promotes_at_once(gate, store.registry)
    finally:
        store.db.dispose()
