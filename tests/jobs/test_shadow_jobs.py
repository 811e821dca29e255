"""The shadow challenger through the jobs, on SQLite and PostgreSQL (issue 13 item 4).

A Telco store whose champion v1 is the shared quick model and whose candidate v2 is the same
model at a much higher threshold (0.9): it scores every client alike but flags far fewer, so
it misses churners the champion catches.  A month of new clients (with outcomes) arrives
through the inbox with ``CHURNGUARD_SHADOW=on``.  Then:

* both models score it on arrival; v2's predictions are stored apart (``shadow_prediction``)
  and /score's command-line twin, top, export and a new campaign all serve v1 alone;
* the performance job compares them on the same clients, and the stored comparison agrees
  with one recomputed here from the stored predictions and the file's outcomes;
* with ``CHURNGUARD_PROMOTION=gate`` the verdict ("retire") is advice and nothing moves; with
  ``shadow`` the same check rejects v2 through the registry, audited and announced.
"""

from __future__ import annotations

import contextlib
import io
import json
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
from scipy.stats import binomtest
from sklearn.metrics import average_precision_score
from sqlmodel import select

from churnguard import main
from jobs.notifier import RecordingNotifier
from jobs.reports import PERFORMANCE, reports
from jobs.runner import JobRunner
from model.monitoring.stream import monthly_stream
from model.registry import NewVersion
from model.service import REPORT_FILE
from storage.tables import AuditLog, ChampionEvent, Prediction, ShadowPrediction
from tests.conftest import TELCO
from tests.model.trained_store import Store, adopt_quick_model, engine_url, ingest_telco, open_store, quick_training

SHADOW_THRESHOLD = 0.9
ARRIVAL = "arrivals_2026_01.csv"


def register_copy(store: Store, threshold: float) -> str:
    """The shared quick model again, as a candidate with its own threshold."""
    source, result = quick_training()
    model = source.registry.load(result.version)

    def write(directory: Path, version: str) -> None:
        model.save(directory)
        (directory / REPORT_FILE).write_text(json.dumps({**result.report, "version": version}))

    meta = NewVersion(threshold=threshold, seed=1, train_rows=result.info.train_rows, metrics=result.info.metrics)
    return store.registry.register(write, meta, promote=False, actor="test").version


@pytest.fixture(params=["sqlite", "postgresql"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Store]:
    with engine_url(request.param, tmp_path) as url:
        made = open_store(url, tmp_path / "home", shadow=True, promotion="gate", retrain_on=[], seed=5)
        try:
            ingest_telco(made)
            assert adopt_quick_model(made).version == "v1"
            assert register_copy(made, SHADOW_THRESHOLD) == "v2"
            yield made
        finally:
            made.db.dispose()


def arrivals() -> pd.DataFrame:
    telco = pd.read_csv(TELCO, dtype=str, keep_default_na=False)
    return monthly_stream(telco, 1, drift="none", seed=21, rows_per_month=900)[0]


def feed(store: Store) -> tuple[list[Any], pd.DataFrame]:
    frame = arrivals()
    inbox = store.settings.inbox_dir
    inbox.mkdir(parents=True, exist_ok=True)
    frame.to_csv(inbox / ARRIVAL, index=False)
    runner = JobRunner(store.settings, store.db, RecordingNotifier(), services={"registry": store.registry})
    return runner.run_sync("ingest"), frame


def run_cli(store: Store, *argv: str, **env: str) -> tuple[int, str]:
    patch = pytest.MonkeyPatch()
    for name in list(os.environ):
        if name.startswith(("CHURNGUARD_", "TELEGRAM_")):
            patch.delenv(name, raising=False)
    patch.setenv("CHURNGUARD_HOME", str(store.settings.home))
    patch.setenv("CHURNGUARD_DATABASE_URL", store.settings.database_url)
    patch.setenv("CHURNGUARD_SHADOW", "on")
    for name, value in env.items():
        patch.setenv(name, value)
    out = io.StringIO()
    try:
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(io.StringIO()):
            code = main(list(argv))
    finally:
        patch.undo()
    return code, out.getvalue()


def stored(store: Store, table: Any) -> pd.DataFrame:
    with store.db.read_session() as session:
        rows = session.exec(select(table)).all()
    return pd.DataFrame([row.model_dump() for row in rows])


def performance_body(store: Store) -> dict[str, Any]:
    """The newest performance report."""
    return dict(reports(store.db, PERFORMANCE, limit=1)[0].body)


def test_the_shadow_scores_every_arrival_beside_the_champion_and_is_never_shown(store, tmp_path):
    runs, frame = feed(store)

    [ingest] = [r for r in runs if r.job == "ingest"]
    assert "scored with v1" in ingest.summary and "scored in shadow by v2" in ingest.summary
    served, shadow = stored(store, Prediction), stored(store, ShadowPrediction)
    assert set(served.model_version) == {"v1"} and len(served) > 0
    assert set(shadow.model_version) == {"v2"} and set(shadow.champion_version) == {"v1"}
    # the same clients, records and probabilities (the same model), each flagged at its own threshold
    pair = served.merge(shadow, on=["client_id", "record_id"], suffixes=("", "_shadow"), validate="one_to_one")
    assert len(pair) == len(served) == len(shadow)
    assert np.allclose(pair.probability, pair.probability_shadow)
    assert (pair.flagged_shadow == (pair.probability_shadow >= SHADOW_THRESHOLD)).all()
    assert pair.flagged.sum() > pair.flagged_shadow.sum()
    assert set(shadow.run_id) == {f"shadow-{run}" for run in served.run_id}

    # what people see is the champion's, however new the candidate
    client = str(frame.customerID.iloc[0])
    code, out = run_cli(store, "score", client, "--json")
    assert code == 0 and json.loads(out)["model_version"] == "v1"
    code, out = run_cli(store, "top", "-n", "50", "--json")
    assert code == 0 and {row["model_version"] for row in json.loads(out)["clients"]} == {"v1"}
    code, out = run_cli(store, "export", "--output", str(tmp_path / "flagged.csv"), "--json")
    assert code == 0 and json.loads(out)["model_version"] == "v1"
    assert set(pd.read_csv(tmp_path / "flagged.csv").model_version) == {"v1"}
    code, out = run_cli(store, "campaign", "new", "--top", "200", "--json")
    assert code == 0 and json.loads(out)["model_version"] == "v1"


def test_the_comparison_agrees_with_one_recomputed_from_the_stored_predictions(store):
    _runs, frame = feed(store)
    part = performance_body(store)["shadow"]
    assert part["status"] == "compared" and part["shadow_version"] == "v2" and part["champion_version"] == "v1"
    comparison = part["comparison"]

    served, shadow = stored(store, Prediction), stored(store, ShadowPrediction)
    truth = frame.set_index("customerID").Churn.eq("Yes")
    pair = served.merge(shadow, on=["client_id", "record_id"], suffixes=("", "_shadow"))
    y = truth.loc[pair.client_id].to_numpy()
    fc, fs = pair.flagged.to_numpy(), pair.flagged_shadow.to_numpy()
    assert comparison["n_clients"] == len(pair)
    for side, flags, probability in (("champion", fc, pair.probability), ("shadow", fs, pair.probability_shadow)):
        figures = comparison[side]
        assert figures["n_churners"] == y.sum() and figures["true_positives"] == (y & flags).sum()
        assert figures["recall"] == pytest.approx((y & flags).sum() / y.sum())
        assert figures["precision"] == pytest.approx((y & flags).sum() / flags.sum())
        assert figures["pr_auc"] == pytest.approx(average_precision_score(y, probability))
    b, c = int((y & fc & ~fs).sum()), int((y & ~fc & fs).sum())
    churners = comparison["churners"]
    assert (churners["only_champion"], churners["only_shadow"]) == (b, c)
    assert churners["p_value"] == pytest.approx(binomtest(b, b + c, 0.5).pvalue)
    stayers = comparison["stayers"]
    assert stayers["only_champion"] == int((~y & fc & ~fs).sum())
    assert stayers["only_shadow"] == int((~y & ~fc & fs).sum())
    assert comparison["bootstrap"]["resamples"] == 1000 and comparison["bootstrap"]["seed"] == 5
    assert comparison["verdict"] == "retire"
    assert comparison["shadow"]["recall"] < 0.9 and churners["p_value"] < 0.05


def test_under_gate_promotion_the_verdict_is_advice_and_nothing_moves(store):
    runs, _frame = feed(store)
    [performance] = [r for r in runs if r.job == "performance"]
    assert "Shadow v2 is significantly worse than champion v1" in performance.summary
    assert "Not acted on" in performance.summary and "an admin decides" in performance.summary
    # both models side by side with the paired tests: in the job's summary and the stored report
    assert "Champion v1 vs shadow v2 on " in performance.summary
    assert all(word in performance.summary for word in ("recall", "precision", "PR-AUC", "exact McNemar", "bootstrap"))
    text = performance_body(store)["text"]
    assert "champion v1" in text and "shadow v2" in text and "PR-AUC difference (v2 − v1)" in text
    assert performance_body(store)["shadow"]["action"]["taken"] == "none"
    assert store.registry.get("v2").status == "candidate" and store.registry.champion().version == "v1"
    assert not [d for d in performance.alerts if d.draft.kind == "retrain"]

    code, out = run_cli(store, "shadow", "--json")
    shown = json.loads(out)
    assert code == 0 and shown["shadow"] == "v2" and shown["champion"] == "v1" and shown["promotion"] == "gate"
    assert shown["latest"]["verdict"] == "retire" and shown["latest"]["action"]["taken"] == "none"
    code, text = run_cli(store, "shadow")
    assert "candidate v2" in text and "champion v1" in text and "exact McNemar" in text and "bootstrap" in text


def test_under_shadow_promotion_the_same_check_retires_the_shadow(store):
    runs, _frame = feed(store)
    [batch_id] = next(r for r in runs if r.job == "ingest").run.details["new_batch_ids"]
    settings = store.settings.model_copy(update={"promotion": "shadow"})
    notifier = RecordingNotifier()
    runner = JobRunner(settings, store.db, notifier, services={"registry": store.registry})
    [performance] = runner.run_sync("performance", params={"batch_ids": [batch_id]})

    assert "v2 rejected; v1 stays the champion" in performance.summary
    v2 = store.registry.get("v2")
    assert v2.status == "rejected" and v2.reasons[-1].startswith("shadow comparison: it missed")
    assert store.registry.champion().version == "v1"
    with store.db.read_session() as session:
        audits = session.exec(select(AuditLog).where(AuditLog.actor == "shadow")).all()
        events = session.exec(select(ChampionEvent)).all()
    assert [(a.action, a.detail[:3]) for a in audits] == [("reject", "v2:")]
    assert [e.version for e in events] == ["v1"]  # the pointer never moved
    [alert] = [d for d in performance.alerts if d.draft.kind == "retrain"]
    assert alert.stored and alert.draft.title == "Shadow challenger v2 retired; v1 stays the champion"
    assert "significantly worse" in alert.draft.text and "/" not in alert.draft.text  # no server path
    assert [m.title for m in notifier.sent] == [alert.draft.title]
    assert performance_body(store)["shadow"]["action"]["taken"] == "retired"

    # measured again, the shadow is gone: nothing runs beside the champion, nothing more is decided
    [again] = runner.run_sync("performance", params={"batch_ids": [batch_id]})
    assert "Shadow" not in again.summary and store.registry.newest_candidate() is None


def test_a_shadow_that_cannot_run_never_stops_the_champion(store):
    damaged = store.registry.get("v2").artifact_dir
    for path in [damaged, *damaged.rglob("*")]:
        path.chmod(0o755 if path.is_dir() else 0o644)
    next(p for p in sorted(damaged.iterdir()) if p.is_file() and p.name != "manifest.json").write_bytes(b"garbage")

    runs, _frame = feed(store)

    [ingest] = [r for r in runs if r.job == "ingest"]
    [performance] = [r for r in runs if r.job == "performance"]
    assert ingest.outcome == performance.outcome == "ok"
    assert "shadow v2 cannot run" in ingest.summary and "scored with v1" in ingest.summary
    assert "shadow v2 cannot run" in performance.summary and "Recall" in performance.summary
    assert len(stored(store, Prediction)) > 0 and stored(store, ShadowPrediction).empty
    assert str(store.settings.home) not in ingest.summary  # the folder is named, never the server's path
    assert store.registry.get("v2").status == "candidate"  # nothing is decided without a comparison


def test_shadow_promotion_refuses_a_trainer_that_would_promote_anyway(store):
    calls: list[str] = []

    def old_trainer(db, settings, *, actor, progress, registry):  # no promote, no **kwargs
        calls.append(actor)
        raise AssertionError("must not train: it would promote a passing model at once")

    settings = store.settings.model_copy(update={"promotion": "shadow"})
    runner = JobRunner(settings, store.db, None, services={"registry": store.registry, "trainer": old_trainer})
    [run] = runner.run_sync("retrain")
    assert run.outcome == "failed" and calls == []
    assert "cannot keep a challenger as a candidate" in (run.run.error or "")
    assert store.registry.champion().version == "v1"
