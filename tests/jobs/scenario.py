"""A store fed month by month through the inbox, as an operator (or the acceptance check) would.

Training is the slow part, so the whole story runs once per engine and session, and the
drift, performance and retrain tests each assert on the part they own:

1. 3,000 Telco clients (labelled) are dropped into the inbox and ingested; ``jobs run retrain`` trains v1.
2. Three months of a *stable* stream (model/monitoring/stream.py, unlabelled) — no drift.
3. The last two months of a four-month *covariate* stream (more month-to-month contracts,
   higher charges), unlabelled — drift.
4. The last month of a *concept* stream (long-contract clients start leaving), labelled —
   recall falls below 0.90.
5. A small labelled batch (40 clients, too few churners for a verdict).
6. Clients the champion rates as safe, unlabelled — the estimated recall (CBPE) is 0.
7. A retrain whose training crashes half-way (the champion stays).
8. ``jobs run retrain`` — the gate decides.

Automatic retrains are off (``CHURNGUARD_RETRAIN_ON=schedule``) so the champion stays v1
through steps 2–7 and every alert can be checked against it.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

from churnguard import Settings
from jobs.notifier import RecordingNotifier
from jobs.runner import JobRunner, RunReport
from model.config import TrainConfig
from model.monitoring.stream import monthly_stream, without_labels
from model.service import train_and_register
from storage.db import Database
from tests.conftest import TELCO

MONTH_ROWS = 1000
FIRST_ROWS = 3000


def quick_trainer(db: Database, settings: Any, **kwargs: Any) -> Any:
    """The real training path with a small, fixed search: seconds per model."""
    config = TrainConfig.from_settings(settings, tuning_seconds=2.0, max_trials=2, n_folds=2)
    return train_and_register(db, settings, config=config, **kwargs)


class TrainingCrashed(RuntimeError):
    pass


def crashing_trainer(db: Database, settings: Any, **kwargs: Any) -> Any:
    """Real training that dies in the hyperparameter search, as an out-of-memory error would."""
    seen: list[str] = []

    def progress(line: str) -> None:
        seen.append(line)
        if line.startswith("tuning"):
            raise TrainingCrashed(f"killed while {line!r}")

    kwargs["progress"] = progress
    return quick_trainer(db, settings, **kwargs)


@dataclass
class Step:
    name: str
    file: Path | None
    frame: pd.DataFrame | None
    reports: list[RunReport]

    def run(self, job: str) -> RunReport:
        matches = [r for r in self.reports if r.job == job]
        assert len(matches) == 1, f"{self.name}: expected one {job} run, got {[r.job for r in self.reports]}"
        return matches[0]

    def alerts(self, kind: str | None = None) -> list[Any]:
        """Alert decisions of this step (stored or suppressed)."""
        return [d for r in self.reports for d in r.alerts if kind is None or d.draft.kind == kind]


@dataclass
class Scenario:
    engine: str
    settings: Settings
    db: Database
    notifier: RecordingNotifier
    runner: JobRunner
    steps: dict[str, Step] = field(default_factory=dict)
    champion_history: list[str | None] = field(default_factory=list)
    adopted: bool = False  # v1 copied from the other engine's story instead of trained here

    @property
    def inbox(self) -> Path:
        return Path(self.settings.inbox_dir)

    def drop(self, name: str, frame: pd.DataFrame) -> Path:
        self.inbox.mkdir(parents=True, exist_ok=True)
        path = self.inbox / name
        frame.to_csv(path, index=False)
        return path

    def feed(self, step: str, name: str, frame: pd.DataFrame) -> Step:
        self.drop(name, frame)
        reports = self.runner.run_sync("ingest")
        recorded = Step(step, self.inbox / "processed" / name, frame, reports)
        self.steps[step] = recorded
        return recorded

    def job(self, step: str, job: str, runner: JobRunner | None = None, **kwargs: Any) -> Step:
        reports = (runner or self.runner).run_sync(job, **kwargs)
        recorded = Step(step, None, None, reports)
        self.steps[step] = recorded
        return recorded

    def champion(self) -> str | None:
        info = self.runner.services["registry"].champion()
        return None if info is None else info.version


def telco() -> pd.DataFrame:
    return pd.read_csv(TELCO, dtype=str, keep_default_na=False)


def build(engine: str, url: str, home: Path) -> Scenario:
    settings = Settings(home=home, database_url=url, retrain_on=["schedule"], tuning_seconds=2.0, seed=7)
    db = Database(url).create_schema()
    notifier = RecordingNotifier()
    from model.service import open_registry

    registry = open_registry(db, settings)
    runner = JobRunner(settings, db, notifier, services={"registry": registry, "trainer": quick_trainer})
    scenario = Scenario(engine, settings, db, notifier, runner)
    source = telco()

    # The first training batch: 3,000 Telco clients (enough for the gate, half the training time).
    scenario.feed("telco", "telco.csv", source.sample(n=FIRST_ROWS, random_state=5).reset_index(drop=True))
    if _FIRST_MODEL:
        adopt_first_model(scenario)
    else:
        scenario.job("first_model", "retrain")
        info = registry.champion()
        if info is not None:
            _FIRST_MODEL["info"] = info
    scenario.champion_history.append(scenario.champion())

    for month, batch in enumerate(monthly_stream(source, 3, drift="none", seed=11, rows_per_month=MONTH_ROWS), 1):
        scenario.feed(f"stable_{month}", f"stable_{month:02d}.csv", without_labels(batch))
    covariate = monthly_stream(source, 4, drift="covariate", seed=12, rows_per_month=MONTH_ROWS)
    for month in (3, 4):
        batch = covariate[month - 1].copy()
        batch["customerID"] = batch["customerID"].str.replace("M", "COV", regex=False)
        scenario.feed(f"covariate_{month}", f"covariate_{month:02d}.csv", without_labels(batch))
    concept = monthly_stream(source, 3, drift="concept", seed=13, rows_per_month=MONTH_ROWS)[-1].copy()
    concept["customerID"] = concept["customerID"].str.replace("M", "CON", regex=False)
    scenario.feed("concept", "concept_03.csv", concept)

    small = monthly_stream(source, 1, drift="none", seed=14, rows_per_month=40)[0].copy()
    small["customerID"] = small["customerID"].str.replace("M", "SMALL", regex=False)
    scenario.feed("small_labelled", "small_labelled.csv", small)

    scenario.feed("safe_clients", "safe_clients.csv", safe_clients(scenario, source))
    scenario.champion_history.append(scenario.champion())

    crashing = JobRunner(settings, db, notifier, services={"registry": registry, "trainer": crashing_trainer})
    scenario.job("crash", "retrain", runner=crashing)
    scenario.champion_history.append(scenario.champion())

    scenario.job("retrain", "retrain")
    scenario.champion_history.append(scenario.champion())
    scenario.job("retrain_again", "retrain", trigger="schedule")
    return scenario


# v1 of the first engine's story, re-registered (not retrained) in the second: same model,
# half the training time.  The registry's public ``register`` does the copy.
_FIRST_MODEL: dict[str, Any] = {}


def adopt(registry: Any, info: Any, batch_ids: list[int]) -> Any:
    """Register a copy of an already trained version (its files) as the champion of ``registry``."""
    import shutil

    from model.registry import NewVersion

    def write(directory: Path, version: str) -> None:
        for item in Path(info.artifact_dir).iterdir():
            if item.name == "manifest.json":
                continue
            if item.is_dir():
                shutil.copytree(item, directory / item.name)
            else:
                shutil.copyfile(item, directory / item.name)

    return registry.register(write, NewVersion(threshold=info.threshold, seed=info.seed, train_rows=info.train_rows,
                                               metrics=info.metrics, batch_ids=batch_ids,
                                               training_seconds=info.training_seconds), promote=True, actor="test")


def adopt_first_model(scenario: Scenario) -> None:
    from jobs.data import client_batches

    batch_ids = [b.id for b in client_batches(scenario.db) if b.id is not None]
    adopt(scenario.runner.services["registry"], _FIRST_MODEL["info"], batch_ids)
    scenario.adopted = True


def safe_clients(scenario: Scenario, source: pd.DataFrame) -> pd.DataFrame:
    """800 Telco clients the champion does not flag, with new ids and no labels."""
    serving = scenario.runner.services["registry"].serving()
    features = source.drop(columns=["customerID", "Churn"]).replace({"": None})
    probabilities = serving.model.predict_proba_frame(features)
    chosen = source.loc[probabilities < serving.threshold].sample(n=800, random_state=3).copy()
    chosen["customerID"] = [f"SAFE-{i:05d}" for i in range(len(chosen))]
    return chosen.drop(columns=["Churn"]).reset_index(drop=True)


def run_async(coroutine: Any) -> Any:
    return asyncio.run(coroutine)
