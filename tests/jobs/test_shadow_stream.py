"""Issue 13 item 4 end to end: a challenger earns, or loses, the champion's place in shadow.

Monthly CRM exports (tests/storage/events/monthly_stream.py: one file per month-end, each
row's label is whether the client left during the next month) with
``CHURNGUARD_SHADOW=on``, ``CHURNGUARD_PROMOTION=shadow`` and retrains on new labels, run by a
JobRunner with a fixed small trainer, as tests/jobs/test_monthly_stream.py does.  Months 1-4
are ingested and the first model trained; months 5 and 6 arrive through the inbox.

* **Promotion.**  The first champion learnt from a weak view of the data (the activity of the
  month before last, and tenure); the retrains see every column.  Month 5's retrain passes the
  gate and waits in shadow; month 6 arrives, both models score it, its outcomes show the
  shadow keeps the recall promise without being significantly worse, and it is promoted —
  through the registry, audited, announced — after which month 6's retrain waits in shadow
  beside it.  On SQLite and PostgreSQL.
* **Retirement.**  The champion sees every column; the retrains see only the plan and the ad
  views of the last two months (an ad team's view: a weak signal in this simulation), and a
  champion tolerance of 0.5 lets the gate pass them.  On month 6 the shadow is significantly
  worse and is rejected with the reason; the champion stays.
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import shutil
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
from sklearn.metrics import average_precision_score
from sqlmodel import col, select

from churnguard import Settings, main
from jobs.notifier import RecordingNotifier
from jobs.reports import PERFORMANCE, reports
from jobs.runner import JobRunner, RunReport
from model.config import TrainConfig
from model.service import open_registry, train_and_register
from model.sources import SnapshotSource, SourceConfig
from storage.db import Database
from storage.ingest import ingest_file
from storage.schema import schema_from_settings
from storage.tables import AuditLog, ChampionEvent, ClientRecord, Prediction, ShadowPrediction
from tests.conftest import drop_pg_schema, pg_url_or_skip
from tests.storage.events.monthly_stream import EVENT_TYPES, MonthlyStream, write_monthly_stream

TRAIN_MONTHS = 4
FED_MONTHS = (5, 6)
STALE_VIEW = [f"{name}_prev_month" for name in EVENT_TYPES] + ["tenure_days"]
AD_VIEW = ["adview_last_month", "adview_prev_month", "plan"]


def trainer_seeing(columns: list[str] | None) -> Callable[..., Any]:
    """The real training path with a fixed, small search, on every column or only ``columns``."""

    def train(db: Database, settings: Any, **kwargs: Any) -> Any:
        config = TrainConfig.from_settings(settings, tuning_seconds=30.0, max_trials=2, n_folds=3)
        if columns is None:
            return train_and_register(db, settings, config=config, **kwargs)
        data = SnapshotSource(db, SourceConfig.from_settings(settings)).training_data()
        keep = [c for c in data.frame.columns if c in columns or c in (data.schema.id_column, "as_of",
                                                                        data.schema.label_column)]
        frame = data.frame[keep].copy()
        frame.attrs["batch_ids"] = data.batch_ids
        return train_and_register(db, settings, config=config, frame=frame, **kwargs)

    return train


@dataclass
class Story:
    stream: MonthlyStream
    settings: Settings
    db: Database
    notifier: RecordingNotifier
    fed: dict[int, list[RunReport]] = field(default_factory=dict)

    def run(self, month: int, job: str) -> RunReport:
        [found] = [r for r in self.fed[month] if r.job == job]
        return found

    def version(self, name: str) -> Any:
        return open_registry(self.db, self.settings).get(name)

    def champion(self) -> str | None:
        info = open_registry(self.db, self.settings).champion()
        return None if info is None else info.version

    def shadow_part(self, month: int) -> dict[str, Any]:
        [checked] = self.run(month, "performance").run.details["checked"]
        [report] = [r for r in reports(self.db, PERFORMANCE, limit=50) if r.id == checked["report_id"]]
        return dict(report.body["shadow"])


@pytest.fixture(scope="module")
def stream(tmp_path_factory: pytest.TempPathFactory) -> MonthlyStream:
    folder = tmp_path_factory.mktemp("shadow-stream")
    return write_monthly_stream(folder, seed=7, accounts=1200, months=TRAIN_MONTHS + len(FED_MONTHS), warmup_months=3)


def tell(stream: MonthlyStream, home: Path, url: str, *, first: Callable[..., Any], retrain: Callable[..., Any],
         **settings: Any) -> Story:
    values = dict(home=home, database_url=url, id_column=stream.id_column, label_column=stream.label_column,
                  positive_label=stream.positive_label, as_of_column=stream.date_column, no_history_rule="none",
                  retrain_on=["new_labels"], seed=3, shadow=True, promotion="shadow", **settings)
    config = Settings(**values)
    db = Database(url).create_schema()
    schema, explicit = schema_from_settings(config)
    for month in stream.months[:TRAIN_MONTHS]:
        ingest_file(db, month.path, schema=schema, explicit=explicit)
    assert first(db, config, actor="test").status == "champion"
    story = Story(stream, config, db, RecordingNotifier())
    runner = JobRunner(config, db, story.notifier, services={"trainer": retrain})
    config.inbox_dir.mkdir(parents=True, exist_ok=True)
    for number in FED_MONTHS:
        month = stream.months[number - 1]
        shutil.copy(month.path, config.inbox_dir / month.path.name)
        story.fed[number] = runner.run_sync("ingest")
    return story


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def promotion(request: pytest.FixtureRequest, stream: MonthlyStream,
              tmp_path_factory: pytest.TempPathFactory) -> Iterator[Story]:
    home = tmp_path_factory.mktemp(f"promotion-{request.param}") / "home"
    url = f"sqlite:///{(home / 'churnguard.db').as_posix()}" if request.param == "sqlite" else pg_url_or_skip()
    try:
        story = tell(stream, home, url, first=trainer_seeing(STALE_VIEW), retrain=trainer_seeing(None),
                     champion_tolerance=0.1)
        yield story
        story.db.dispose()
    finally:
        if request.param != "sqlite":
            drop_pg_schema(url)


@pytest.fixture(scope="module")
def retirement(stream: MonthlyStream, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Story]:
    home = tmp_path_factory.mktemp("retirement") / "home"
    story = tell(stream, home, f"sqlite:///{(home / 'churnguard.db').as_posix()}", first=trainer_seeing(None),
                 retrain=trainer_seeing(AD_VIEW), champion_tolerance=0.5)
    yield story
    story.db.dispose()


def scores_of(story: Story, table: Any, month: int) -> pd.DataFrame:
    """What ``table`` holds for the month's records, with each client's outcome from the file."""
    [batch_id] = story.run(month, "ingest").run.details["new_batch_ids"]
    with story.db.read_session() as session:
        records = session.exec(select(ClientRecord.id).where(ClientRecord.batch_id == batch_id)).all()
        rows = session.exec(select(table).where(col(table.record_id).in_(list(records)))).all()
    frame = pd.DataFrame([row.model_dump() for row in rows])
    labels = pd.read_csv(story.stream.months[month - 1].path, dtype={story.stream.id_column: str})
    truth = labels.set_index(story.stream.id_column)[story.stream.label_column].eq(story.stream.positive_label)
    frame["churned"] = truth.loc[frame.client_id].to_numpy()
    return frame


def cli(story: Story, *argv: str) -> dict[str, Any]:
    patch = pytest.MonkeyPatch()
    for name in list(os.environ):
        if name.startswith(("CHURNGUARD_", "TELEGRAM_")):
            patch.delenv(name, raising=False)
    for name, value in {"CHURNGUARD_HOME": str(story.settings.home), "CHURNGUARD_SHADOW": "on",
                        "CHURNGUARD_DATABASE_URL": story.settings.database_url,
                        "CHURNGUARD_PROMOTION": "shadow"}.items():
        patch.setenv(name, value)
    out = io.StringIO()
    try:
        with contextlib.redirect_stdout(out):
            assert main([*argv, "--json"]) == 0
    finally:
        patch.undo()
    return dict(json.loads(out.getvalue()))


# ----------------------------------------------------------------------------------- promotion
def test_a_retrain_that_passes_the_gate_waits_in_shadow(promotion):
    retrain = promotion.run(5, "retrain")
    result = retrain.run.details["result"]
    assert (result["version"], result["status"], result["shadow"], result["promoted"]) == ("v2", "candidate", True,
                                                                                            False)
    assert result["champion_after"] == "v1"
    [news] = [d for d in retrain.alerts if d.draft.kind == "retrain"]
    assert news.draft.title == "Retrained model v2 runs in shadow; v1 stays the champion"
    assert "shown to nobody" in news.draft.text
    # month 5 had no shadow yet: the champion alone scored and measured it
    assert "in shadow" not in promotion.run(5, "ingest").summary
    [checked] = promotion.run(5, "performance").run.details["checked"]
    assert checked["shadow"] is None


def test_the_shadow_scores_the_next_month_beside_the_champion_and_only_the_champion_is_served(promotion):
    assert "scored in shadow by v2" in promotion.run(6, "ingest").summary
    served, shadow = scores_of(promotion, Prediction, 6), scores_of(promotion, ShadowPrediction, 6)
    assert set(served.model_version) == {"v1"} and set(shadow.model_version) == {"v2"}
    assert set(shadow.champion_version) == {"v1"}
    assert sorted(served.record_id) == sorted(shadow.record_id) and len(served) == promotion.stream.months[5].clients
    with promotion.db.read_session() as session:
        assert set(session.exec(select(Prediction.model_version)).all()) == {"v1"}
        assert set(session.exec(select(ShadowPrediction.model_version)).all()) == {"v2"}


def test_outcomes_that_show_the_shadow_not_worse_promote_it(promotion):
    part = promotion.shadow_part(6)
    comparison = part["comparison"]
    assert part["status"] == "compared" and part["n_trained_on_shadow"] == 0
    assert comparison["verdict"] == "promote", comparison["message"]
    assert part["action"]["taken"] == "promoted"

    # the rule, read off the stored figures
    shadow, churners, pr = comparison["shadow"], comparison["churners"], comparison["bootstrap"]["pr_auc"]
    assert shadow["n_churners"] >= promotion.settings.min_churners
    assert shadow["recall"] >= promotion.settings.recall_target
    assert not pr["high"] < 0
    # ... and recomputed from what each model said on arrival (the rows are point in time, so the
    # performance job's scores are the arrival scores)
    served, stored = scores_of(promotion, Prediction, 6), scores_of(promotion, ShadowPrediction, 6)
    pair = served.merge(stored, on="record_id", suffixes=("", "_shadow"))
    y = pair.churned.to_numpy()
    assert comparison["champion"]["recall"] == pytest.approx((y & pair.flagged).sum() / y.sum())
    assert shadow["recall"] == pytest.approx((y & pair.flagged_shadow).sum() / y.sum())
    assert comparison["champion"]["pr_auc"] == pytest.approx(average_precision_score(y, pair.probability))
    assert shadow["pr_auc"] == pytest.approx(average_precision_score(y, pair.probability_shadow))
    assert churners["only_shadow"] == int((y & ~pair.flagged & pair.flagged_shadow).sum())
    assert churners["only_champion"] == int((y & pair.flagged & ~pair.flagged_shadow).sum())

    # through the registry, audited, announced
    assert promotion.version("v2").status != "candidate"
    with promotion.db.read_session() as session:
        event = session.exec(select(ChampionEvent).order_by(col(ChampionEvent.id).desc())).first()
        audits = session.exec(select(AuditLog).where(AuditLog.actor == "shadow")).all()
    assert (event.version, event.previous_version, event.actor, event.action) == ("v2", "v1", "shadow", "promote")
    assert {a.action for a in audits} == {"promote", "shadow_promote"}
    performance = promotion.run(6, "performance")
    [news] = [d for d in performance.alerts if d.draft.kind == "retrain"]
    assert news.stored and news.draft.title == "New champion model v2 (was v1), promoted by its shadow result"
    assert news.draft.title in [m.title for m in promotion.notifier.sent]
    assert "v2 promoted; it replaces v1" in performance.summary


def test_the_next_retrain_waits_in_shadow_beside_the_new_champion(promotion):
    result = promotion.run(6, "retrain").run.details["result"]
    assert (result["version"], result["status"], result["champion_before"]) == ("v3", "candidate", "v2")
    assert promotion.champion() == "v2" and promotion.version("v1").status == "retired"
    shown = cli(promotion, "shadow")
    assert (shown["champion"], shown["shadow"], shown["promotion"]) == ("v2", "v3", "shadow")
    assert shown["latest"]["verdict"] == "promote" and shown["latest"]["action"]["taken"] == "promoted"
    assert shown["latest"]["shadow_version"] == "v2" and shown["latest"]["champion_version"] == "v1"
    # what people see is the new champion's, never the newer candidate's
    client = str(scores_of(promotion, Prediction, 6).client_id.iloc[0])
    assert cli(promotion, "score", client)["model_version"] == "v2"


# ---------------------------------------------------------------------------------- retirement
def test_a_shadow_that_ranks_churners_worse_is_retired_and_the_champion_stays(retirement):
    assert retirement.run(5, "retrain").run.details["result"]["status"] == "candidate"
    part = retirement.shadow_part(6)
    comparison = part["comparison"]
    assert comparison["verdict"] == "retire" and part["action"]["taken"] == "retired"
    assert comparison["reasons"]
    for reason in comparison["reasons"]:  # each reason is what the stored figures say
        if reason.startswith("it ranks churners worse"):
            assert comparison["bootstrap"]["pr_auc"]["high"] < 0
        else:
            assert reason.startswith("it missed"), reason
            assert comparison["churners"]["p_value"] < 0.05
            assert comparison["shadow"]["recall"] < retirement.settings.recall_target

    served, stored = scores_of(retirement, Prediction, 6), scores_of(retirement, ShadowPrediction, 6)
    pair = served.merge(stored, on="record_id", suffixes=("", "_shadow"))
    y = pair.churned.to_numpy()
    assert average_precision_score(y, pair.probability_shadow) < average_precision_score(y, pair.probability)

    v2 = retirement.version("v2")
    assert v2.status == "rejected" and v2.reasons[-1] == "shadow comparison: " + "; ".join(comparison["reasons"])
    assert retirement.champion() == "v1"
    with retirement.db.read_session() as session:
        moves = session.exec(select(ChampionEvent)).all()
        [audit] = session.exec(select(AuditLog).where(AuditLog.actor == "shadow")).all()
    assert [e.version for e in moves] == ["v1"] and audit.action == "reject"
    performance = retirement.run(6, "performance")
    [news] = [d for d in performance.alerts if d.draft.kind == "retrain"]
    assert news.draft.title == "Shadow challenger v2 retired; v1 stays the champion"
    assert "v2 rejected; v1 stays the champion" in performance.summary
