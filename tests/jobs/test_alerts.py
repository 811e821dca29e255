"""Alerts: stored with their figures, throttled by a cooldown unless worse, delivered via the outbox."""

from __future__ import annotations

import asyncio
import math
from datetime import datetime, timedelta

import pytest

from jobs.alerts import (
    AlertDraft,
    alert_dict,
    deliver,
    flush_outbox,
    json_safe,
    message_of,
    raise_alert,
    recent_alerts,
    unsent,
)
from jobs.notifier import RecordingNotifier
from storage.tables import Alert, utcnow

T0 = datetime(2024, 3, 1, 12, 0)


def _draft(severity="warning", level=0.35, condition="v1", kind="drift", chart=None) -> AlertDraft:
    return AlertDraft(kind=kind, severity=severity, condition=condition, title="Data drift in batch #4",
                      text="Contract: PSI 0.41", figures={"drifted_share": level, "psi": float("nan")},
                      level=level, worse_by=0.1, chart_png=chart)


def test_a_new_condition_is_stored_with_its_figures(db, tmp_path):
    decision = raise_alert(db, _draft(), cooldown_hours=24, charts_dir=tmp_path, now=T0)
    assert decision.stored and decision.reason == "new condition"
    row = recent_alerts(db)[0]
    assert (row.kind, row.severity, row.fingerprint) == ("drift", "warning", "drift:v1")
    assert row.figures["drifted_share"] == 0.35
    assert row.figures["psi"] is None  # NaN is not JSON; PostgreSQL would refuse it
    assert row.sent_at is None and row.delivered == 0
    listed = alert_dict(row)
    assert listed["title"] == "Data drift in batch #4" and listed["time"] == T0.isoformat()
    assert listed["audience"] == "subscribers+admins"


def test_the_same_condition_is_suppressed_within_the_cooldown(db):
    raise_alert(db, _draft(), cooldown_hours=24, now=T0)
    # when the same drift is seen an hour later, not worse
    again = raise_alert(db, _draft(level=0.38), cooldown_hours=24, now=T0 + timedelta(hours=1))
    # then it is not stored again, and the reason says why
    assert not again.stored
    assert "suppressed" in again.reason and "cooldown 24 h" in again.reason
    assert len(recent_alerts(db)) == 1


def test_a_worse_level_is_sent_again_within_the_cooldown(db):
    raise_alert(db, _draft(level=0.35), cooldown_hours=24, now=T0)
    worse = raise_alert(db, _draft(level=0.5), cooldown_hours=24, now=T0 + timedelta(hours=1))
    assert worse.stored and "level rose from 0.35 to 0.5" in worse.reason
    # and the comparison is then with the newest alert: 0.55 is not 0.1 worse than 0.5
    slight = raise_alert(db, _draft(level=0.55), cooldown_hours=24, now=T0 + timedelta(hours=2))
    assert not slight.stored


def test_a_higher_severity_is_sent_again_and_a_lower_one_is_not(db):
    raise_alert(db, _draft(severity="warning"), cooldown_hours=24, now=T0)
    critical = raise_alert(db, _draft(severity="critical"), cooldown_hours=24, now=T0 + timedelta(minutes=5))
    assert critical.stored and "severity rose from warning to critical" in critical.reason
    warning = raise_alert(db, _draft(severity="warning", level=0.9), cooldown_hours=24,
                          now=T0 + timedelta(minutes=10))
    assert not warning.stored


def test_after_the_cooldown_the_condition_is_sent_again(db):
    raise_alert(db, _draft(), cooldown_hours=6, now=T0)
    later = raise_alert(db, _draft(), cooldown_hours=6, now=T0 + timedelta(hours=6))
    assert later.stored and "cooldown of 6 h over" in later.reason


def test_a_zero_cooldown_sends_every_time(db):
    raise_alert(db, _draft(), cooldown_hours=0, now=T0)
    assert raise_alert(db, _draft(), cooldown_hours=0, now=T0 + timedelta(seconds=1)).stored


def test_different_conditions_do_not_suppress_each_other(db):
    raise_alert(db, _draft(condition="v1"), cooldown_hours=24, now=T0)
    assert raise_alert(db, _draft(condition="v2"), cooldown_hours=24, now=T0).stored
    assert raise_alert(db, _draft(kind="recall"), cooldown_hours=24, now=T0).stored


def test_an_unknown_kind_or_severity_is_a_bug_caught_at_once():
    with pytest.raises(ValueError, match="alert kind"):
        _draft(kind="weather")
    with pytest.raises(ValueError, match="severity"):
        _draft(severity="loud")


def test_the_chart_is_kept_on_disk_and_comes_back_with_the_message(db, tmp_path):
    png = b"\x89PNG fake chart"
    decision = raise_alert(db, _draft(chart=png), cooldown_hours=24, charts_dir=tmp_path / "charts", now=T0)
    with db.session() as session:
        row = session.get(Alert, decision.alert_id)
    assert (tmp_path / "charts" / f"alert-{decision.alert_id}.png").read_bytes() == png
    message = message_of(row)
    assert message.chart_png == png
    assert message.title == "Data drift in batch #4"
    assert "chart" not in message.figures and message.figures["drifted_share"] == 0.35


def test_operational_alerts_go_to_admins_only(db):
    decision = raise_alert(db, _draft(kind="job_failed"), cooldown_hours=24, now=T0)
    with db.session() as session:
        assert message_of(session.get(Alert, decision.alert_id)).audience == "admins"
    assert _draft(kind="ingest_rejected").audience == "admins"
    assert _draft(kind="recall").audience == "subscribers+admins"


def test_delivery_marks_alerts_sent_with_the_count(db):
    decision = raise_alert(db, _draft(), cooldown_hours=24)
    notifier = RecordingNotifier(deliveries=4)
    assert asyncio.run(deliver(db, notifier, [decision.alert_id])) == {decision.alert_id: 4}
    row = recent_alerts(db)[0]
    assert row.sent_at is not None and row.delivered == 4
    # and a second delivery of the same alert sends nothing
    assert asyncio.run(deliver(db, notifier, [decision.alert_id])) == {}
    assert len(notifier.sent) == 1


def test_a_failing_notifier_leaves_the_alert_in_the_outbox(db):
    decision = raise_alert(db, _draft(), cooldown_hours=24)
    assert asyncio.run(deliver(db, RecordingNotifier(fail=True), [decision.alert_id])) == {}
    assert [row.id for row in unsent(db)] == [decision.alert_id]
    # when the notifier works again, the outbox pass delivers it
    notifier = RecordingNotifier()
    assert asyncio.run(flush_outbox(db, notifier)) == {decision.alert_id: 1}
    assert unsent(db) == []


def test_the_outbox_ignores_alerts_older_than_a_day(db):
    raise_alert(db, _draft(), cooldown_hours=24, now=utcnow() - timedelta(days=3))
    assert unsent(db) == []


def test_json_safe_turns_numpy_and_nan_into_json():
    import numpy as np

    safe = json_safe({"a": np.float64(0.5), "b": (np.int64(3), float("inf")), "c": T0})
    assert safe == {"a": 0.5, "b": [3, None], "c": T0.isoformat()}
    assert not any(isinstance(v, float) and math.isnan(v) for v in safe.values())
