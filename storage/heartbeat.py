"""The running service's heartbeat: a small JSON file in the home, rewritten every few seconds.

The bot writes it from its event loop (``bot/heartbeat.py``), recording whether the updater
polls (and when a ``getUpdates`` last succeeded) and whether the scheduler runs;
``churnguard health`` reads it.  A file rather than a database row, because:

* writing a row needs SQLite's write lock, which an ingest holds for up to minutes: the
  heartbeat would go stale exactly when the service is busy but healthy;
* reading it costs ``churnguard health`` nothing (no connection, no lock), so health answers
  in well under a second whatever the database is doing;
* it belongs to one home (one service, see ``storage/instance.py``), as the file does.

The file is written to a temporary name and renamed over the old one, so a reader never sees
half a heartbeat.  A clean stop removes it; after ``kill -9`` it stays, and its age (with the
home's service lock, which the kernel released) tells ``health`` what happened.
"""

from __future__ import annotations

import contextlib
import json
import os
import tempfile
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

HEARTBEAT_NAME = "heartbeat.json"


@dataclass(frozen=True)
class Heartbeat:
    """What the service says about itself.  Times are Unix epoch seconds."""

    pid: int
    started_at: float
    written_at: float
    polling: bool  # the updater's polling loop is running
    last_poll_ok: float | None  # the last getUpdates that the Bot API answered
    scheduler: str  # "running", "stopped" or "off" (this service schedules no jobs)
    details: dict[str, Any] = field(default_factory=dict)

    def age(self, now: float | None = None) -> float:
        return (time.time() if now is None else now) - self.written_at


def heartbeat_path(home: Path) -> Path:
    return Path(home) / HEARTBEAT_NAME


def write_heartbeat(home: Path, beat: Heartbeat) -> None:
    """Replace the heartbeat file atomically (a temporary file in the same folder, renamed)."""
    path = heartbeat_path(home)
    handle, temporary = tempfile.mkstemp(prefix=".heartbeat-", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(handle, "w", encoding="utf-8") as stream:
            json.dump(asdict(beat), stream)
        os.replace(temporary, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(temporary)
        raise


def read_heartbeat(home: Path) -> Heartbeat | None:
    """The last heartbeat, or None when there is none (or it cannot be read)."""
    try:
        data = json.loads(heartbeat_path(home).read_text(encoding="utf-8"))
        return Heartbeat(
            pid=int(data["pid"]), started_at=float(data["started_at"]), written_at=float(data["written_at"]),
            polling=bool(data["polling"]),
            last_poll_ok=None if data.get("last_poll_ok") is None else float(data["last_poll_ok"]),
            scheduler=str(data["scheduler"]), details=dict(data.get("details") or {}),
        )
    except (OSError, ValueError, KeyError, TypeError):
        return None


def remove_heartbeat(home: Path, pid: int | None = None) -> None:
    """A clean stop: remove the file (only our own, when ``pid`` is given)."""
    path = heartbeat_path(home)
    if pid is not None:
        beat = read_heartbeat(home)
        if beat is not None and beat.pid != pid:
            return
    with contextlib.suppress(FileNotFoundError):
        path.unlink()


__all__ = ["HEARTBEAT_NAME", "Heartbeat", "heartbeat_path", "read_heartbeat", "remove_heartbeat", "write_heartbeat"]
