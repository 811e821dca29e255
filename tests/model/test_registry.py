"""The registry: immutable versions, sha256 checks, atomic champion switches, rollback, fallback.

The registry does not care what a model is, so these tests register a small JSON artifact
with a JSON loader; test_service.py covers the real LightGBM model end to end.
"""

from __future__ import annotations

import json
import os
import stat
from pathlib import Path

import pytest
from sqlalchemy.exc import DBAPIError
from sqlmodel import select

from model.registry import ArtifactError, NewVersion, NoChampion, Registry, verify_artifacts
from storage.errors import NotFound, UserError
from storage.tables import ChampionEvent, ModelVersion


def load_json_model(directory: Path) -> dict:
    return json.loads((directory / "model.json").read_text())


def writer(payload: dict):
    def write(directory: Path, version: str) -> None:
        (directory / "model.json").write_text(json.dumps({**payload, "version": version}))
        (directory / "card").mkdir()
        (directory / "card" / "card.md").write_text(f"# {version}\n")

    return write


def meta(threshold: float = 0.3) -> NewVersion:
    return NewVersion(threshold=threshold, seed=1, train_rows=100, metrics={"test": {"recall": 0.91}})


@pytest.fixture
def registry(db, tmp_path) -> Registry[dict]:
    return Registry(db, tmp_path / "models", load_json_model)


def register(registry: Registry[dict], *, promote: bool = True, **payload) -> str:
    return registry.register(writer(payload), meta(), promote=promote, actor="test").version


def make_writable(path: Path) -> None:
    for item in [path, *path.rglob("*")]:
        os.chmod(item, 0o755 if item.is_dir() else 0o644)


def champions(db) -> list[str]:
    with db.session() as session:
        return [row.version for row in session.exec(select(ModelVersion).where(ModelVersion.status == "champion"))]


def test_register_writes_a_sealed_version_with_a_manifest(registry, db):
    # when a model is registered
    info = registry.register(writer({"w": 1}), meta(0.25), promote=False, actor="test")
    # then it is v1, sealed read-only, hashed, and recorded as a candidate
    assert info.version == "v1" and info.status == "candidate"
    directory = registry.models_dir / "v1"
    assert info.artifact_dir == directory.resolve()
    manifest = json.loads((directory / "manifest.json").read_text())
    assert set(manifest["files"]) == {"model.json", "card/card.md"}
    for path in [directory, *directory.rglob("*")]:
        assert not path.stat().st_mode & (stat.S_IWUSR | stat.S_IWGRP | stat.S_IWOTH), path
    verify_artifacts(directory, info.sha256)
    assert registry.get("1").threshold == 0.25
    assert [p.name for p in registry.models_dir.iterdir()] == ["v1"]
    assert registry.next_version() == "v2"


def test_a_failing_writer_leaves_no_directory_and_no_row(registry, db):
    def broken(directory: Path, version: str) -> None:
        (directory / "model.json").write_text("{}")
        raise RuntimeError("disk full")

    with pytest.raises(RuntimeError):
        registry.register(broken, meta(), promote=True, actor="test")
    assert list(registry.models_dir.iterdir()) == []
    assert db.row_counts()["model_version"] == 0
    assert db.row_counts()["champion_event"] == 0


def test_an_existing_version_directory_is_never_overwritten(registry, db):
    # given a directory v1 left by a crashed run (its row never committed)
    (registry.models_dir / "v1").mkdir(parents=True)
    (registry.models_dir / "v1" / "model.json").write_text("precious")
    # then the next version skips its number
    assert register(registry) == "v2"
    # and asking for that name explicitly is refused without touching it
    with pytest.raises(UserError, match="never overwritten"):
        registry.register(writer({}), meta(), promote=False, actor="test", version="v1")
    assert (registry.models_dir / "v1" / "model.json").read_text() == "precious"
    assert [info.version for info in registry.list_versions()] == ["v2"]


def test_a_version_name_taken_in_the_database_records_nothing_new(registry, db):
    # given v1 registered, then its directory removed by hand
    register(registry)
    make_writable(registry.models_dir / "v1")
    for path in sorted((registry.models_dir / "v1").rglob("*"), reverse=True):
        path.rmdir() if path.is_dir() else path.unlink()
    (registry.models_dir / "v1").rmdir()
    before = db.row_counts()
    # when a writer tries to register v1 again
    with pytest.raises(UserError, match="concurrently"):
        registry.register(writer({}), meta(), promote=True, actor="test", version="v1")
    # then nothing was stored and no directory was left behind
    assert db.row_counts() == before
    assert list(registry.models_dir.iterdir()) == []


def test_register_with_promote_crowns_it_in_the_same_step(registry, db):
    info = registry.register(writer({}), meta(), promote=True, actor="test")
    assert info.status == "champion"
    assert champions(db) == ["v1"]
    with db.session() as session:
        events = session.exec(select(ChampionEvent)).all()
    assert [(e.version, e.previous_version, e.action, e.actor) for e in events] == [("v1", None, "promote", "test")]


def test_rejected_versions_are_stored_with_reasons(registry):
    info = registry.register(
        writer({}), NewVersion(0.3, 1, 10, reasons=["test recall 0.80 < 0.90"]), promote=False, rejected=True
    )
    assert info.status == "rejected" and info.reasons == ["test recall 0.80 < 0.90"]
    with pytest.raises(NoChampion, match="rejected by the acceptance gate"):
        registry.serving()


def test_promote_switches_exactly_one_champion_and_logs_it(registry, db):
    register(registry)
    register(registry, promote=False)
    switch = registry.promote("v2", actor="alice")
    assert (switch.version, switch.previous) == ("v2", "v1")
    assert champions(db) == ["v2"]
    statuses = {info.version: info.status for info in registry.list_versions()}
    assert statuses == {"v1": "retired", "v2": "champion"}
    with db.session() as session:
        last = session.exec(select(ChampionEvent).order_by(ChampionEvent.id.desc())).first()
    assert (last.version, last.previous_version, last.actor) == ("v2", "v1", "alice")
    assert db.row_counts()["audit_log"] == 1


def fail_champion_events(db) -> None:
    """A real database failure on the last statement of a switch (the event row)."""
    with db.engine.begin() as connection:
        if db.dialect == "sqlite":
            connection.exec_driver_sql(
                "CREATE TRIGGER no_events BEFORE INSERT ON champion_event BEGIN SELECT RAISE(ABORT, 'disk full'); END"
            )
        else:
            connection.exec_driver_sql(
                "CREATE FUNCTION no_events() RETURNS trigger AS $$ BEGIN RAISE EXCEPTION 'disk full'; END $$ "
                "LANGUAGE plpgsql"
            )
            connection.exec_driver_sql(
                "CREATE TRIGGER no_events BEFORE INSERT ON champion_event FOR EACH ROW EXECUTE FUNCTION no_events()"
            )


def test_a_switch_that_fails_midway_leaves_the_old_champion(registry, db):
    # given v1 champion and v2 candidate, and a database that fails when the event row is written
    register(registry)
    register(registry, promote=False)
    fail_champion_events(db)
    before = db.row_counts()
    # when promoting v2 (its status updates run before the failing insert)
    with pytest.raises(DBAPIError, match="disk full"):
        registry.promote("v2", actor="test")
    # then the whole switch rolled back
    assert db.row_counts() == before
    assert champions(db) == ["v1"]
    assert {info.version: info.status for info in registry.list_versions()} == {"v1": "champion", "v2": "candidate"}
    assert registry.serving().version == "v1"


def test_registering_a_champion_that_fails_midway_leaves_no_version(registry, db):
    register(registry)
    fail_champion_events(db)
    before = db.row_counts()
    with pytest.raises(DBAPIError, match="disk full"):
        registry.register(writer({}), meta(), promote=True, actor="test")
    assert db.row_counts() == before
    assert sorted(p.name for p in registry.models_dir.iterdir()) == ["v1"]
    assert champions(db) == ["v1"]


def test_promoting_the_champion_again_changes_nothing(registry, db):
    register(registry)
    before = db.row_counts()
    switch = registry.promote("1", actor="test")
    assert (switch.version, switch.previous, switch.note) == ("v1", "v1", "v1 is already the champion")
    assert db.row_counts() == before


@pytest.mark.parametrize("name", ["v9", "banana", "", "v0"])
def test_promote_of_an_unknown_version_changes_nothing(registry, db, name):
    register(registry)
    before = db.row_counts()
    with pytest.raises(NotFound):
        registry.promote(name, actor="test")
    assert db.row_counts() == before
    assert champions(db) == ["v1"]


def test_promote_refuses_a_damaged_version(registry, db):
    register(registry)
    register(registry, promote=False)
    path = registry.models_dir / "v2" / "model.json"
    make_writable(registry.models_dir / "v2")
    path.write_text("{}")
    with pytest.raises(UserError, match=r"cannot promote v2: .*corrupted"):
        registry.promote("v2", actor="test")
    assert champions(db) == ["v1"]


def test_rollback_walks_the_champion_history_back(registry, db):
    for _ in range(3):
        register(registry)
    assert registry.rollback("test").version == "v2"
    assert registry.rollback("test").version == "v1"
    with pytest.raises(UserError, match="no previous champion to roll back to; v1 stays champion"):
        registry.rollback("test")
    assert champions(db) == ["v1"]
    # a promotion after rollbacks starts a new history
    registry.promote("v3", actor="test")
    assert registry.champion_history() == ["v1", "v3"]


def test_rollback_passes_over_damaged_versions(registry, db):
    for _ in range(3):
        register(registry)
    make_writable(registry.models_dir / "v2")
    (registry.models_dir / "v2" / "card" / "card.md").unlink()
    switch = registry.rollback("test")
    assert (switch.version, switch.previous, switch.skipped) == ("v1", "v3", ("v2",))
    assert champions(db) == ["v1"]


def test_rollback_without_champion_is_a_clear_error(registry):
    with pytest.raises(NoChampion, match="nothing to roll back"):
        registry.rollback("test")


def test_no_champion_says_to_train(registry):
    with pytest.raises(NoChampion, match="no model yet: run churnguard train"):
        registry.serving()


def corrupt_byte(path: Path) -> None:
    make_writable(path.parent)
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0x01
    path.write_bytes(bytes(data))


def delete_file(path: Path) -> None:
    make_writable(path.parent)
    path.unlink()


def delete_dir(path: Path) -> None:
    directory = path.parent
    make_writable(directory)
    for item in sorted(directory.rglob("*"), reverse=True):
        item.rmdir() if item.is_dir() else item.unlink()
    directory.rmdir()


def edit_manifest(path: Path) -> None:
    manifest = path.parent / "manifest.json"
    make_writable(path.parent)
    body = json.loads(manifest.read_text())
    body["files"].pop("card/card.md")
    manifest.write_text(json.dumps(body))


@pytest.mark.parametrize(
    ("damage", "problem"),
    [(corrupt_byte, "corrupted"), (delete_file, "missing"), (delete_dir, "missing"), (edit_manifest, "manifest")],
)
def test_a_damaged_champion_is_reported_and_the_previous_good_version_serves(registry, db, damage, problem):
    # given three champions in turn, the middle one also damaged
    register(registry, weight=1)
    register(registry, weight=2)
    register(registry, weight=3)
    corrupt_byte(registry.models_dir / "v2" / "model.json")
    # when the champion's files are damaged
    damage(registry.models_dir / "v3" / "model.json")
    serving = registry.serving()
    # then v1 serves (v2 is damaged too), the reasons are given, and the pointer is unchanged
    assert serving.version == "v1" and serving.model["weight"] == 1
    assert serving.is_fallback and serving.pointer == "v3"
    assert problem in serving.problems[0] and serving.problems[0].startswith("champion v3")
    assert any(p.startswith("v2:") for p in serving.problems)
    assert champions(db) == ["v3"]
    with pytest.raises(ArtifactError):
        registry.load("v3")


def test_nothing_intact_is_a_clear_error(registry):
    register(registry)
    corrupt_byte(registry.models_dir / "v1" / "model.json")
    with pytest.raises(NoChampion, match="no previous champion is intact"):
        registry.serving()


def test_serving_is_cached_and_follows_switches(registry, db, tmp_path):
    register(registry, weight=1)
    first = registry.serving()
    assert registry.serving().model is first.model  # no reload per call
    # a switch through this registry is seen at once
    register(registry, weight=2)
    assert registry.serving().version == "v2"
    # a switch made elsewhere (another process) is seen once the pointer is re-read
    other = Registry(db, registry.models_dir, load_json_model)
    other.rollback("someone-else")
    registry.POINTER_TTL_SECONDS = 0.0
    assert registry.serving().version == "v1"
    assert registry.serving().model["weight"] == 1


def test_stale_staging_directories_are_swept(registry):
    stale = registry.models_dir / ".staging-v7-abc"
    stale.mkdir(parents=True)
    (stale / "half.bin").write_bytes(b"x")
    os.utime(stale, (0, 0))
    fresh = registry.models_dir / ".staging-v8-def"
    fresh.mkdir()
    register(registry)
    assert not stale.exists()
    assert fresh.exists()  # may belong to a training still running


@pytest.mark.parametrize("damage", [corrupt_byte, delete_file, delete_dir, edit_manifest])
def test_damage_is_described_without_the_servers_paths(registry, damage):
    # given a damaged champion and an intact previous one
    register(registry, weight=1)
    register(registry, weight=2)
    damage(registry.models_dir / "v2" / "model.json")
    # then every description of the damage (served with each score, shown by /model) names the
    # version folder and the file in it, never where the store lives on the server
    serving = registry.serving()
    described = [*serving.problems, registry.check("v2") or ""]
    assert described[-1]
    for text in described:
        assert str(registry.models_dir.parent) not in text and "/" + "v2" not in text, text
    assert serving.problems[0].startswith("champion v2: ") and "v2" in serving.problems[0][len("champion v2: "):]


def test_advice_is_worded_for_the_shell_and_for_a_chat(registry):
    # no model at all: the shell is told the command, a chat the bot's command
    with pytest.raises(NoChampion) as empty:
        registry.serving()
    assert str(empty.value) == "no model yet: run churnguard train"
    assert empty.value.for_chat() == "no model yet: an admin can train one with /retrain"
    # only rejected versions
    registry.register(writer({}), meta(), promote=False, rejected=True, actor="test")
    with pytest.raises(NoChampion) as rejected:
        registry.serving()
    assert "churnguard promote VERSION" in str(rejected.value)
    assert rejected.value.for_chat().endswith("an admin can list them with /models, then /promote <version> or /retrain")
    # nothing to roll back to
    registry.promote("v1", "test")
    with pytest.raises(UserError) as stuck:
        registry.rollback("test")
    assert "churnguard promote VERSION" in str(stuck.value)
    assert "/promote <version>" in stuck.value.for_chat() and "churnguard" not in stuck.value.for_chat()


def test_the_newest_candidate_is_the_one_that_runs_in_shadow(registry):
    assert registry.newest_candidate() is None
    register(registry)  # v1 champion
    register(registry, promote=False)  # v2
    registry.register(writer({}), meta(), promote=False, rejected=True, actor="test")  # v3 rejected
    register(registry, promote=False)  # v4
    assert registry.newest_candidate().version == "v4"


def test_reject_turns_a_candidate_down_with_its_reason_and_audits_it(registry, db):
    from storage.tables import AuditLog

    register(registry)
    register(registry, promote=False)
    info = registry.reject("v2", "shadow", "shadow comparison: it ranks churners worse")

    assert info.status == "rejected" and info.reasons == ["shadow comparison: it ranks churners worse"]
    assert registry.get("v2").status == "rejected" and registry.newest_candidate() is None
    assert champions(db) == ["v1"]
    with db.session() as session:
        [row] = session.exec(select(AuditLog).where(AuditLog.action == "reject")).all()
    assert row.actor == "shadow" and row.detail.startswith("v2: shadow comparison")


@pytest.mark.parametrize("status", ["champion", "rejected"])
def test_only_a_candidate_can_be_rejected(registry, db, status):
    register(registry)
    if status == "rejected":
        registry.register(writer({}), meta(), promote=False, rejected=True, actor="test")
    version = "v1" if status == "champion" else "v2"
    with pytest.raises(UserError, match="only a candidate"):
        registry.reject(version, "shadow", "no")
    assert registry.get(version).status == status and champions(db) == ["v1"]


def test_a_newer_candidate_supersedes_the_older_ones(registry):
    from model.challenger import supersede

    register(registry)
    register(registry, promote=False)  # v2
    register(registry, promote=False)  # v3
    register(registry, promote=False)  # v4
    assert supersede(registry, "v4", actor="system") == ["v2", "v3"]
    statuses = {info.version: (info.status, info.reasons) for info in registry.list_versions()}
    assert statuses["v4"] == ("candidate", [])
    assert statuses["v2"] == ("rejected", ["superseded by v4 before its shadow comparison decided"])
    assert statuses["v3"][0] == "rejected" and statuses["v1"][0] == "champion"
    assert supersede(registry, "v1", actor="system") == []  # a champion supersedes nothing
