"""Ingest job: take new CRM exports from the inbox folder (and, optionally, a SQL query).

Each file goes through exactly the validation of ``churnguard ingest`` (``storage.ingest``),
oldest name first (natural order, so month_2 comes before month_10).  A stored file moves
to ``processed/``; a refused one to ``rejected/`` with ``<name>.error.txt`` beside it, and
admins get an ``ingest_rejected`` alert.  Nothing of a refused file is stored.  A file
whose bytes were stored before moves to ``processed/`` too: re-sending is harmless.

Files still being written must not be read half-way: names starting with "." or ending in
.part/.tmp/.partial/.crdownload are ignored, and a scheduled run leaves files alone that
changed in the last seconds.  (Writing to a temporary name and renaming is the safe way to
drop a file.)  ``churnguard jobs run ingest`` takes every file at once: the person running
it has finished copying.

After storing, each new batch is scored with the current champion before anything uses its
labels (see ``jobs/data.py``), and the job asks for the drift and performance checks of the
new batches, and for a retrain when a labelled batch arrived and ``CHURNGUARD_RETRAIN_ON``
includes ``new_labels``.  That part is :func:`after_ingest`, the one place these rules live:
batches stored another way (an admin's CSV upload in the bot) get the same through the
``arrival`` job (:func:`run_arrival`), which the bot starts after answering the admin.
"""

from __future__ import annotations

import hashlib
import logging
import os
import re
import time
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from jobs.alerts import AlertDraft
from jobs.data import get_batch, monitored, scorable, score_rows, store_scores
from jobs.runner import FollowUp, JobContext, JobResult
from jobs.shadow import pick_shadow, score_on_arrival
from storage.errors import UserError
from storage.ingest import IngestReport, ingest_file, ingest_frame
from storage.readers import Limits
from storage.schema import schema_from_settings
from storage.tables import Meta, utcnow

PROCESSED, REJECTED = "processed", "rejected"
IGNORED_SUFFIXES = (".part", ".tmp", ".partial", ".crdownload", "~", ".error.txt")
SETTLE_SECONDS = 2.0
SOURCE_WATERMARK = "source_last_pull"
ARRIVAL_JOB = "arrival"
ARRIVAL_TARGET = "jobs.ingest_job:run_arrival"
log = logging.getLogger("churnguard.jobs")


@dataclass
class FileOutcome:
    name: str
    status: str  # stored | duplicate | rejected
    message: str
    batch_id: int | None = None
    moved_to: str | None = None

    def as_dict(self) -> dict[str, Any]:
        return {"file": self.name, "status": self.status, "message": self.message, "batch_id": self.batch_id,
                "moved_to": self.moved_to}


def _natural_key(path: Path) -> list[Any]:
    return [int(part) if part.isdigit() else part.lower() for part in re.split(r"(\d+)", path.name)]


def inbox_files(inbox: Path, *, settle_seconds: float = 0.0, now: float | None = None) -> list[Path]:
    """Files waiting in the inbox, in natural name order; folders and partial files are skipped."""
    if not inbox.is_dir():
        return []
    now = time.time() if now is None else now
    found = []
    for path in inbox.iterdir():
        name = path.name
        if name.startswith(".") or name.endswith(IGNORED_SUFFIXES) or not path.is_file():
            continue
        if settle_seconds > 0 and now - path.stat().st_mtime < settle_seconds:
            continue
        found.append(path)
    return sorted(found, key=_natural_key)


def _free_name(folder: Path, name: str) -> Path:
    target = folder / name
    if not target.exists():
        return target
    stamp = f"{utcnow():%Y%m%dT%H%M%S}"
    for n in range(1, 10_000):
        candidate = folder / f"{stamp}-{n}-{name}"
        if not candidate.exists():
            return candidate
    raise UserError(f"cannot find a free name for {name} in {folder}")


def _sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _reject(path: Path, rejected_dir: Path, error: UserError) -> Path:
    target = _free_name(rejected_dir, path.name)
    os.replace(path, target)
    lines = [
        f"ChurnGuard refused {path.name} at {utcnow():%Y-%m-%d %H:%M:%S} UTC. Nothing of it was stored.",
        "",
        str(error),
    ]
    details = {k: v for k, v in error.details.items() if v not in (None, "", [], {})}
    if details:
        lines += ["", "Details:"] + [f"  {key}: {value}" for key, value in details.items()]
    lines += ["", "Fix the file and drop it into the inbox again."]
    target.with_name(target.name + ".error.txt").write_text("\n".join(lines) + "\n", encoding="utf-8")
    return target


def _rejection_alert(name: str, digest: str, error: UserError, moved_to: Path) -> AlertDraft:
    figures: dict[str, Any] = {"file": name, "sha256": digest, "moved_to": str(moved_to), "error": str(error)}
    figures.update({k: v for k, v in error.details.items() if isinstance(v, str | int | float | bool | list)})
    return AlertDraft(
        kind="ingest_rejected",
        severity="warning",
        condition=digest,
        title=f"Inbox file rejected: {name}",
        text=f"{name} was not stored: {error}\nIt was moved to {moved_to} with {moved_to.name}.error.txt beside it.",
        figures=figures,
        # A chat names the file the admin knows, never where the server keeps it.
        chat_text=f"{name} was not stored: {error.for_chat()}\nIt was moved to the inbox's rejected folder as "
                  f"{moved_to.name}, with {moved_to.name}.error.txt beside it saying why.",
    )


def run(ctx: JobContext) -> JobResult:
    settings, db = ctx.settings, ctx.db
    inbox = Path(settings.inbox_dir)
    processed_dir, rejected_dir = inbox / PROCESSED, inbox / REJECTED
    for folder in (inbox, processed_dir, rejected_dir):
        folder.mkdir(parents=True, exist_ok=True)
    schema, explicit = schema_from_settings(settings)
    limits = Limits.from_settings(settings)
    settle = 0.0 if ctx.trigger == "manual" else SETTLE_SECONDS
    outcomes: list[FileOutcome] = []
    alerts: list[AlertDraft] = []
    new_reports: list[IngestReport] = []

    files = inbox_files(inbox, settle_seconds=settle)
    for number, path in enumerate(files, start=1):
        ctx.progress(f"file {number}/{len(files)}: {path.name}")
        try:
            digest = _sha256_file(path)
            report = ingest_file(db, path, schema=schema, explicit=explicit, limits=limits, source_name=path.name)
        except UserError as error:
            moved = _reject(path, rejected_dir, error)
            outcomes.append(FileOutcome(path.name, "rejected", str(error), moved_to=str(moved)))
            alerts.append(_rejection_alert(path.name, digest, error, moved))
            continue
        except FileNotFoundError:  # taken by someone else between listing and reading
            continue
        moved = _free_name(processed_dir, path.name)
        os.replace(path, moved)
        status = "stored" if report.stored else "duplicate"
        outcomes.append(FileOutcome(path.name, status, report.to_text(), report.batch_id, str(moved)))
        if report.stored:
            new_reports.append(report)

    source = _pull_source(ctx, schema, explicit, limits)
    if source is not None:
        pulled, pulled_report, alert = source
        outcomes.append(pulled)
        if pulled_report is not None and pulled_report.stored:
            new_reports.append(pulled_report)
        if alert is not None:
            alerts.append(alert)

    new_ids = [r.batch_id for r in new_reports]
    arrival = after_ingest(ctx, new_ids)
    scoring = arrival.scoring
    counts = {status: sum(o.status == status for o in outcomes) for status in ("stored", "duplicate", "rejected")}
    if not outcomes:
        summary = f"inbox {inbox} is empty; nothing to ingest"
    else:
        summary = (f"{counts['stored']} batch(es) stored, {counts['duplicate']} already known, "
                   f"{counts['rejected']} rejected")
        if scoring:
            summary += "; " + "; ".join(scoring)
    return JobResult(
        summary=summary,
        outcome="ok",
        details={"inbox": str(inbox), "files": [o.as_dict() for o in outcomes], "new_batch_ids": new_ids,
                 "scoring": scoring},
        alerts=alerts,
        follow_ups=arrival.follow_ups,
    )


@dataclass
class Arrival:
    """What follows the storing of new batches: how their scoring went, and what runs next."""

    batch_ids: list[int]
    scoring: list[str]
    follow_ups: list[FollowUp]


def arrival_follow_ups(db: Any, settings: Any, batch_ids: list[int]) -> list[FollowUp]:
    """The jobs new batches ask for, in this order: drift and performance of those batches,
    then a retrain when one of them is labelled and ``CHURNGUARD_RETRAIN_ON`` has ``new_labels``.

    Whether a batch is labelled is read from the store, so a caller needs only batch ids.
    """
    if not batch_ids:
        return []
    follow_ups = [FollowUp("drift", "new_batch", {"batch_ids": list(batch_ids)}),
                  FollowUp("performance", "new_batch", {"batch_ids": list(batch_ids)})]
    if "new_labels" in settings.retrain_on and any(
            (batch := get_batch(db, batch_id)) is not None and batch.labelled for batch_id in batch_ids):
        follow_ups.append(FollowUp("retrain", "new_labels", {}))
    return follow_ups


def after_ingest(ctx: JobContext, batch_ids: list[int]) -> Arrival:
    """Everything that follows new batches, whoever stored them (inbox, SQL source, bot upload):
    score them with the champion now, before their labels are used, and name the checks to run.

    Batches already known (a file sent twice) are not new: pass only stored batches.
    """
    return Arrival(list(batch_ids), _score_new(ctx, batch_ids), arrival_follow_ups(ctx.db, ctx.settings, batch_ids))


def run_arrival(ctx: JobContext) -> JobResult:
    """The ``arrival`` job: :func:`after_ingest` for batches stored outside the inbox job.

    Params: ``batch_ids`` (the new batches) and optionally ``source`` (who stored them, for
    the run's record).  A bot upload runs it, so its batches are scored, checked for drift
    and performance, and retrained on exactly as if they had come through the inbox.
    """
    batch_ids = [int(b) for b in ctx.params.get("batch_ids") or []]
    if not batch_ids:
        return JobResult("no new batch named: nothing to follow up", outcome="skipped")
    arrival = after_ingest(ctx, batch_ids)
    named = ", ".join(f"#{b}" for b in batch_ids)
    summary = f"new batch(es) {named}" + ("; " + "; ".join(arrival.scoring) if arrival.scoring else "")
    return JobResult(
        summary=summary,
        details={"new_batch_ids": batch_ids, "scoring": arrival.scoring, "source": ctx.params.get("source")},
        follow_ups=arrival.follow_ups,
    )


def _score_new(ctx: JobContext, batch_ids: list[int]) -> list[str]:
    """Score new batches with the champion now, before any of their labels is used."""
    if not batch_ids:
        return []
    inputs = monitored(ctx, nothing="new batches not scored", batch_ids=batch_ids)
    if isinstance(inputs, str):
        return ["no champion yet, new batches not scored"]
    serving = inputs.serving
    notes = []
    try:
        arrived = inputs.source.arrivals(batch_ids)
    except Exception as error:  # the batches are stored; the performance job measures them later
        log.exception("could not read the new batches")
        return [f"new batches not scored yet ({error})"]
    shadow, shadow_note = pick_shadow(ctx, serving)
    if shadow_note is not None:
        notes.append(shadow_note)
    for found in arrived:
        ctx.progress(f"scoring {found.name} with {serving.version}")
        run_id = f"ingest-b{found.batch_id}" if found.batch_id is not None else "ingest"
        try:
            rows = scorable(found, ctx.settings)
            store_scores(ctx.db, rows, score_rows(serving, rows), run_id=run_id)
        except Exception as error:  # the batch is stored; the performance job scores it later
            log.exception("could not score %s", found.name)
            notes.append(f"{found.name} not scored yet ({error})")
            continue
        notes.append(f"{found.name} scored with {serving.version} ({len(rows)} clients)")
        if shadow is not None:
            try:
                notes.append(score_on_arrival(ctx, shadow, rows, like=inputs.source, champion_version=serving.version,
                                              run_id=run_id))
            except Exception as error:  # the champion's scores are kept; the shadow's are only evidence
                log.exception("could not score %s in shadow", found.name)
                notes.append(f"{found.name} not scored in shadow by {shadow.version} ({error})")
    return notes


def _pull_source(
    ctx: JobContext, schema: Any, explicit: set[str], limits: Limits
) -> tuple[FileOutcome, IngestReport | None, AlertDraft | None] | None:
    """New rows from CHURNGUARD_SOURCE_URL + CHURNGUARD_SOURCE_QUERY, when configured.

    A query may use ``:since``, bound to the time of the last successful pull (naive UTC;
    1970-01-01 the first time), to fetch only new rows; without it the whole result is
    pulled and an unchanged result is recognised as already stored.
    """
    settings, db = ctx.settings, ctx.db
    if not settings.source_url:
        return None
    import pandas as pd
    from sqlalchemy import create_engine, text
    from sqlalchemy.engine import make_url

    url = make_url(settings.source_url)
    name = f"sql:{url.render_as_string(hide_password=True)}"
    started = utcnow()
    with db.session() as session:
        mark = session.get(Meta, SOURCE_WATERMARK)
        since = datetime.fromisoformat(mark.value) if mark is not None else datetime(1970, 1, 1)
    query = text(settings.source_query)
    params = {"since": since} if ":since" in settings.source_query else {}
    ctx.progress("pulling rows from the SQL source")
    engine = create_engine(settings.source_url)
    try:
        with engine.connect() as connection:
            frame = pd.read_sql(query, connection, params=params)
    except Exception as error:  # an unreachable source or a bad query is the admin's to fix
        problem = f"the SQL source could not be read: {str(error).splitlines()[0]}"
        alert = AlertDraft("ingest_rejected", "warning", "sql:" + hashlib.sha256(problem.encode()).hexdigest(),
                           "SQL source could not be read", f"{name}: {problem}", {"source": name, "error": problem})
        return FileOutcome(name, "rejected", problem), None, alert
    finally:
        engine.dispose()
    if frame.empty:
        _remember_pull(db, started)
        return FileOutcome(name, "duplicate", "the SQL source has no new rows"), None, None
    try:
        report = ingest_frame(db, frame, schema=schema, explicit=explicit, limits=limits, source_name=name)
    except UserError as error:
        digest = hashlib.sha256(frame.to_csv(index=False).encode()).hexdigest()
        alert = AlertDraft("ingest_rejected", "warning", "sql:" + digest, "SQL source rows rejected",
                           f"Rows from the SQL source were not stored: {error}", {"source": name, "error": str(error)})
        return FileOutcome(name, "rejected", str(error)), None, alert
    _remember_pull(db, started)
    return FileOutcome(name, "stored" if report.stored else "duplicate", report.to_text(), report.batch_id), \
        report, None


def _remember_pull(db: Any, when: Any) -> None:
    with db.session() as session:
        row = session.get(Meta, SOURCE_WATERMARK)
        if row is None:
            session.add(Meta(key=SOURCE_WATERMARK, value=when.isoformat()))
        else:
            row.value = when.isoformat()
            session.add(row)
