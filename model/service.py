"""Train-and-register, and the shared ways to open a registry and a scorer.

The command line, the bot and the retraining job all train through
:func:`train_and_register`, so a model trained from any of them passes the same gate and
lands in the registry the same way.  It takes plain values (the ``Settings`` object, or
any object with the same fields) and never imports the bot or the jobs.

Failure rules: training runs before anything is written, so an exception there leaves the
store untouched; the artifacts are then written into a staging directory that the registry
removes on any failure, and the version row, its status and (if the gate passed) the
champion switch commit in one transaction.

Training and registering are two steps, :func:`train_candidate` (reads only) and
:func:`register_candidate` (the registry write, the card, the audit row), so that the service
can train in a worker process and still be the only one that writes the registry.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

import pandas as pd

from model.artifact import ChurnModel
from model.campaigns.evidence import use_measured_offer
from model.card import CARD_FILE
from model.config import TrainConfig
from model.data_checks import review
from model.registry import NewVersion, NoChampion, Registry, VersionInfo
from model.scoring import Scorer
from model.sources import EVENTS, SourceConfig, model_source_kind, source_for_training, source_kind
from storage.db import Database
from storage.errors import UserError
from storage.schema import Schema, remembered_schema, resolve_schema, schema_from_settings
from storage.tables import AuditLog

if TYPE_CHECKING:
    from model.lifecycle import TrainingOutcome  # imported lazily at run time: optuna is slow to import

log = logging.getLogger(__name__)

REPORT_FILE = "report.json"
Progress = Callable[[str], None]


class ServiceSettings(Protocol):
    """The fields of ``churnguard.Settings`` this module reads."""

    @property
    def models_dir(self) -> Path: ...

    @property
    def no_history_rule(self) -> str: ...

    @property
    def id_column(self) -> str: ...

    @property
    def label_column(self) -> str: ...

    @property
    def positive_label(self) -> str: ...

    @property
    def ignore_columns(self) -> list[str]: ...


def open_registry(db: Database, settings: ServiceSettings) -> Registry[ChurnModel]:
    """The registry of this store; share one per process so its model cache is shared."""
    return Registry(db, settings.models_dir, ChurnModel.load)


def store_schema(db: Database, settings: object) -> Schema | None:
    """The schema to use: the one remembered in storage, checked against explicit settings;
    None before the first ingest."""
    requested, explicit = schema_from_settings(settings)
    with db.session() as session:
        if remembered_schema(session) is None:
            return None
        return resolve_schema(session, requested, explicit)


def open_scorer(db: Database, settings: ServiceSettings, registry: Registry[ChurnModel] | None = None) -> Scorer:
    """A scorer configured from settings: history rule, remembered schema, this store's registry.

    Raises ``UserError`` naming CHURNGUARD_NO_HISTORY_RULE when the rule cannot be parsed.
    """
    config = SourceConfig.from_settings(settings)
    return Scorer(db, registry or open_registry(db, settings), rule=config.history_rule,
                  schema=store_schema(db, settings), config=config)


@dataclass(frozen=True)
class TrainResult:
    """What one training run produced: the version, its status, and the full report."""

    version: str
    status: str
    report: dict[str, Any]
    info: VersionInfo
    reasons: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        report = self.report
        return {
            "version": self.version,
            "status": self.status,
            "threshold": report.get("threshold"),
            "splits": report.get("split"),
            "metrics": report.get("metrics"),
            "baselines": report.get("baselines"),
            "roi": report.get("roi"),
            "validation": report.get("validation"),
            "backtest": report.get("backtest"),
            "signal": report.get("signal"),
            "reasons": self.reasons,
            "gate": report.get("gate"),
            "processing": report.get("processing"),
            "tuning": report.get("tuning"),
            "warnings": report.get("warnings", []),
            "data_checks": report.get("data_checks"),
            "training_seconds": report.get("training_seconds"),
            "artifact_dir": str(self.info.artifact_dir),
            "card": str(self.info.artifact_dir / CARD_FILE),
        }


@dataclass(frozen=True)
class Candidate:
    """A trained model that is not in the registry yet: what :func:`train_candidate` returns and
    :func:`register_candidate` stores.

    Training and registering are split so that a training *process* only trains: it hands this
    object (it pickles) back to the service, and only the live service writes the registry and
    moves the champion pointer.  A worker orphaned by a crash of the service therefore has
    nothing to promote.  ``outcome`` keeps what the model card draws (test labels, scores and
    thresholds) but not the test rows themselves, which the card does not use.
    """

    outcome: TrainingOutcome
    seed: int
    train_rows: int
    batch_ids: list[int]
    training_seconds: float
    champion_compared: str | None = None

    @property
    def report(self) -> dict[str, Any]:
        return self.outcome.report

    @property
    def passed(self) -> bool:
        return bool((self.report.get("gate") or {}).get("passed"))

    @property
    def reasons(self) -> list[str]:
        """Why the gate refused it (empty when it passed)."""
        if self.passed:
            return []
        return [str(reason) for reason in (self.report.get("gate") or {}).get("reasons", [])]


def train_candidate(
    db: Database,
    settings: ServiceSettings,
    *,
    seed: int | None = None,
    progress: Progress | None = None,
    registry: Registry[ChurnModel] | None = None,
    config: TrainConfig | None = None,
    frame: pd.DataFrame | None = None,
    batch_window: Sequence[int] | None = None,
) -> Candidate:
    """Train on the stored labelled rows and run the acceptance gate; write nothing.

    The champion is read (the gate compares with it) but never changed.  Arguments as in
    :func:`train_and_register`."""
    from model.lifecycle import train_lifecycle  # imported here: it pulls in optuna, slow to import

    started = time.monotonic()
    say = progress or (lambda _message: None)
    registry = registry or open_registry(db, settings)
    if config is None:
        config = TrainConfig.from_settings(settings, seed=seed)
    elif seed is not None:
        config = replace(config, seed=seed)
    source_config = SourceConfig.from_settings(settings)
    source = source_for_training(db, source_config)
    leaks = None
    if frame is None:
        data = source.training_data(progress=say, batch_window=batch_window)
        frame, schema, metadata, leaks = data.frame, data.schema, dict(data.metadata), data.leaks
        frame.attrs.setdefault("batch_ids", data.batch_ids)
    else:
        schema, metadata = source.schema, {"source": source.kind}
        if frame.empty:
            raise UserError("no labelled clients in the training window", label_column=schema.label_column)
    champion = _current_champion(registry)
    if champion is not None and model_source_kind(champion.model) != source.kind:
        say("the champion learnt from other data (event history vs client table): no comparison")
        champion = None
    outcome = train_lifecycle(frame, schema=schema, config=config,
                              champion=champion.model if champion is not None else None, progress=progress,
                              metadata=metadata)
    # Before the card is drawn from it: what the data may be hiding (model/data_checks.py).
    review(outcome.report, leaks=leaks, spec=metadata.get("feature_spec"),
           max_event_types=source_config.max_event_types)
    use_measured_offer(db, config, outcome.report)  # issue 13.5: a campaign's measured offer success rate
    return Candidate(
        outcome=replace(outcome, test_frame=outcome.test_frame.iloc[0:0]),
        seed=config.seed,
        train_rows=len(frame),
        batch_ids=[int(b) for b in frame.attrs.get("batch_ids", [])],
        training_seconds=float(outcome.report.get("training_seconds") or time.monotonic() - started),
        champion_compared=None if champion is None else str(champion.version),
    )


def register_candidate(
    db: Database,
    candidate: Candidate,
    *,
    registry: Registry[ChurnModel],
    actor: str = "system",
    promote: bool = True,
    progress: Progress | None = None,
) -> TrainResult:
    """Store a trained candidate as a new version, with its report and model card, and audit it.

    The champion switches only when the gate passed (and ``promote`` is true: False keeps a
    passing model as a candidate); a refused one is stored as rejected, with the reasons."""
    from model import card

    say = progress or (lambda _message: None)
    outcome = candidate.outcome
    report: dict[str, Any] = dict(outcome.report)
    if candidate.champion_compared is not None:
        report.setdefault("champion_compared", candidate.champion_compared)
    passed, reasons = candidate.passed, candidate.reasons

    def write(directory: Path, version: str) -> None:
        report["version"] = version
        outcome.model.save(directory)
        (directory / REPORT_FILE).write_text(json.dumps(report, indent=2, default=str, ensure_ascii=False))
        card.write_model_card(outcome, directory, title=f"ChurnGuard churn model {version}")

    say("saving the model and its card")
    info = registry.register(
        write,
        NewVersion(
            threshold=float(outcome.model.threshold_),
            seed=candidate.seed,
            train_rows=candidate.train_rows,
            metrics=_stored_metrics(report),
            reasons=reasons,
            batch_ids=candidate.batch_ids,
            training_seconds=candidate.training_seconds,
        ),
        promote=passed and promote,
        rejected=not passed,
        actor=actor,
    )
    with db.session() as session:
        session.add(AuditLog(actor=actor[:64], action="train",
                             detail=f"{info.version} {info.status}" + (f": {'; '.join(reasons)}" if reasons else ""),
                             result=info.status))
    say(f"{info.version}: {info.status}")
    return TrainResult(info.version, info.status, report, info, reasons)


def train_and_register(
    db: Database,
    settings: ServiceSettings,
    *,
    seed: int | None = None,
    actor: str = "system",
    progress: Progress | None = None,
    promote: bool = True,
    registry: Registry[ChurnModel] | None = None,
    config: TrainConfig | None = None,
    frame: pd.DataFrame | None = None,
    batch_window: Sequence[int] | None = None,
) -> TrainResult:
    """Train on the stored labelled rows, gate, register; the champion switches only when
    the gate passes (and ``promote`` is true: False keeps a passing model as a candidate).

    ``config`` replaces the training values taken from ``settings`` (tests, benchmarks);
    ``seed`` overrides the seed of either.  ``batch_window`` keeps the rows of those batches only
    (the retrain job's window of recent batches); ``frame`` replaces the stored rows altogether
    (tests, benchmarks; ``frame.attrs["batch_ids"]`` names the batches).
    :func:`train_candidate` then :func:`register_candidate`, in this process."""
    registry = registry or open_registry(db, settings)
    candidate = train_candidate(db, settings, seed=seed, progress=progress, registry=registry, config=config,
                                frame=frame, batch_window=batch_window)
    return register_candidate(db, candidate, registry=registry, actor=actor, promote=promote, progress=progress)


def training_source(db: Database, settings: object) -> str:
    """"clients" or "events": what a model trained now would learn from (``CHURNGUARD_TRAINING_SOURCE``)."""
    return "events" if source_kind(db, SourceConfig.from_settings(settings)) == EVENTS else "clients"


def _current_champion(registry: Registry[ChurnModel]) -> Any:
    try:
        return registry.serving()
    except NoChampion:
        return None


def _stored_metrics(report: dict[str, Any]) -> dict[str, Any]:
    """The parts of the report that ``churnguard models`` and the jobs read from the database."""
    keep = ("metrics", "baselines", "roi", "split", "gate", "threshold", "champion", "champion_compared", "validation",
            "signal")
    return {key: report[key] for key in keep if key in report}


__all__ = [
    "REPORT_FILE",
    "Candidate",
    "ServiceSettings",
    "TrainResult",
    "open_registry",
    "open_scorer",
    "register_candidate",
    "store_schema",
    "train_and_register",
    "train_candidate",
    "training_source",
]
