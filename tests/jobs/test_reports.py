"""Monitoring reports in storage, newest first, filtered by batch and model."""

from __future__ import annotations

from jobs.reports import latest_drift, latest_report, reports, store_report


def test_reports_are_stored_and_found_newest_first(db):
    first = store_report(db, "drift", {"verdict": "no_drift", "text": "a"}, model_version="v1", batch_id=1)
    second = store_report(db, "drift", {"verdict": "drift", "text": "b"}, model_version="v2", batch_id=2)
    store_report(db, "performance", {"text": "c"}, model_version="v2", batch_id=2)
    assert latest_report(db, "drift").id == second
    assert latest_report(db, "drift", batch_id=1).id == first
    assert latest_report(db, "drift", model_version="v1").id == first
    assert latest_report(db, "drift", batch_id=3) is None
    assert [r.id for r in reports(db, "drift")] == [second, first]


def test_no_drift_view_before_the_first_check(db):
    assert latest_drift(db) is None


def test_a_drift_view_without_features_has_no_chart(db):
    store_report(db, "drift", {"text": "nothing to compare"}, model_version="v1")
    view = latest_drift(db)
    assert view.text == "nothing to compare" and view.report is None and view.chart_png() is None
