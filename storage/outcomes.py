"""What became of a campaign's members: one small interface, one reader per kind of store.

A member's outcome is "left within the churn horizon after the campaign's as-of date":
1 left, 0 stayed, None not known yet (pending).  The campaign report reads outcomes only
through ``OutcomeReader``, so where outcomes come from is a local matter of the reader:

* ``EventOutcomeReader``: the event history (storage/events/labels.py ``labels_as_of``),
  which knows churn dates; it refuses a date whose horizon runs past the end of the event
  data, and the members are then all pending.
* ``FlatOutcomeReader``: flat CRM exports.  The outcome is the label, arrived after the
  campaign, of the member's record of the campaign's as-of date (from a later outcomes file
  or a churn list): a record's label is "left within the horizon after its date", which is the
  campaign's question exactly, and a later month's export, which labels a later month, never
  answers it.

``churn_days`` serves the chart of churn over time: for each member that left, about how
many days after the as-of date it was seen to have left.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any, Protocol

from sqlalchemy import func, select

from storage.churns import derived_label
from storage.db import Database
from storage.errors import UserError
from storage.tables import ChurnList, ClientChurn, ClientRecord

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
    """Outcomes from client records: the label of each member's record of the campaign's date
    (its newest record dated at or before it) that arrived *after* the campaign was made.

    A record's label means "left within the horizon after its as-of date", the campaign's
    question exactly; it comes from a later file for that date (an outcomes file of ids and
    labels, or the month's export re-sent with labels) or from a churn list.  Only what arrived
    after the campaign counts (batches after ``after_batch_id``): a label the store already
    held when the campaign was made could not have been changed by it, and a later month's
    export, which labels a later month, never answers it."""

    def __init__(self, db: Database, after_batch_id: int) -> None:
        self.db = db
        self.after_batch_id = int(after_batch_id)

    def outcomes(self, client_ids: Sequence[str], as_of: datetime, horizon_days: int) -> dict[str, int | None]:
        ids = list(dict.fromkeys(str(i) for i in client_ids))
        found: dict[str, int | None] = dict.fromkeys(ids)
        records = ClientRecord.__table__  # type: ignore[attr-defined]
        churns, lists = ClientChurn.__table__, ChurnList.__table__  # type: ignore[attr-defined]
        dated = (select(records.c.client_id, func.max(records.c.as_of).label("as_of"))
                 .where(records.c.as_of <= as_of).group_by(records.c.client_id))
        with self.db.read_session() as session:
            connection = session.connection()
            complete = connection.execute(select(func.max(lists.c.complete_until))
                                          .where(lists.c.batch_id > self.after_batch_id)).scalar()
            for start in range(0, len(ids), _IN_CHUNK):
                chunk = ids[start:start + _IN_CHUNK]
                dates = {str(c): d for c, d in connection.execute(dated.where(records.c.client_id.in_(chunk)))}
                # the newest label that arrived after the campaign, on each member's record of its date
                labels = (select(records.c.client_id, records.c.as_of, records.c.label)
                          .where(records.c.client_id.in_(chunk), records.c.label.is_not(None),
                                 records.c.batch_id > self.after_batch_id)
                          .order_by(records.c.id))
                for client, date, label in connection.execute(labels):
                    if dates.get(str(client)) == date:
                        found[str(client)] = int(label)
                listed = (select(churns.c.client_id, churns.c.churn_at)
                          .where(churns.c.client_id.in_(chunk), churns.c.batch_id > self.after_batch_id))
                for client, churn_at in connection.execute(listed):
                    date = dates.get(str(client))
                    if date is not None and found[str(client)] is None:
                        found[str(client)] = derived_label(date, churn_at, complete=complete, horizon_days=horizon_days)
            if complete is not None:  # lists complete past the horizon: the members they do not name stayed
                for client, date in self._dates(connection, [c for c, v in found.items() if v is None], as_of).items():
                    found[client] = derived_label(date, None, complete=complete, horizon_days=horizon_days)
        return found

    def _dates(self, connection: Any, ids: Sequence[str], as_of: datetime) -> dict[str, datetime]:
        records = ClientRecord.__table__  # type: ignore[attr-defined]
        dated = (select(records.c.client_id, func.max(records.c.as_of))
                 .where(records.c.as_of <= as_of).group_by(records.c.client_id))
        out: dict[str, datetime] = {}
        for start in range(0, len(ids), _IN_CHUNK):
            chunk = list(ids[start:start + _IN_CHUNK])
            out.update({str(c): d for c, d in connection.execute(dated.where(records.c.client_id.in_(chunk)))})
        return out

    def churn_days(self, client_ids: Sequence[str], as_of: datetime, horizon_days: int) -> dict[str, float]:
        """Days after ``as_of`` a member left: its churn date when a churn list gives one, else
        the end of the horizon (a label says "within the horizon", not when)."""
        left = [client for client, label in self.outcomes(client_ids, as_of, horizon_days).items() if label == 1]
        churns = ClientChurn.__table__  # type: ignore[attr-defined]
        dates: dict[str, datetime] = {}
        with self.db.read_session() as session:
            connection = session.connection()
            for start in range(0, len(left), _IN_CHUNK):
                chunk = left[start:start + _IN_CHUNK]
                dates.update({str(c): at for c, at in connection.execute(
                    select(churns.c.client_id, churns.c.churn_at).where(churns.c.client_id.in_(chunk)))})
        days: dict[str, float] = {}
        for client in left:
            churn_at = dates.get(client)
            after = (churn_at - as_of) / timedelta(days=1) if churn_at is not None else None
            days[client] = min(after, float(horizon_days)) if after is not None and after > 0 else float(horizon_days)
        return days


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
