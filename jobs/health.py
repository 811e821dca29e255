"""``churnguard health``: is this ChurnGuard able to serve?  Read-only, and fast.

Three checks, one line each, exit 0 (healthy) or 1 (unhealthy); ``--json`` for machines:

* **store** — the store exists and answers a read.  It is opened read-only
  (``Database.open_read_only``): nothing is created or migrated and no write lock is taken,
  so the check answers while an ingest holds SQLite's write lock (WAL readers never wait).
* **model** — some version can serve: the champion's files match its manifest (the
  registry's own sha256 check), or else the newest intact previous champion, which the
  registry then serves (a warning: healthy, but someone must restore or roll back).  No model
  at all, or none intact, is unhealthy: the bot would answer every /score with an apology.
* **service** — the running service's heartbeat (``storage/heartbeat.py``) is fresh, the bot
  polls (a ``getUpdates`` answered recently) and the scheduler runs.  Whether a service runs
  at all is read from the home's service lock (``storage/instance.py``): held means running,
  so a stale heartbeat then means a stuck service; free means none runs, which is unhealthy
  only with ``--service`` (the Docker HEALTHCHECK uses it; a cron or CLI-only install does not).

It imports no pandas, LightGBM or Telegram code: the whole command takes about half a second
(``bench/health.py`` measures it during an ingest).
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING, Any, Literal

from churnguard import emit
from storage.db import Database
from storage.errors import UserError
from storage.heartbeat import Heartbeat, read_heartbeat
from storage.instance import holder

if TYPE_CHECKING:
    from pathlib import Path

    from churnguard import Settings

Status = Literal["ok", "warn", "fail"]
# A heartbeat is written every 5 s: three missed beats and more is a stuck service.
DEFAULT_MAX_AGE_SECONDS = 30.0
# getUpdates long-polls for 10 s, so a healthy bot's polls are answered at least that often.
POLL_MAX_AGE_SECONDS = 60.0
# A service that has just started may not have polled yet.
START_GRACE_SECONDS = 60.0


@dataclass(frozen=True)
class Check:
    name: str
    status: Status
    message: str

    def line(self) -> str:
        return f"{self.status.upper():<4} {self.name}: {self.message}"


def check_store(db: Database) -> Check:
    from sqlalchemy import text

    started = time.perf_counter()
    with db.engine.connect() as connection:
        row = connection.execute(text("SELECT value FROM meta WHERE key = 'schema_version'")).first()
    elapsed = (time.perf_counter() - started) * 1000
    version = row[0] if row is not None else "?"
    return Check("store", "ok", f"{db.safe_url} answers (schema version {version}, read in {elapsed:.0f} ms)")


def check_model(db: Database, models_dir: Path) -> Check:
    """What the registry would serve, judged by the manifests alone (nothing is loaded)."""
    from model.registry import ArtifactError, Registry, verify_artifacts

    def never(_path: Path) -> Any:  # pragma: no cover - health never loads a model
        raise AssertionError("health checks files, it does not load models")

    registry: Registry[Any] = Registry(db, models_dir, never)
    versions = registry.list_versions()
    if not versions:
        return Check("model", "fail", "no model yet: send a labelled CRM export to the bot (or churnguard ingest) "
                                      "and /retrain (or churnguard train)")
    pointer = registry.champion()
    if pointer is None:
        return Check("model", "fail", f"no champion among {len(versions)} version(s): every one was rejected or "
                                      "retired; /promote one or /retrain")
    try:
        verify_artifacts(pointer.artifact_dir, pointer.sha256)
        return Check("model", "ok", f"champion {pointer.version} can serve (its files match the manifest)")
    except ArtifactError as error:
        problems = [f"champion {pointer.version}: {error}"]
    for version in reversed(registry.champion_history()):
        if version == pointer.version:
            continue
        info = registry.get(version)
        try:
            verify_artifacts(info.artifact_dir, info.sha256)
        except ArtifactError as error:
            problems.append(f"{version}: {error}")
            continue
        return Check("model", "warn", f"{problems[0]}; {version}, the newest intact previous champion, serves "
                                      "instead: restore the files, or churnguard rollback / promote")
    return Check("model", "fail", "no model version can serve: " + "; ".join(problems)
                 + ". Restore the model files from a backup, or retrain (churnguard train)")


def _ago(seconds: float) -> str:
    return f"{seconds:.0f} s ago" if seconds < 120 else f"{seconds / 60:.0f} min ago"


def check_service(home: Path, *, required: bool, max_age: float, now: float | None = None) -> Check:
    now = time.time() if now is None else now
    owner = holder(home)
    beat = read_heartbeat(home)
    if owner is None:
        last = f" (last heartbeat {_ago(beat.age(now))}, pid {beat.pid})" if beat is not None else ""
        if required:
            return Check("service", "fail", f"no ChurnGuard service is running on the home {home}{last}")
        return Check("service", "ok", f"no service is running on this home{last}; not required (--service "
                                      "requires one)")
    who = owner.describe() or "a service"
    if beat is None or (owner.pid is not None and beat.pid != owner.pid):
        return Check("service", "fail", f"{who} holds the home but has written no heartbeat yet: still starting "
                                        "(training a first model?) or stuck before the bot started")
    return _judge(beat, who, now=now, max_age=max_age)


def _judge(beat: Heartbeat, who: str, *, now: float, max_age: float) -> Check:
    age = beat.age(now)
    if age > max_age:
        return Check("service", "fail", f"{who}: the heartbeat is {age:.0f} s old (limit {max_age:g} s): the "
                                        "service's event loop is stuck")
    starting = now - beat.started_at < START_GRACE_SECONDS
    problems: list[str] = []
    if not beat.polling:
        problems.append("the bot is not polling for updates")
    elif beat.last_poll_ok is None:
        if not starting:
            problems.append("the Bot API has not answered a single getUpdates")
    elif now - beat.last_poll_ok > POLL_MAX_AGE_SECONDS:
        problems.append(f"the Bot API last answered getUpdates {_ago(now - beat.last_poll_ok)}")
    if beat.scheduler == "stopped":
        problems.append("the job scheduler is not running")
    if problems and starting and not beat.polling:
        return Check("service", "warn", f"{who}: starting ({'; '.join(problems)})")
    if problems:
        return Check("service", "fail", f"{who}: " + "; ".join(problems))
    polled = "not yet" if beat.last_poll_ok is None else _ago(now - beat.last_poll_ok)
    scheduler = "scheduler running" if beat.scheduler == "running" else "no scheduled jobs"
    return Check("service", "ok", f"{who}: polling (last getUpdates answered {polled}), {scheduler}, "
                                  f"heartbeat {_ago(age)}")


def run_checks(settings: Settings, *, require_service: bool, max_age: float) -> list[Check]:
    checks: list[Check] = []
    try:
        db = Database.open_read_only(settings.database_url)
    except UserError as error:
        checks.append(Check("store", "fail", str(error)))
        checks.append(Check("model", "fail", "not checked: no store"))
    else:
        with db:
            checks.append(_guarded("store", lambda: check_store(db)))
            checks.append(_guarded("model", lambda: check_model(db, settings.models_dir)))
    checks.append(_guarded("service", lambda: check_service(settings.home, required=require_service,
                                                            max_age=max_age)))
    return checks


def _guarded(name: str, check: Callable[[], Check]) -> Check:
    """A check that cannot run (a damaged store, an unreadable file) is a failed check, not a crash."""
    try:
        return check()
    except Exception as error:
        return Check(name, "fail", f"{type(error).__name__}: {error}")


def health(args: argparse.Namespace, settings: Settings) -> int:
    """``churnguard health [--service] [--max-age S] [--json]``: exit 0 healthy, 1 unhealthy."""
    max_age = float(getattr(args, "max_age", None) or DEFAULT_MAX_AGE_SECONDS)
    checks = run_checks(settings, require_service=bool(getattr(args, "service", False)), max_age=max_age)
    healthy = all(check.status != "fail" for check in checks)
    payload = {"healthy": healthy, "checks": [asdict(check) for check in checks]}
    emit(args, payload, "\n".join(check.line() for check in checks))
    return 0 if healthy else 1


__all__ = ["DEFAULT_MAX_AGE_SECONDS", "Check", "check_model", "check_service", "check_store", "health", "run_checks"]
