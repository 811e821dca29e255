"""A store can move: model folders are stored relative to the models folder, so a home that is
copied, moved or restored elsewhere serves its own files, never the old location's.

Covers the migration of rows written by release 0.1.0 (absolute paths) on SQLite and
PostgreSQL, homes copied with ``shutil.copytree`` or moved with ``mv`` while something still
lives at the old place, and a moved home used through the command line.
"""

from __future__ import annotations

import contextlib
import io
import json
import logging
import os
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import create_engine, text

from churnguard import Settings, main
from model.registry import NewVersion, Registry
from model.service import open_registry, open_scorer
from storage.db import Database
from tests.conftest import drop_pg_schema
from tests.model.trained_store import adopt_quick_model, ingest_telco, open_store, remove_tree
from tests.storage.old_store import OLD_HOMES, restore

KNOWN = "7590-VHVEG"  # a Telco client in the release store (tenure 1, so it is scored)


def settings_for(home: Path, url: str) -> Settings:
    return Settings(_env_file=None, home=home, database_url=url)  # type: ignore[call-arg]


def artifact_dirs(url: str) -> dict[str, str]:
    engine = create_engine(url)
    try:
        with engine.connect() as connection:
            rows = connection.execute(text("SELECT version, artifact_dir FROM model_version")).all()
    finally:
        engine.dispose()
    return {str(row[0]): str(row[1]) for row in rows}


@contextlib.contextmanager
def restored(engine: str, home: Path) -> Iterator[str]:
    url = restore(engine, home)
    try:
        yield url
    finally:
        if engine == "postgresql":
            drop_pg_schema(url)


# ------------------------------------------------------------------ the 0.1.0 store, migrated
@pytest.mark.parametrize("engine", ["sqlite", "postgresql"])
def test_a_release_0_1_0_store_restored_elsewhere_loads_and_scores_its_champion_from_the_new_place(
        engine: str, tmp_path: Path) -> None:
    home = tmp_path / "restored-home"
    with restored(engine, home) as url:
        assert artifact_dirs(url) == {"v1": f"{OLD_HOMES[engine]}/models/v1"}  # what 0.1.0 wrote
        # The old home may or may not exist on this machine: either way the new one must serve.
        settings = settings_for(home, url)
        db = Database(url).create_schema()
        try:
            registry = open_registry(db, settings)
            serving = registry.serving()
            result = open_scorer(db, settings, registry).score_client(KNOWN)
            info = registry.get("v1")
        finally:
            db.dispose()
        stored = artifact_dirs(url)

    assert stored == {"v1": "v1"}
    assert info.artifact_dir == (home / "models" / "v1").resolve()
    assert (serving.version, serving.pointer, serving.problems) == ("v1", "v1", ())
    assert result.scored and result.model_version == "v1" and not result.warnings
    assert 0.0 <= (result.probability or -1) <= 1.0 and len(result.reasons) == 3


@pytest.mark.parametrize("engine", ["sqlite", "postgresql"])
def test_the_migration_names_every_version_folder_relative_to_the_models_folder(
        engine: str, tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    home = tmp_path / "home"
    with restored(engine, home) as url:
        models = home / "models"
        shutil.copytree(models / "v1", models / "v2")  # a folder inside the current models folder
        rows = {
            "v2": str(models.resolve() / "v2"),  # absolute, inside the current models folder
            "v3": "/srv/gone/home/models/v3",  # absolute, elsewhere, and no copy here
            "v4": "/srv/odd/folder-renamed-by-hand",  # not named after its version
            "v5": "v5",  # already relative
        }
        raw = create_engine(url)
        with raw.begin() as connection:  # rows as release 0.1.0 would hold them
            for version, folder in rows.items():
                connection.execute(text(
                    "INSERT INTO model_version (version, created_at, status, artifact_dir, sha256, threshold, seed, "
                    "train_rows, batch_ids, metrics, reasons, training_seconds) SELECT :version, created_at, "
                    "'retired', :folder, sha256, threshold, seed, train_rows, batch_ids, metrics, reasons, "
                    "training_seconds FROM model_version WHERE version = 'v1'"), {"version": version, "folder": folder})
        raw.dispose()
        with caplog.at_level(logging.INFO, logger="storage.migrate"):
            db = Database(url).create_schema()
        try:
            registry = open_registry(db, settings_for(home, url))
            problems = {version: registry.check(version) for version in ("v1", "v2", "v3")}
            v4 = registry.get("v4").artifact_dir
        finally:
            db.dispose()
        stored = artifact_dirs(url)

    assert stored == {"v1": "v1", "v2": "v2", "v3": "v3", "v4": "/srv/odd/folder-renamed-by-hand", "v5": "v5"}
    assert problems["v1"] is None and problems["v2"] is None  # both load from this home's models folder
    assert problems["v3"] == "the model folder v3 is missing"  # named within the home, never by a server path
    assert v4 == Path("/srv/odd/folder-renamed-by-hand")
    logged = caplog.text
    assert f"model v1: its folder is now found in the models folder of CHURNGUARD_HOME as v1 (the store named " \
           f"{OLD_HOMES[engine]}/models/v1)" in logged
    assert "/srv/gone/home/models/v3" in logged  # where to copy the missing folder from
    assert "model v4: folder /srv/odd/folder-renamed-by-hand is not named after its version" in logged


# ------------------------------------------------------------------ homes that moved
def load_with_place(directory: Path) -> tuple[dict[str, object], Path]:
    """A model that remembers which folder it was read from."""
    return json.loads((directory / "model.json").read_text()), directory


def register(registry: Registry[tuple[dict[str, object], Path]], payload: dict[str, object]) -> str:
    def write(directory: Path, version: str) -> None:
        (directory / "model.json").write_text(json.dumps({**payload, "version": version}))

    meta = NewVersion(threshold=0.3, seed=1, train_rows=10)
    return registry.register(write, meta, promote=True, actor="test").version


def home_url(db_url: str, home: Path) -> str:
    """SQLite lives inside the home (and moves with it); a PostgreSQL store stays where it is."""
    return f"sqlite:///{(home / 'churnguard.db').as_posix()}" if db_url.startswith("sqlite") else db_url


def make_writable(path: Path) -> None:
    for item in [path, *path.rglob("*")]:
        os.chmod(item, 0o755 if item.is_dir() else 0o644)


def test_a_home_copied_elsewhere_serves_its_own_files_while_the_old_home_still_exists(
        db_url: str, tmp_path: Path) -> None:
    old, new = tmp_path / "old-home", tmp_path / "new-home"
    old.mkdir()
    db = Database(home_url(db_url, old)).create_schema()
    register(Registry(db, old / "models", load_with_place), {"w": 1})
    db.dispose()  # checkpoints SQLite's WAL, so the copy holds every row
    shutil.copytree(old, new)

    assert artifact_dirs(home_url(db_url, new)) == {"v1": "v1"}  # no trace of the old place in the store
    db = Database(home_url(db_url, new)).create_schema()
    try:
        registry = Registry(db, new / "models", load_with_place)
        served = registry.serving()
        info = registry.get("v1")
        # The old home is changed after the copy: the copy must not notice.
        make_writable(old / "models" / "v1")
        (old / "models" / "v1" / "model.json").write_text(json.dumps({"w": 666}))
        again = Registry(db, new / "models", load_with_place).serving()
    finally:
        db.dispose()
        remove_tree(old)

    assert info.artifact_dir == (new / "models" / "v1").resolve()
    assert served.model == ({"w": 1, "version": "v1"}, (new / "models" / "v1").resolve())
    assert (again.version, again.problems, again.model[0]) == ("v1", (), {"w": 1, "version": "v1"})


def test_a_home_moved_with_mv_serves_its_files_when_a_new_store_takes_the_old_place(tmp_path: Path) -> None:
    old, new = tmp_path / "volume-a", tmp_path / "volume-b"
    old.mkdir()
    first = Database(home_url("sqlite", old)).create_schema()
    register(Registry(first, old / "models", load_with_place), {"w": 1})
    first.dispose()
    os.rename(old, new)  # what `mv` does on one file system
    old.mkdir()  # a new store at the old place, with a v1 of its own
    other = Database(home_url("sqlite", old)).create_schema()
    register(Registry(other, old / "models", load_with_place), {"w": 2})
    other.dispose()

    moved = Database(home_url("sqlite", new)).create_schema()
    try:
        served = Registry(moved, new / "models", load_with_place).serving()
    finally:
        moved.dispose()
        remove_tree(old)
        remove_tree(new)

    assert served.problems == ()
    assert served.model == ({"w": 1, "version": "v1"}, (new / "models" / "v1").resolve())


def run(*argv: str) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = main(list(argv))
    return code, out.getvalue(), err.getvalue()


def test_the_command_line_serves_a_copied_home_from_its_new_place(home: Path, tmp_path: Path,
                                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    old = tmp_path / "before"
    store = open_store(f"sqlite:///{(old / 'churnguard.db').as_posix()}", old)
    try:
        ingest_telco(store)
        adopt_quick_model(store)
    finally:
        store.db.dispose()
    shutil.copytree(old, home)
    remove_tree(old)  # the old home is gone, as after a restore on another machine
    monkeypatch.setenv("CHURNGUARD_HOME", str(home))

    code, out, err = run("score", KNOWN, "--json")
    assert code == 0, err
    assert json.loads(out)["status"] == "scored" and json.loads(out)["warnings"] == []
    code, out, err = run("models", "--json")
    assert code == 0, err
    (row,) = json.loads(out)["versions"]
    assert Path(row["artifact_dir"]) == (home / "models" / "v1").resolve()
