"""What became of a campaign's members: one small interface, one reader per kind of store.

A member's outcome is "left within the churn horizon after the campaign's as-of date":
1 left, 0 stayed, None not known yet (pending).  The campaign report reads outcomes only
through ``OutcomeReader``, so where outcomes come from is a local matter of the reader:

* ``EventOutcomeReader``: the event history (storage/events/labels.py ``labels_as_of``),
  which knows churn dates; it refuses a date whose horizon runs past the end of the event
  data, and the members are then all pending.
* ``FlatOutcomeReader``: flat CRM exports, which carry no dates in today's store.  The
  outcome is the label of the client's first labelled record from a batch stored after the
  campaign was created (a later labelled export, or an outcomes-only file of ids and
  labels).  The *first* such record, not the newest: in a monthly stream each later export
  labels a later month, and only the first one after the campaign is about the campaign's
  period.  When client records carry their own as-of dates this reader becomes "the record
  of the campaign's as-of date", a change inside this class.

``churn_days`` serves the chart of churn over time: for each member that left, about how
many days after the as-of date it was seen to have left.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Protocol

from sqlalchemy import select

from storage.clients import CLIENTS
from storage.db import Database
from storage.errors import UserError
from storage.tables import Batch, ClientRecord

_IN_CHUNK = 1_000
CHART_STEPS = 12


class OutcomeReader(Protocol):
    """Outcomes of clients at an as-of date and horizon (see the module docstring)."""

    def outcomes(self, client_ids: Sequence[str], as_of: datetime, horizon_days: int) -> dict[str, int | None]:
        """1 left within the horizon, 0 stayed, None not known yet; one entry per id."""
        ...

    def churn_days(self, client_ids: Sequence[str], as_of: datetime, horizon_days: int) -> dict[str, float]:
        """For the clients that left: days after ``as_of`` by which they were seen to have left."""
        ...


class FlatOutcomeReader:
    """Outcomes from labelled client records of batches newer than ``after_batch_id``."""

    def __init__(self, db: Database, after_batch_id: int) -> None:
        self.db = db
        self.after_batch_id = int(after_batch_id)

    def _first_labels(self, client_ids: Sequence[str]) -> dict[str, tuple[int, datetime]]:
        records, batches = ClientRecord.__table__, Batch.__table__  # type: ignore[attr-defined]
        query = (select(records.c.client_id, records.c.label, batches.c.received_at)
                 .join(batches, batches.c.id == records.c.batch_id)
                 .where(records.c.batch_id > self.after_batch_id, records.c.label.is_not(None),
                        batches.c.kind == CLIENTS))
        found: dict[str, tuple[int, datetime]] = {}
        wanted = list(dict.fromkeys(str(i) for i in client_ids))
        with self.db.read_session() as session:
            connection = session.connection()
            for start in range(0, len(wanted), _IN_CHUNK):
                chunk = wanted[start:start + _IN_CHUNK]
                rows = connection.execute(query.where(records.c.client_id.in_(chunk))
                                          .order_by(records.c.batch_id, records.c.id))
                for client_id, label, received_at in rows:
                    found.setdefault(str(client_id), (int(label), received_at))
        return found

    def outcomes(self, client_ids: Sequence[str], as_of: datetime, horizon_days: int) -> dict[str, int | None]:
        labels = self._first_labels(client_ids)
        return {str(i): (labels[str(i)][0] if str(i) in labels else None) for i in client_ids}

    def churn_days(self, client_ids: Sequence[str], as_of: datetime, horizon_days: int) -> dict[str, float]:
        labels = self._first_labels(client_ids)
        return {client: max((seen - as_of) / timedelta(days=1), 0.0)
                for client, (label, seen) in labels.items() if label == 1}


class EventOutcomeReader:
    """Outcomes from the event history: churn within the horizon after the as-of date."""

    def __init__(self, db: Database) -> None:
        self.db = db

    def outcomes(self, client_ids: Sequence[str], as_of: datetime, horizon_days: int) -> dict[str, int | None]:
        from storage.events.labels import labels_as_of

        ids = [str(i) for i in client_ids]
        if not ids:
            return {}
        try:
            labels = labels_as_of(self.db, as_of, horizon_days=horizon_days, client_ids=ids)
        except UserError:  # the horizon runs past the end of the event data: not known yet
            return dict.fromkeys(ids)
        return {client: int(labels[client]) for client in ids}

    def churn_days(self, client_ids: Sequence[str], as_of: datetime, horizon_days: int) -> dict[str, float]:
        from storage.events.labels import data_end, labels_as_of

        ids = [str(i) for i in client_ids]
        end = data_end(self.db)
        if not ids or end is None:
            return {}
        known_days = min(float(horizon_days), (end - as_of) / timedelta(days=1))
        days: dict[str, float] = {}
        for step in range(1, CHART_STEPS + 1):
            horizon = max(1, round(known_days * step / CHART_STEPS))
            if horizon > known_days:
                break
            labels = labels_as_of(self.db, as_of, horizon_days=horizon, client_ids=ids, known_until=end)
            for client in labels.index[labels.to_numpy() == 1]:
                days.setdefault(str(client), float(horizon))
        return days


__all__ = ["CHART_STEPS", "EventOutcomeReader", "FlatOutcomeReader", "OutcomeReader"]
