"""The relational schema.

Client attributes are stored as one JSON document per record because every CRM brings its
own columns; the columns ChurnGuard itself queries on (client id, batch, label, latest flag)
are real, indexed columns.  Event tables (subscriptions, purchases, tickets, usage) are
separate narrow tables keyed by client id and timestamp so that point-in-time features can
be aggregated inside the database (see ``storage/events``).
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from pydantic import NaiveDatetime
from sqlalchemy import JSON, Column, Index, Text
from sqlmodel import Field, SQLModel

# 2: model folders are stored relative to the models folder (migration relative_model_dirs);
# release 0.1.0, which reads them as absolute paths, refuses such a store instead of finding no model.
# 3: client records carry their as-of date (migration client_as_of_dates).
SCHEMA_VERSION = 3


def utcnow() -> datetime:
    """Naive UTC: SQLite has no time zones, so every timestamp is stored as naive UTC.

    Fields are annotated ``NaiveDatetime`` because SQLModel >= 0.0.50 maps plain ``datetime``
    to a timezone-aware column type that refuses naive values."""
    return datetime.now(UTC).replace(tzinfo=None)


def _json() -> Any:
    return Field(default_factory=dict, sa_column=Column(JSON, nullable=False))


class Meta(SQLModel, table=True):
    """Key/value facts about the store itself, such as the schema version."""

    __tablename__ = "meta"
    key: str = Field(primary_key=True, max_length=64)
    value: str = Field(sa_column=Column(Text, nullable=False))


class DatasetSchema(SQLModel, table=True):
    """The schema of the first ingested batch, remembered so later commands need no flags."""

    __tablename__ = "dataset_schema"
    id: int | None = Field(default=None, primary_key=True)
    id_column: str
    label_column: str
    positive_label: str
    ignore_columns: list[str] = Field(default_factory=list, sa_column=Column(JSON, nullable=False))
    created_at: NaiveDatetime = Field(default_factory=utcnow)
    first_batch_id: int | None = None
    # The column holding each row's as-of date ("" = none named yet: rows are dated by
    # ``ingest --as-of`` or the ingest time).  Not a feature: it is never stored in ``data``.
    as_of_column: str = Field(default="", sa_column_kwargs={"server_default": ""})


class Batch(SQLModel, table=True):
    """One ingested file (or SQL pull): what came in, when, and what it looked like."""

    __tablename__ = "batch"
    id: int | None = Field(default=None, primary_key=True)
    source_name: str
    kind: str = Field(default="clients", index=True)
    received_at: NaiveDatetime = Field(default_factory=utcnow, index=True)
    row_count: int
    sha256: str = Field(index=True, unique=True, max_length=64)
    columns: dict[str, Any] = _json()
    labelled: bool = False
    positives: int | None = None
    status: str = Field(default="stored")
    warnings: list[dict[str, Any]] = Field(default_factory=list, sa_column=Column(JSON, nullable=False))
    # Columns its records took over from earlier records (``storage.ingest.carry_forward``):
    # ``columns`` says what the batch itself brought, this what its records hold besides.
    carried_columns: list[str] = Field(
        default_factory=list, sa_column=Column(JSON, nullable=False, server_default="[]"))


class ClientRecord(SQLModel, table=True):
    """One client as one batch described it at one date.

    ``as_of`` is the date the record's features describe (a label means "left within the
    churn horizon after it"); ``observed_at`` is when the record was stored.  ``is_latest``
    marks the current record: the one with the newest ``as_of`` (ties: the newest record).
    Older ones stay as history for training and for realised-recall monitoring.

    The ``(as_of, client_id)`` index leads with the date because snapshot frames read one
    date at a time (``storage.snapshots``); the pair lookups of ingestion use both columns,
    and per-client look-ups have ``client_id``'s own index."""

    __tablename__ = "client_record"
    __table_args__ = (
        Index("ix_client_record_client_latest", "client_id", "is_latest"),
        Index("ix_client_record_as_of_client", "as_of", "client_id"),
    )
    id: int | None = Field(default=None, primary_key=True)
    client_id: str = Field(index=True, max_length=200)
    batch_id: int = Field(foreign_key="batch.id", index=True)
    observed_at: NaiveDatetime = Field(default_factory=utcnow)
    as_of: NaiveDatetime
    is_latest: bool = Field(default=True)
    label: int | None = None
    data: dict[str, Any] = _json()


class ChurnList(SQLModel, table=True):
    """One ingested churn list (``ingest --kind churns``) and the date up to which it is
    complete: its ``--as-of`` date, else the time it was ingested.  A client the lists do not
    name stayed up to the newest such date."""

    __tablename__ = "churn_list"
    batch_id: int = Field(foreign_key="batch.id", primary_key=True)
    complete_until: NaiveDatetime


class ClientChurn(SQLModel, table=True):
    """When a client left, from a churn list: one date per client (a later list's date
    replaces an earlier one, as a correction).  Labels of any as-of date follow from it
    (``storage.churns``)."""

    __tablename__ = "client_churn"
    id: int | None = Field(default=None, primary_key=True)
    client_id: str = Field(index=True, unique=True, max_length=200)
    churn_at: NaiveDatetime
    batch_id: int = Field(foreign_key="batch.id", index=True)


class ModelVersion(SQLModel, table=True):
    """A trained model.  Artifacts on disk are immutable; this row points at them.

    ``artifact_dir`` is the version's folder relative to ``<CHURNGUARD_HOME>/models`` (its
    name), so a store can move; see ``model.registry.artifact_path``."""

    __tablename__ = "model_version"
    id: int | None = Field(default=None, primary_key=True)
    version: str = Field(index=True, unique=True, max_length=32)
    created_at: NaiveDatetime = Field(default_factory=utcnow)
    status: str = Field(default="candidate", index=True)  # candidate | champion | retired | rejected
    artifact_dir: str
    sha256: str = Field(max_length=64)
    threshold: float
    seed: int
    train_rows: int
    batch_ids: list[int] = Field(default_factory=list, sa_column=Column(JSON, nullable=False))
    metrics: dict[str, Any] = _json()
    reasons: list[str] = Field(default_factory=list, sa_column=Column(JSON, nullable=False))
    training_seconds: float = 0.0


class ChampionEvent(SQLModel, table=True):
    """History of the champion pointer; the newest row names the serving model."""

    __tablename__ = "champion_event"
    id: int | None = Field(default=None, primary_key=True)
    at: NaiveDatetime = Field(default_factory=utcnow, index=True)
    version: str = Field(max_length=32)
    previous_version: str | None = Field(default=None, max_length=32)
    action: str  # promote | rollback | fallback
    actor: str = "system"


class Prediction(SQLModel, table=True):
    """A score given to a client, with the model version that gave it."""

    __tablename__ = "prediction"
    __table_args__ = (Index("ix_prediction_client_time", "client_id", "scored_at"),)
    id: int | None = Field(default=None, primary_key=True)
    client_id: str = Field(max_length=200)
    model_version: str = Field(index=True, max_length=32)
    probability: float
    flagged: bool
    risk_band: str
    scored_at: NaiveDatetime = Field(default_factory=utcnow)
    record_id: int | None = None
    run_id: str | None = Field(default=None, index=True, max_length=64)


class ShadowPrediction(SQLModel, table=True):
    """A score the shadow challenger gave a client beside the champion (``jobs/shadow.py``).

    A table of its own, not rows of ``prediction``: that table is the record of what the team
    was shown, and nothing that shows scores (/score, /top, exports, campaigns) reads this one.
    ``champion_version`` is the champion that scored the same arrival."""

    __tablename__ = "shadow_prediction"
    __table_args__ = (Index("ix_shadow_prediction_client_time", "client_id", "scored_at"),)
    id: int | None = Field(default=None, primary_key=True)
    client_id: str = Field(max_length=200)
    model_version: str = Field(index=True, max_length=32)
    champion_version: str = Field(max_length=32)
    probability: float
    flagged: bool
    risk_band: str
    scored_at: NaiveDatetime = Field(default_factory=utcnow)
    record_id: int | None = None
    run_id: str | None = Field(default=None, index=True, max_length=64)


class Alert(SQLModel, table=True):
    """An alert raised by a job; ``fingerprint`` identifies the condition for the cooldown."""

    __tablename__ = "alert"
    id: int | None = Field(default=None, primary_key=True)
    created_at: NaiveDatetime = Field(default_factory=utcnow, index=True)
    kind: str = Field(index=True)  # drift | recall | early_warning | ingest_rejected | job_failed
    severity: str  # info | warning | critical
    fingerprint: str = Field(index=True, max_length=200)
    message: str = Field(sa_column=Column(Text, nullable=False))
    figures: dict[str, Any] = _json()
    delivered: int = 0
    sent_at: NaiveDatetime | None = None  # None: not handed to a notifier yet (e.g. raised by the CLI)


class Subscriber(SQLModel, table=True):
    """A chat that asked for alerts."""

    __tablename__ = "subscriber"
    chat_id: int = Field(primary_key=True)
    user_id: int | None = None
    subscribed_at: NaiveDatetime = Field(default_factory=utcnow)
    active: bool = True


class AuditLog(SQLModel, table=True):
    """Who did what, when, and how it ended."""

    __tablename__ = "audit_log"
    id: int | None = Field(default=None, primary_key=True)
    at: NaiveDatetime = Field(default_factory=utcnow, index=True)
    actor: str = Field(max_length=64)
    action: str = Field(max_length=64)
    detail: str = Field(default="", sa_column=Column(Text, nullable=False))
    result: str = Field(default="ok", max_length=64)


class JobRun(SQLModel, table=True):
    """One execution of a scheduled job."""

    __tablename__ = "job_run"
    id: int | None = Field(default=None, primary_key=True)
    job: str = Field(index=True, max_length=64)
    started_at: NaiveDatetime = Field(default_factory=utcnow, index=True)
    finished_at: NaiveDatetime | None = None
    outcome: str = "running"  # running | ok | failed | skipped | cancelled
    error: str | None = Field(default=None, sa_column=Column(Text, nullable=True))
    details: dict[str, Any] = _json()


class OwedJob(SQLModel, table=True):
    """A job another job asked for (a follow-up) that has not finished yet.

    Written before it runs and deleted when it has run, so a follow-up that a shutdown
    cancelled, or never let start, is still here at the next start, which runs it once.
    ``host``/``pid``/``token`` name the process that owes it (see ``jobs/owed.py``).
    """

    __tablename__ = "owed_job"
    id: int | None = Field(default=None, primary_key=True)
    job: str = Field(max_length=64)
    trigger: str = Field(max_length=64)
    params: dict[str, Any] = _json()
    created_at: NaiveDatetime = Field(default_factory=utcnow)
    origin_run_id: int | None = None
    host: str = Field(default="", max_length=255)
    pid: int = 0
    token: str = Field(default="", max_length=64)


class Report(SQLModel, table=True):
    """A stored monitoring report (drift, performance), newest first by time."""

    __tablename__ = "report"
    id: int | None = Field(default=None, primary_key=True)
    kind: str = Field(index=True, max_length=32)
    created_at: NaiveDatetime = Field(default_factory=utcnow, index=True)
    model_version: str | None = Field(default=None, max_length=32)
    batch_id: int | None = None
    body: dict[str, Any] = _json()
