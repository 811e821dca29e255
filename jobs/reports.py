"""Monitoring reports in storage (``report`` table): written by the jobs, read by CLI and bot.

A report body is the JSON of the monitoring result plus a ``text`` for people, so that
``churnguard drift``, /drift and the alert all say the same thing.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy import desc
from sqlmodel import col, select

from model.monitoring.drift import DriftReport
from storage.db import Database
from storage.tables import Report, utcnow

DRIFT, PERFORMANCE, RETRAIN = "drift", "performance", "retrain"


def store_report(
    db: Database, kind: str, body: dict[str, Any], *, model_version: str | None = None, batch_id: int | None = None
) -> int:
    with db.session() as session:
        row = Report(kind=kind, created_at=utcnow(), model_version=model_version, batch_id=batch_id, body=body)
        session.add(row)
        session.flush()
        assert row.id is not None
        return row.id


def latest_report(
    db: Database, kind: str, *, batch_id: int | None = None, model_version: str | None = None
) -> Report | None:
    with db.session() as session:
        query = select(Report).where(Report.kind == kind)
        if batch_id is not None:
            query = query.where(Report.batch_id == batch_id)
        if model_version is not None:
            query = query.where(Report.model_version == model_version)
        return session.exec(query.order_by(desc(col(Report.id)))).first()


def reports(db: Database, kind: str, *, limit: int = 50) -> list[Report]:
    """Newest first."""
    with db.session() as session:
        query = select(Report).where(Report.kind == kind).order_by(desc(col(Report.id))).limit(limit)
        return list(session.exec(query).all())


@dataclass(frozen=True)
class DriftView:
    """The latest drift report for /drift: text, the restored report, and its chart on demand."""

    report_id: int
    created_at: Any
    model_version: str | None
    batch_id: int | None
    text: str
    report: DriftReport | None

    def chart_png(self, top_k: int = 6) -> bytes | None:
        """Reference vs current histograms of the most drifted features (None without features)."""
        if self.report is None or not self.report.features:
            return None
        from model.monitoring.charts import drift_chart

        return drift_chart(self.report, top_k=top_k)


def latest_drift(db: Database) -> DriftView | None:
    """None until the drift job has run once."""
    row = latest_report(db, DRIFT)
    if row is None:
        return None
    assert row.id is not None
    body = row.body
    restored = DriftReport.from_dict(body) if body.get("verdict") and body.get("features") is not None else None
    return DriftView(row.id, row.created_at, row.model_version, row.batch_id, str(body.get("text", "")), restored)


__all__ = ["DRIFT", "PERFORMANCE", "RETRAIN", "DriftView", "latest_drift", "latest_report", "reports", "store_report"]
