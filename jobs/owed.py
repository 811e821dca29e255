"""Follow-ups owed: jobs that another job (or an upload) asked for, kept in the store until they ran.

An upload or an inbox file asks for scoring, then drift, performance and perhaps a retrain
on the new batches; they run one after the other in the background, after the admin has
had the reply.  A shutdown must not lose them: SIGTERM cancels a running retrain within
seconds and starts nothing new, and ``kill -9`` stops everything at once.  So each of them is
written to ``owed_job`` before it runs, and its row is deleted once it has run, in the same
transaction that writes the follow-ups it asks for in turn.  At the next start the service
takes the rows whose process is gone and runs each once (``JobScheduler.start``).

This is at-least-once: a process killed between a job's end and the deletion of its row runs
it again at the next start.  The jobs bear that: a retrain with nothing new to learn skips,
a drift or performance check of the same batch reports the same again.

Rows name their process (host, pid, token; see ``jobs.runs.owner_gone``), so a start never
takes the follow-ups of a ``churnguard jobs run`` that is still working in a shell.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlmodel import col, select

from jobs.runs import owner_gone, process_identity
from storage.db import Database
from storage.tables import OwedJob, utcnow

Step = tuple[str, str, Mapping[str, Any]]  # job, trigger, params


@dataclass(frozen=True)
class Owed:
    """One owed job as the runner, ``jobs list`` and the tests see it."""

    id: int
    job: str
    trigger: str
    params: dict[str, Any]
    created_at: datetime
    origin_run_id: int | None

    def as_dict(self) -> dict[str, Any]:
        return {"id": self.id, "job": self.job, "trigger": self.trigger, "params": self.params,
                "created_at": self.created_at.isoformat(), "origin_run_id": self.origin_run_id}


def _view(row: OwedJob) -> Owed:
    assert row.id is not None
    return Owed(row.id, row.job, row.trigger, dict(row.params), row.created_at, row.origin_run_id)


def _rows(steps: Iterable[Step], origin_run_id: int | None) -> list[OwedJob]:
    me = process_identity()
    return [OwedJob(job=job, trigger=trigger, params=dict(params), created_at=utcnow(), origin_run_id=origin_run_id,
                    host=str(me["host"])[:255], pid=int(me["pid"]), token=str(me["token"]))
            for job, trigger, params in steps]


def owe(db: Database, steps: Iterable[Step], *, origin_run_id: int | None = None) -> list[int]:
    """Record jobs this process is about to run; returns their ids, in order."""
    return settle(db, None, steps, origin_run_id=origin_run_id)


def settle(db: Database, done: int | None, follow_ups: Iterable[Step], *, origin_run_id: int | None = None
           ) -> list[int]:
    """In one transaction: forget the owed job ``done`` (it ran) and owe its ``follow_ups``;
    returns the new ids, in order."""
    with db.session() as session:
        if done is not None:
            row = session.get(OwedJob, done)
            if row is not None:
                session.delete(row)
        rows = _rows(follow_ups, origin_run_id)
        session.add_all(rows)
        session.flush()
        return [int(row.id) for row in rows if row.id is not None]


def owed_jobs(db: Database) -> list[Owed]:
    """Every owed job, oldest first (``churnguard jobs list`` shows them)."""
    with db.read_session() as session:
        return [_view(row) for row in session.exec(select(OwedJob).order_by(col(OwedJob.id))).all()]


def claim_orphaned(db: Database) -> list[Owed]:
    """Take over the owed jobs of processes that are gone (a stopped or killed service, an
    interrupted ``jobs run``), oldest first, each distinct job once: a second copy of the same
    job with the same trigger and parameters is deleted, the first one covers it."""
    me = process_identity()
    taken: list[Owed] = []
    with db.session() as session:
        seen: set[tuple[str, str, str]] = set()
        for row in session.exec(select(OwedJob).order_by(col(OwedJob.id))).all():
            if not owner_gone(row.host, row.pid, row.token):
                continue
            key = (row.job, row.trigger, json.dumps(row.params, sort_keys=True, default=str))
            if key in seen:
                session.delete(row)
                continue
            seen.add(key)
            row.host, row.pid, row.token = str(me["host"])[:255], int(me["pid"]), str(me["token"])
            session.add(row)
            taken.append(_view(row))
    return taken


__all__ = ["Owed", "claim_orphaned", "owe", "owed_jobs", "settle"]
