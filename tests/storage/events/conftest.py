"""Helpers for the event tests: write small tables as real files and ingest them."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

from storage.db import Database
from storage.errors import IngestRejected
from storage.events.ingest import EventIngestReport, ingest_events

FAR_FUTURE_NOW = datetime(2030, 1, 1)

Ingest = Callable[..., EventIngestReport]


def write_csv(path: Path, rows: list[dict[str, Any]] | pd.DataFrame, columns: list[str] | None = None) -> Path:
    frame = rows if isinstance(rows, pd.DataFrame) else pd.DataFrame(rows, columns=columns)
    frame.to_csv(path, index=False, lineterminator="\n")
    return path


def ingest_rows(db: Database, folder: Path, kind: str, rows: list[dict[str, Any]] | pd.DataFrame, *,
                columns: list[str] | None = None, name: str | None = None, now: datetime = FAR_FUTURE_NOW,
                **kwargs: Any) -> EventIngestReport:
    """Write ``rows`` (canonical column names unless a mapping is given) to a CSV and ingest it."""
    existing = len(list(folder.glob(f"{kind}*.csv")))
    path = write_csv(folder / (name or f"{kind}{existing}.csv"), rows, columns)
    return ingest_events(db, path, kind=kind, now=now, **kwargs)


def rejected(db: Database, call: Callable[[], Any]) -> IngestRejected:
    """Run an ingest that must fail; prove that nothing was stored."""
    before = db.row_counts()
    with pytest.raises(IngestRejected) as caught:
        call()
    assert db.row_counts() == before
    return caught.value


@pytest.fixture
def ingest(db: Database, tmp_path: Path) -> Ingest:
    """``ingest(kind, rows, **kwargs)`` on the parametrized database (SQLite and PostgreSQL)."""
    folder = tmp_path / "files"
    folder.mkdir()

    def run(kind: str, rows: list[dict[str, Any]] | pd.DataFrame, **kwargs: Any) -> EventIngestReport:
        return ingest_rows(db, folder, kind, rows, **kwargs)

    return run
