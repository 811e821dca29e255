"""Restore the store that release 0.1.0 made (tests/storage/release_store) into a test's home.

The SQLite file is unpacked into the home; the PostgreSQL dump is loaded into a fresh schema
(its schema name rewritten).  Each engine's model folder is copied to ``<home>/models``.  The
database rows still name the model folders by the absolute paths they had when the store was
made, as every store of that release does.
"""

from __future__ import annotations

import gzip
import shutil
from pathlib import Path

import psycopg

from tests.conftest import PG_ADMIN_URL, pg_url_or_skip

RELEASE = Path(__file__).resolve().parent / "release_store"
OLD_HOMES = {"sqlite": "/tmp/rel/home", "postgresql": "/tmp/rel/pghome"}
OLD_SCHEMA = "release_store"
COUNTS = {"alert": 1, "audit_log": 2, "batch": 7, "champion_event": 1, "dataset_schema": 1, "event_purchase": 417,
          "event_ticket": 4047, "event_usage": 3000, "job_run": 2, "model_version": 1, "prediction": 797,
          "report": 2, "subscriber": 1, "client_record": 699, "event_client": 300, "event_type_name": 0,
          "event_subscription": 791}


def restore(engine: str, home: Path) -> str:
    """The URL of the restored store (its PostgreSQL schema is dropped with the test's others)."""
    home.mkdir(parents=True, exist_ok=True)
    source = RELEASE / engine
    shutil.copytree(source / "models", home / "models")
    if engine == "sqlite":
        target = home / "churnguard.db"
        with gzip.open(source / "churnguard.db.gz", "rb") as packed, target.open("wb") as out:
            shutil.copyfileobj(packed, out)
        return f"sqlite:///{target.as_posix()}"
    url = pg_url_or_skip()
    schema = url.rsplit("%3D", 1)[1]
    dump = gzip.decompress((source / "dump.sql.gz").read_bytes()).decode("utf-8")
    dump = dump.replace(f"CREATE SCHEMA {OLD_SCHEMA};", "").replace(f"{OLD_SCHEMA}.", f'"{schema}".')
    dsn = PG_ADMIN_URL.replace("postgresql+psycopg://", "postgresql://")
    with psycopg.connect(dsn, autocommit=True) as connection:
        connection.execute(dump)  # type: ignore[call-overload]
    return url
