"""Every job run leaves a row in ``job_run``: when it started and ended, how, and why not.

The rows are also the scheduler's memory: the last start time of each job is what tells a
restarted service whether a schedule slot was missed while it was down.  A run is written
in its own short transaction when it starts, so that a crash mid-run still leaves a
"running" row that the next start turns into "failed (interrupted)".  A run that the
service's shutdown stopped (SIGTERM during a retrain) ends as "cancelled".

A row names the process that runs it by host, pid and a random token of the process: a
restarted container gets the same pid again (often 1), and only the token tells the new
process from the one that died.
"""

from __future__ import annotations

import os
import socket
import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import desc, func
from sqlmodel import col, select

from storage.db import Database
from storage.redact import redact, redact_values
from storage.tables import JobRun, utcnow

OUTCOMES = ("running", "ok", "failed", "skipped", "cancelled")
_HOST = socket.gethostname()
PROCESS_TOKEN = uuid.uuid4().hex  # this process, as opposed to an earlier one that had its pid


def process_identity() -> dict[str, Any]:
    """What a row records about the process that owns it (see :func:`owner_gone`)."""
    return {"pid": os.getpid(), "host": _HOST, "token": PROCESS_TOKEN}


def owner_gone(host: object, pid: object, token: object) -> bool:
    """True when the process that wrote a row on this host is certainly gone.

    Another host's process may well be alive: False.  Our own pid with another token is an
    earlier process that had the same pid (a restarted container), so it is gone."""
    if host != _HOST or not isinstance(pid, int):
        return False
    if pid == os.getpid():
        return token != PROCESS_TOKEN
    return not _alive(pid)


@dataclass(frozen=True)
class RunView:
    """A job run as the command line and the bot show it."""

    id: int
    job: str
    started_at: datetime
    finished_at: datetime | None
    outcome: str
    error: str | None
    details: dict[str, Any]

    @property
    def seconds(self) -> float | None:
        if self.finished_at is None:
            return None
        return round((self.finished_at - self.started_at).total_seconds(), 3)

    def as_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "job": self.job,
            "started_at": self.started_at.isoformat(),
            "finished_at": None if self.finished_at is None else self.finished_at.isoformat(),
            "seconds": self.seconds,
            "outcome": self.outcome,
            "error": self.error,
            "details": self.details,
        }


def _view(row: JobRun) -> RunView:
    assert row.id is not None
    return RunView(row.id, row.job, row.started_at, row.finished_at, row.outcome, row.error, dict(row.details))


def start_run(db: Database, job: str, *, trigger: str, details: dict[str, Any] | None = None) -> int:
    """Write the "running" row and return its id."""
    info = {"trigger": trigger, **process_identity(), **(details or {})}
    with db.session() as session:
        row = JobRun(job=job, started_at=utcnow(), outcome="running", details=info)
        session.add(row)
        session.flush()
        assert row.id is not None
        return row.id


def finish_run(
    db: Database, run_id: int, outcome: str, *, error: str | None = None, details: dict[str, Any] | None = None
) -> RunView:
    """Close a run with its outcome; ``details`` are merged into the ones written at start."""
    if outcome not in OUTCOMES or outcome == "running":
        raise ValueError(f"a finished run's outcome is ok, failed, skipped or cancelled, not {outcome!r}")
    with db.session() as session:
        row = session.get(JobRun, run_id)
        if row is None:
            raise LookupError(f"job run {run_id} does not exist")
        row.finished_at = utcnow()
        row.outcome = outcome
        row.error = None if error is None else redact(error)  # error texts may quote a secret
        row.details = {**row.details, **redact_values(details or {})}
        session.add(row)
        session.flush()
        return _view(row)


def get_run(db: Database, run_id: int) -> RunView | None:
    with db.session() as session:
        row = session.get(JobRun, run_id)
        return None if row is None else _view(row)


def last_runs(db: Database) -> dict[str, RunView]:
    """The newest run of each job, by start time."""
    with db.session() as session:
        newest = (
            select(JobRun.job, func.max(JobRun.id).label("id"))  # ids grow with start time
            .group_by(JobRun.job)
            .subquery()
        )
        rows = session.exec(select(JobRun).join(newest, col(JobRun.id) == newest.c.id)).all()
        return {row.job: _view(row) for row in rows}


def last_success(db: Database, job: str) -> RunView | None:
    with db.session() as session:
        row = session.exec(
            select(JobRun).where(JobRun.job == job, JobRun.outcome == "ok").order_by(desc(col(JobRun.id)))
        ).first()
        return None if row is None else _view(row)


def recent_runs(db: Database, *, job: str | None = None, limit: int = 20) -> list[RunView]:
    with db.session() as session:
        query = select(JobRun).order_by(desc(col(JobRun.id))).limit(limit)
        if job is not None:
            query = query.where(JobRun.job == job)
        return [_view(row) for row in session.exec(query).all()]


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def close_interrupted(db: Database) -> list[int]:
    """Mark "running" rows whose process on this host is gone as failed; returns their ids.

    A service killed mid-job (power cut, OOM, kill -9) never wrote the end of its run.  Rows
    from other hosts are left alone: their process may well be alive.
    """
    closed = []
    with db.session() as session:
        rows = session.exec(select(JobRun).where(JobRun.outcome == "running")).all()
        for row in rows:
            details = row.details
            if not owner_gone(details.get("host"), details.get("pid"), details.get("token")):
                continue  # still running (here, or in another live process)
            row.outcome = "failed"
            row.finished_at = utcnow()
            row.error = "interrupted: the process running this job stopped before it finished"
            session.add(row)
            assert row.id is not None
            closed.append(row.id)
    return closed


__all__ = [
    "OUTCOMES",
    "PROCESS_TOKEN",
    "RunView",
    "close_interrupted",
    "finish_run",
    "get_run",
    "last_runs",
    "last_success",
    "owner_gone",
    "process_identity",
    "recent_runs",
    "start_run",
]
