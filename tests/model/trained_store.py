"""Telco stores with a trained champion, shared by the scoring, service and command tests.

Training is the slow part of these tests, so one real ``train_and_register`` run on Telco
is made once per test process (``quick_training``) and other stores *adopt* that model: they
register the same artifacts through their own registry, which is what a store restored from
a backup does.  The search is capped at one trial with a generous time budget, so a run is
reproducible (the trial count, not the clock, ends the search).
"""

from __future__ import annotations

import atexit
import functools
import json
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, replace
from pathlib import Path

import pandas as pd

from churnguard import Settings
from model.artifact import ChurnModel
from model.config import TrainConfig
from model.registry import NewVersion, Registry, VersionInfo
from model.service import REPORT_FILE, TrainResult, open_registry, train_and_register
from storage.db import Database
from storage.ingest import ingest_file
from storage.schema import schema_from_settings
from tests.conftest import TELCO, drop_pg_schema, pg_url_or_skip

QUICK = TrainConfig(seed=7, tuning_seconds=600.0, max_trials=1, n_folds=3)


@dataclass
class Store:
    db: Database
    settings: Settings
    registry: Registry[ChurnModel]


def quick_config(**changes: object) -> TrainConfig:
    return replace(QUICK, **changes)  # type: ignore[arg-type]


@contextmanager
def engine_url(kind: str, directory: Path) -> Iterator[str]:
    """A fresh database URL on ``kind`` ("sqlite" or "postgresql"), dropped afterwards."""
    if kind == "sqlite":
        yield f"sqlite:///{(directory / 'churnguard.db').as_posix()}"
        return
    url = pg_url_or_skip()
    try:
        yield url
    finally:
        drop_pg_schema(url)


def open_store(url: str, home: Path, **settings: object) -> Store:
    values: dict[str, object] = {"home": home, "database_url": url, **settings}
    config = Settings(**values)  # type: ignore[arg-type]
    db = Database(url).create_schema()
    return Store(db, config, open_registry(db, config))


def ingest_telco(store: Store) -> None:
    schema, explicit = schema_from_settings(store.settings)
    ingest_file(store.db, TELCO, schema=schema, explicit=explicit)


def train(store: Store, config: TrainConfig = QUICK, **kwargs: object) -> TrainResult:
    return train_and_register(store.db, store.settings, actor="test", config=config, registry=store.registry,
                              **kwargs)  # type: ignore[arg-type]


@functools.cache
def quick_training() -> tuple[Store, TrainResult]:
    """A SQLite Telco store trained once per test process (its v1 is the shared model)."""
    directory = Path(tempfile.mkdtemp(prefix="churnguard-quick-"))
    atexit.register(remove_tree, directory)
    store = open_store(f"sqlite:///{(directory / 'churnguard.db').as_posix()}", directory / "home")
    atexit.register(store.db.dispose)
    ingest_telco(store)
    return store, train(store)


def adopt_quick_model(store: Store) -> VersionInfo:
    """Register the shared trained model in ``store`` as its champion (no new training)."""
    source, result = quick_training()
    model = source.registry.load(result.version)
    report = result.report

    def write(directory: Path, version: str) -> None:
        model.save(directory)
        (directory / REPORT_FILE).write_text(json.dumps({**report, "version": version}))

    meta = NewVersion(threshold=model.threshold_, seed=QUICK.seed, train_rows=result.info.train_rows,
                      metrics=result.info.metrics)
    return store.registry.register(write, meta, promote=True, actor="test")


def remove_tree(directory: Path) -> None:
    """Delete a tree holding sealed (read-only) model versions."""
    for path in [directory, *directory.rglob("*")]:
        if path.is_dir() and not path.is_symlink():
            path.chmod(0o755)
    shutil.rmtree(directory, ignore_errors=True)


def telco_frame() -> pd.DataFrame:
    return pd.read_csv(TELCO, dtype=str)
