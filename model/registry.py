"""Model versions on disk and the champion pointer in the database.

Why it is built this way:

* **Immutable versions.**  A version is written into a staging directory, hashed file by
  file into ``manifest.json``, made read-only, and only then renamed to
  ``<home>/models/<version>/``; a rename is atomic, so a version directory is either
  complete or absent.  An existing directory is never overwritten.  The sha256 of the
  manifest is stored in ``ModelVersion.sha256``, so a manifest edited on disk is caught too.
* **A store can move.**  ``ModelVersion.artifact_dir`` holds the folder relative to the models
  folder (the version's name), resolved against the models folder of the home in use: a home
  copied, restored from a backup or mounted elsewhere serves its own files, never those of the
  place it came from, and needs no database edit.
* **One transaction per pointer switch.**  Status changes and the ``ChampionEvent`` row
  commit together; the rows are locked first so two concurrent promotions cannot leave two
  champions (PostgreSQL; SQLite serialises writers anyway).
* **Damage is reported, never silently served or hidden.**  Loading verifies every file.
  If the champion's artifacts are broken, the newest good version from the champion
  history serves instead and the result says which version serves and why.  The database
  pointer is *not* moved by a read (a score request should not rewrite history, and the
  operator must notice the damage): ``churnguard rollback`` or ``promote`` moves it, and
  ``models`` shows the damage.
* **In-process cache.**  The bot scores many clients with one model; the champion is loaded
  once per (version, manifest sha) and the pointer is re-read at most once per second, and
  at once after a switch made through this registry.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import math
import os
import re
import shutil
import stat
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any, Generic, TypeVar

from sqlalchemy import update
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, col, select

from model.advice import PICK_A_VERSION, PROMOTE_A_VERSION, RETRAIN_DAMAGED, TRAIN
from storage.db import Database
from storage.errors import Advice, NotFound, UserError
from storage.tables import AuditLog, ChampionEvent, ModelVersion, utcnow

log = logging.getLogger(__name__)

MANIFEST = "manifest.json"
STAGING_PREFIX = ".staging-"
STALE_STAGING_SECONDS = 6 * 3600
_VERSION = re.compile(r"^v([1-9][0-9]{0,8})$")

CANDIDATE, CHAMPION, RETIRED, REJECTED = "candidate", "champion", "retired", "rejected"

M = TypeVar("M")


class ArtifactError(Exception):
    """A version's files do not match its manifest (or are gone).

    The message names the version folder and the file inside it, never the absolute path:
    it reaches chat users (a damaged champion's warning on every score).  ``path`` keeps the
    full location for the service log.
    """

    def __init__(self, message: str, path: Path | None = None) -> None:
        super().__init__(message)
        self.path = path


class NoChampion(UserError):
    """Nothing can serve: no champion yet, or every candidate is damaged."""

    exit_code = 1


@dataclass(frozen=True)
class NewVersion:
    """What the registry stores about a trained model besides its files."""

    threshold: float
    seed: int
    train_rows: int
    metrics: dict[str, Any] = field(default_factory=dict)
    reasons: list[str] = field(default_factory=list)
    batch_ids: list[int] = field(default_factory=list)
    training_seconds: float = 0.0


@dataclass(frozen=True)
class VersionInfo:
    """A row of ``churnguard models``."""

    version: str
    status: str
    created_at: datetime
    threshold: float
    seed: int
    train_rows: int
    artifact_dir: Path
    sha256: str
    metrics: dict[str, Any]
    reasons: list[str]
    training_seconds: float

    @property
    def is_champion(self) -> bool:
        return self.status == CHAMPION

    @classmethod
    def from_row(cls, row: ModelVersion, models_dir: Path) -> VersionInfo:
        """The row with its folder resolved against this home's models folder (see ``artifact_path``)."""
        return cls(
            version=row.version,
            status=row.status,
            created_at=row.created_at,
            threshold=row.threshold,
            seed=row.seed,
            train_rows=row.train_rows,
            artifact_dir=artifact_path(models_dir, row.artifact_dir),
            sha256=row.sha256,
            metrics=dict(row.metrics or {}),
            reasons=list(row.reasons or []),
            training_seconds=row.training_seconds,
        )

    def to_dict(self) -> dict[str, Any]:
        return {
            "version": self.version,
            "status": self.status,
            "champion": self.is_champion,
            "created_at": self.created_at.isoformat(timespec="seconds"),
            "threshold": self.threshold,
            "seed": self.seed,
            "train_rows": self.train_rows,
            "artifact_dir": str(self.artifact_dir),
            "sha256": self.sha256,
            "metrics": self.metrics,
            "reasons": self.reasons,
            "training_seconds": self.training_seconds,
        }


@dataclass(frozen=True)
class Serving(Generic[M]):
    """The model that answers, and why it may not be the one the pointer names."""

    version: str
    model: M
    threshold: float
    pointer: str  # the version the database names as champion
    problems: tuple[str, ...] = ()

    @property
    def is_fallback(self) -> bool:
        return self.version != self.pointer


@dataclass(frozen=True)
class Switch:
    """The outcome of promote / rollback."""

    version: str
    previous: str | None
    action: str
    skipped: tuple[str, ...] = ()  # broken versions passed over by a rollback
    note: str = ""

    def to_dict(self) -> dict[str, Any]:
        return {"version": self.version, "previous": self.previous, "action": self.action,
                "skipped": list(self.skipped), "note": self.note}


# --------------------------------------------------------------------------------------------
# Files
# --------------------------------------------------------------------------------------------

def _sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def stored_artifact_dir(version: str) -> str:
    """What ``ModelVersion.artifact_dir`` holds for a new version: its folder's path relative to
    the models folder (``<CHURNGUARD_HOME>/models``), i.e. the version's name.  Never an absolute
    path: a home that is copied, restored or mounted elsewhere must serve its own files, not
    those of the place it came from."""
    return version


def artifact_path(models_dir: Path, stored: str) -> Path:
    """The folder a ``ModelVersion.artifact_dir`` names: a relative path is resolved against
    the *current* models folder.  An absolute path (a row the migration to relative paths could
    not place, see storage/migrations/versions/0002_relative_model_dirs.py) is used as it is."""
    path = Path(stored)
    return path if path.is_absolute() else (Path(models_dir) / path).resolve()


def write_manifest(directory: Path, version: str) -> str:
    """Hash every file under ``directory`` into ``manifest.json``; return the manifest's sha256."""
    files: dict[str, dict[str, Any]] = {}
    for path in sorted(p for p in directory.rglob("*") if p.is_file()):
        relative = path.relative_to(directory).as_posix()
        if relative == MANIFEST:
            continue
        files[relative] = {"sha256": _sha256_file(path), "bytes": path.stat().st_size}
    if not files:
        raise ArtifactError(f"version {version} has no files to register")
    body = json.dumps({"version": version, "created_at": utcnow().isoformat(), "files": files},
                      indent=2, sort_keys=True).encode()
    (directory / MANIFEST).write_bytes(body)
    return hashlib.sha256(body).hexdigest()


def verify_artifacts(directory: Path, expected_sha256: str) -> None:
    """Raise ``ArtifactError`` naming the first problem: missing dir, manifest, file, or a changed byte."""
    folder = directory.name
    if not directory.is_dir():
        raise ArtifactError(f"the model folder {folder} is missing", directory)
    manifest_path = directory / MANIFEST
    try:
        body = manifest_path.read_bytes()
    except OSError as error:
        raise ArtifactError(f"{folder}/{MANIFEST} cannot be read: {error.strerror or 'error'}", manifest_path) \
            from error
    if hashlib.sha256(body).hexdigest() != expected_sha256:
        raise ArtifactError(f"{folder}/{MANIFEST} does not match the sha256 recorded at registration", manifest_path)
    try:
        files: dict[str, dict[str, Any]] = json.loads(body)["files"]
    except (ValueError, KeyError, TypeError) as error:
        raise ArtifactError(f"{folder}/{MANIFEST} is not a valid manifest", manifest_path) from error
    for relative, entry in sorted(files.items()):
        path = directory / relative
        if not path.is_file():
            raise ArtifactError(f"{folder}/{relative} is missing", path)
        if _sha256_file(path) != entry.get("sha256"):
            raise ArtifactError(f"{folder}/{relative} is corrupted (sha256 differs from the manifest)", path)


def _seal(directory: Path) -> None:
    """Read-only files and directories: immutability a careless edit will trip over."""
    for path in sorted(directory.rglob("*"), key=lambda p: len(p.parts), reverse=True):
        mode = stat.S_IRUSR | stat.S_IRGRP | stat.S_IROTH
        if path.is_dir():
            mode |= stat.S_IXUSR | stat.S_IXGRP | stat.S_IXOTH
        path.chmod(mode)
    directory.chmod(0o555)


def _remove_tree(directory: Path) -> None:
    """Delete a (possibly sealed) tree: read-only directories need their write bit back first."""
    if not directory.exists():
        return

    def unlock(func: Any, path: str, _exc: Any) -> None:
        with contextlib.suppress(OSError):
            os.chmod(os.path.dirname(path), 0o755)
            os.chmod(path, 0o755)
        func(path)

    for path in [directory, *directory.rglob("*")]:
        if path.is_dir() and not path.is_symlink():
            with contextlib.suppress(OSError):
                path.chmod(0o755)
    shutil.rmtree(directory, onerror=unlock)


# --------------------------------------------------------------------------------------------
# Registry
# --------------------------------------------------------------------------------------------

class Registry(Generic[M]):
    """Versions of one store.  ``loader`` turns a version directory into a model
    (``ChurnModel.load`` in production), which keeps the registry free of training code."""

    POINTER_TTL_SECONDS = 1.0
    FALLBACK_RETRY_SECONDS = 30.0

    def __init__(self, db: Database, models_dir: Path, loader: Callable[[Path], M]) -> None:
        self.db = db
        self.models_dir = Path(models_dir)
        self.loader = loader
        self._lock = threading.RLock()
        self._cache: dict[tuple[str, str], M] = {}
        self._serving: Serving[M] | None = None
        self._serving_key: tuple[str, str] | None = None
        self._checked_at = -1e9
        self._fallback_at = -1e9

    # ---------------------------------------------------------------- reading
    def list_versions(self) -> list[VersionInfo]:
        with self.db.read_session() as session:
            rows = session.exec(select(ModelVersion)).all()
        infos = (VersionInfo.from_row(row, self.models_dir) for row in rows)
        return sorted(infos, key=lambda info: _number(info.version))

    def get(self, version: str) -> VersionInfo:
        """The version by name ("v3", "3" and "V3" all work); ``NotFound`` otherwise."""
        name = normalise_version(version)
        with self.db.read_session() as session:
            row = session.exec(select(ModelVersion).where(ModelVersion.version == name)).first()
        if row is None:
            known = [info.version for info in self.list_versions()]
            hint = f"known versions: {', '.join(known)}" if known else "no model has been trained yet"
            raise NotFound(f"no model version {version!r}; {hint}", version=version)
        return VersionInfo.from_row(row, self.models_dir)

    def champion(self) -> VersionInfo | None:
        """The version the database names as champion (its files are not checked here)."""
        with self.db.read_session() as session:
            row = _champion_row(session)
        return VersionInfo.from_row(row, self.models_dir) if row is not None else None

    def champion_history(self) -> list[str]:
        """Champions as a stack, oldest first: promotions push, rollbacks pop.

        Rollback walks this stack, so rolling back twice goes two champions back instead of
        flipping between the last two.
        """
        with self.db.read_session() as session:
            events = session.exec(select(ChampionEvent).order_by(col(ChampionEvent.id))).all()
        stack: list[str] = []
        for event in events:
            if event.action == "rollback" and event.version in stack:
                while stack and stack[-1] != event.version:
                    stack.pop()
            else:
                if event.version in stack:
                    stack.remove(event.version)
                stack.append(event.version)
        return stack

    def check(self, version: str) -> str | None:
        """None when the version's files match its manifest, else the problem in words."""
        info = self.get(version)
        try:
            verify_artifacts(info.artifact_dir, info.sha256)
        except ArtifactError as error:
            return str(error)
        return None

    def load(self, version: str) -> M:
        """Load one version after checking every file; ``ArtifactError`` if damaged."""
        info = self.get(version)
        return self._load(info)

    def _load(self, info: VersionInfo) -> M:
        key = (info.version, info.sha256)
        with self._lock:
            cached = self._cache.get(key)
        if cached is not None:
            return cached
        verify_artifacts(info.artifact_dir, info.sha256)
        try:
            model = self.loader(info.artifact_dir)
        except Exception as error:  # a file that hashes right but cannot be read is damage too
            # The loader's own text may hold the folder's absolute path: it goes to the log only.
            log.error("version %s cannot be loaded from %s: %s", info.version, info.artifact_dir, error)
            raise ArtifactError(f"version {info.version} cannot be loaded ({type(error).__name__})",
                                info.artifact_dir) from error
        with self._lock:
            self._cache = {k: v for k, v in self._cache.items() if k[0] != info.version}
            self._cache[key] = model
            # Keep few models in memory: the champion and a fallback are all that serve.
            while len(self._cache) > 3:
                self._cache.pop(next(iter(self._cache)))
        return model

    def serving(self) -> Serving[M]:
        """The model that should answer now: the champion, or the newest good previous champion.

        Raises ``NoChampion`` when there is none.  Cheap when nothing changed: the pointer is
        read at most once per ``POINTER_TTL_SECONDS``.
        """
        now = time.monotonic()
        with self._lock:
            current = self._serving
            fresh = now - self._checked_at < self.POINTER_TTL_SECONDS
            if current is not None and fresh:
                return current
        pointer = self.champion()
        if pointer is None:
            self.invalidate()
            message, advice = _no_champion_message(self.list_versions())
            raise NoChampion(message, advice=advice)
        key = (pointer.version, pointer.sha256)
        with self._lock:
            if (
                self._serving is not None
                and self._serving_key == key
                and (not self._serving.is_fallback or now - self._fallback_at < self.FALLBACK_RETRY_SECONDS)
            ):
                self._checked_at = now
                return self._serving
        result = self._resolve(pointer)
        with self._lock:
            self._serving, self._serving_key, self._checked_at = result, key, time.monotonic()
            if result.is_fallback:
                self._fallback_at = self._checked_at
        return result

    def _resolve(self, pointer: VersionInfo) -> Serving[M]:
        problems: list[str] = []
        try:
            return Serving(pointer.version, self._load(pointer), pointer.threshold, pointer.version)
        except ArtifactError as error:
            problems.append(f"champion {pointer.version}: {error}")
            log.error("champion %s cannot serve: %s (%s)", pointer.version, error, error.path)
        for version in reversed(self.champion_history()):
            if version == pointer.version:
                continue
            try:
                info = self.get(version)
                model = self._load(info)
            except (ArtifactError, NotFound) as error:
                problems.append(f"{version}: {error}")
                continue
            problems.append(f"serving {version}, the newest previous champion whose files are intact")
            log.error("falling back to model %s because champion %s is damaged (pointer left unchanged; "
                      "restore the files or run churnguard rollback)", version, pointer.version)
            return Serving(version, model, info.threshold, pointer.version, tuple(problems))
        raise NoChampion(
            f"champion {pointer.version} cannot be loaded and no previous champion is intact: "
            + "; ".join(problems),
            advice=RETRAIN_DAMAGED,
            problems=problems,
        )

    def invalidate(self) -> None:
        with self._lock:
            self._serving = None
            self._serving_key = None
            self._checked_at = -1e9

    # ---------------------------------------------------------------- writing
    def next_version(self) -> str:
        """One past the highest version in the database or on disk (a crashed run may have
        left a directory whose row never committed; its number is not reused)."""
        numbers = [_number(info.version) for info in self.list_versions()]
        if self.models_dir.is_dir():
            numbers += [_number(p.name) for p in self.models_dir.iterdir() if _VERSION.match(p.name)]
        return f"v{max(numbers, default=0) + 1}"

    def register(
        self,
        write: Callable[[Path, str], object],
        meta: NewVersion,
        *,
        promote: bool,
        rejected: bool = False,
        actor: str = "system",
        version: str | None = None,
    ) -> VersionInfo:
        """Write a new immutable version and record it; with ``promote`` it becomes champion in
        the same transaction.

        ``write(directory, version)`` puts the artifacts (model, card, report) into a staging
        directory.  Any failure removes the staging directory and records nothing.
        """
        self.models_dir.mkdir(parents=True, exist_ok=True)
        self._sweep_staging()
        name = normalise_version(version) if version else self.next_version()
        target = self.models_dir / name
        if target.exists():
            raise UserError(f"model directory {target} already exists; versions are never overwritten",
                            version=name)
        staging = Path(tempfile.mkdtemp(prefix=f"{STAGING_PREFIX}{name}-", dir=self.models_dir))
        moved = False
        try:
            write(staging, name)
            sha = write_manifest(staging, name)
            _seal(staging)
            status = CHAMPION if promote else (REJECTED if rejected else CANDIDATE)
            with self.db.session() as session:
                row = ModelVersion(
                    version=name,
                    status=CANDIDATE,
                    artifact_dir=stored_artifact_dir(name),
                    sha256=sha,
                    threshold=float(meta.threshold),
                    seed=int(meta.seed),
                    train_rows=int(meta.train_rows),
                    batch_ids=[int(b) for b in meta.batch_ids],
                    metrics=_json_safe(meta.metrics),
                    reasons=[str(r) for r in meta.reasons],
                    training_seconds=float(meta.training_seconds),
                )
                if status != CHAMPION:
                    row.status = status
                session.add(row)
                try:
                    session.flush()
                except IntegrityError as error:
                    raise UserError(f"model version {name} was registered concurrently; run train again",
                                    version=name) from error
                if promote:
                    self._switch(session, name, action="promote", actor=actor)
                    session.refresh(row)
                if target.exists():
                    raise UserError(f"model directory {target} already exists; versions are never overwritten",
                                    version=name)
                staging.chmod(0o755)
                staging.rename(target)
                target.chmod(0o555)
                moved = True
            info = VersionInfo.from_row(row, self.models_dir)
        except BaseException:
            if moved:
                _remove_tree(target)
            _remove_tree(staging)
            raise
        if promote:
            self.invalidate()
        log.info("registered model %s (%s) in %s", name, info.status, target)
        return info

    def promote(self, version: str, actor: str) -> Switch:
        """Make ``version`` the champion (its files must be intact)."""
        info = self.get(version)
        problem = self.check(info.version)
        if problem is not None:
            raise UserError(f"cannot promote {info.version}: {problem}", version=info.version)
        if info.status == CHAMPION:
            return Switch(info.version, info.version, "promote", note=f"{info.version} is already the champion")
        note = ""
        if info.status == REJECTED:
            note = "the acceptance gate had rejected this version: " + "; ".join(info.reasons)
        with self.db.session() as session:
            previous = self._switch(session, info.version, action="promote", actor=actor)
            _audit(session, actor, "promote", f"{previous or '-'} -> {info.version}")
        self.invalidate()
        return Switch(info.version, previous, "promote", note=note)

    def rollback(self, actor: str) -> Switch:
        """Return to the previous champion, passing over versions whose files are damaged."""
        current = self.champion()
        if current is None:
            raise NoChampion("nothing to roll back: there is no champion yet")
        history = [v for v in self.champion_history() if v != current.version]
        skipped: list[str] = []
        for version in reversed(history):
            try:
                problem = self.check(version)
            except NotFound:
                problem = "no longer registered"
            if problem is None:
                with self.db.session() as session:
                    previous = self._switch(session, version, action="rollback", actor=actor)
                    _audit(session, actor, "rollback", f"{previous} -> {version}"
                           + (f" (skipped damaged {', '.join(skipped)})" if skipped else ""))
                self.invalidate()
                return Switch(version, previous, "rollback", tuple(skipped))
            skipped.append(version)
            log.warning("rollback passes over %s: %s", version, problem)
        why = f" (damaged: {', '.join(skipped)})" if skipped else ""
        raise UserError(
            f"no previous champion to roll back to{why}; {current.version} stays champion.",
            advice=PROMOTE_A_VERSION,
            champion=current.version,
            skipped=skipped,
        )

    def newest_candidate(self) -> VersionInfo | None:
        """The newest version with status ``candidate`` (passed the gate, never promoted): the
        one that runs in shadow beside the champion (``CHURNGUARD_SHADOW``)."""
        candidates = [info for info in self.list_versions() if info.status == CANDIDATE]
        return candidates[-1] if candidates else None

    def reject(self, version: str, actor: str, reason: str) -> VersionInfo:
        """Turn a candidate down after all (its shadow comparison, or a newer candidate): status
        ``rejected``, the reason added to its reasons, audited.  Only a candidate can be rejected
        this way: a champion leaves through promote or rollback."""
        info = self.get(version)
        if info.status != CANDIDATE:
            raise UserError(f"{info.version} is {info.status}, not a candidate: only a candidate can be rejected",
                            version=info.version)
        with self.db.session() as session:
            row = session.exec(select(ModelVersion).where(ModelVersion.version == info.version)
                               .with_for_update()).one()
            if row.status != CANDIDATE:  # changed since it was read
                raise UserError(f"{info.version} is {row.status} now, not a candidate", version=info.version)
            row.status = REJECTED
            row.reasons = [*list(row.reasons or []), str(reason)]
            session.add(row)
            _audit(session, actor, "reject", f"{info.version}: {reason}")
            session.flush()
            rejected = VersionInfo.from_row(row, self.models_dir)
        log.info("model %s rejected by %s: %s", info.version, actor, reason)
        return rejected

    def _switch(self, session: Session, version: str, *, action: str, actor: str) -> str | None:
        """Inside the caller's transaction: retire the champion, crown ``version``, log the event."""
        # Lock every version row first so a concurrent switch waits instead of racing.
        session.exec(select(ModelVersion).with_for_update()).all()
        previous_row = _champion_row(session)
        previous = previous_row.version if previous_row is not None else None
        session.execute(
            update(ModelVersion)
            .where(col(ModelVersion.status) == CHAMPION, col(ModelVersion.version) != version)
            .values(status=RETIRED)
        )
        changed = session.execute(
            update(ModelVersion).where(col(ModelVersion.version) == version).values(status=CHAMPION)
        )
        if getattr(changed, "rowcount", 1) == 0:
            raise NotFound(f"no model version {version!r}", version=version)
        session.add(ChampionEvent(version=version, previous_version=previous, action=action, actor=actor))
        session.flush()
        return previous

    def _sweep_staging(self) -> None:
        """Remove staging directories a killed process left behind (old enough to be dead)."""
        cutoff = time.time() - STALE_STAGING_SECONDS
        for path in self.models_dir.glob(f"{STAGING_PREFIX}*"):
            with contextlib.suppress(OSError):
                if path.stat().st_mtime < cutoff:
                    _remove_tree(path)


def normalise_version(version: str) -> str:
    text = str(version).strip().lower()
    if text.isdigit():
        text = f"v{int(text)}"
    if not _VERSION.match(text):
        raise NotFound(f"{version!r} is not a model version (versions look like v1, v2, ...)", version=version)
    return text


def _number(version: str) -> int:
    found = _VERSION.match(version)
    return int(found.group(1)) if found else 0


def _champion_row(session: Session) -> ModelVersion | None:
    return session.exec(
        select(ModelVersion).where(ModelVersion.status == CHAMPION).order_by(col(ModelVersion.id).desc())
    ).first()


def _audit(session: Session, actor: str, action: str, detail: str, result: str = "ok") -> None:
    session.add(AuditLog(actor=actor[:64], action=action, detail=detail, result=result))


def _no_champion_message(versions: list[VersionInfo]) -> tuple[str, Advice]:
    if not versions:
        return "no model yet", TRAIN
    rejected = [info.version for info in versions if info.status == REJECTED]
    return (
        f"no champion model: {len(versions)} version(s) trained"
        + (f", {len(rejected)} rejected by the acceptance gate" if rejected else ""),
        PICK_A_VERSION,
    )


def _json_safe(value: Any) -> Any:
    """Metrics go into a JSON column: numpy scalars, paths and NaN must not reach the driver."""
    if isinstance(value, dict):
        return {str(key): _json_safe(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [_json_safe(item) for item in value]
    if hasattr(value, "tolist") and not isinstance(value, str | bytes):
        return _json_safe(value.tolist())
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if value is None or isinstance(value, bool | int | str):
        return value
    if isinstance(value, Path | datetime):
        return str(value)
    return str(value)


__all__ = [
    "CANDIDATE",
    "CHAMPION",
    "REJECTED",
    "RETIRED",
    "ArtifactError",
    "NewVersion",
    "NoChampion",
    "Registry",
    "Serving",
    "Switch",
    "VersionInfo",
    "artifact_path",
    "normalise_version",
    "stored_artifact_dir",
    "verify_artifacts",
    "write_manifest",
]
