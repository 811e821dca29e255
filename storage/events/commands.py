"""``churnguard features``: the point-in-time feature table of the event history, for people
and other tools.

It writes exactly what a model would see at a date (``features_as_of``): one row per client
active at ``--as-of`` (or the ``--client`` ids given), so that a user can inspect the
features, export them, or check them against their own SQL.  Handlers only translate
between arguments and the storage API; refusals are ``UserError`` (one line, exit 2;
unknown clients exit 1).
"""

from __future__ import annotations

import argparse
import io
import math
import os
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pandas as pd

from churnguard import emit
from storage.db import Database
from storage.errors import UserError
from storage.ids import id_problem, visible

if TYPE_CHECKING:
    from churnguard import Settings

OUTPUT_SUFFIXES = (".csv", ".parquet")
MAX_WINDOW_DAYS = 3660
_FLOAT_FORMAT = "%.10g"  # counts print as 3, not 3.0; ratios keep ten significant digits


def parse_as_of(text: str) -> datetime:
    """``YYYY-MM-DD`` or an ISO date and time (naive = UTC) as naive UTC."""
    value = str(text).strip()
    try:
        moment = datetime.fromisoformat(value)
    except ValueError:
        raise UserError(f"--as-of: {text!r} is not a date; write YYYY-MM-DD or YYYY-MM-DD HH:MM:SS (UTC)",
                        as_of=text) from None
    if moment.tzinfo is not None:
        moment = moment.astimezone(UTC).replace(tzinfo=None)
    if not 1900 <= moment.year <= 2200:
        raise UserError(f"--as-of: {text!r} is outside the years 1900-2200", as_of=text)
    return moment


def parse_windows(text: str | None) -> tuple[int, ...]:
    """``"7,28"`` -> (7, 28): distinct whole numbers of days, 1 to ``MAX_WINDOW_DAYS``."""
    from storage.events.features import DEFAULT_WINDOWS

    if text is None:
        return DEFAULT_WINDOWS
    windows: list[int] = []
    for part in (p.strip() for p in str(text).split(",")):
        if not part.isdigit() or not 1 <= int(part) <= MAX_WINDOW_DAYS:
            raise UserError(f"--windows: {part!r} is not a number of days from 1 to {MAX_WINDOW_DAYS} "
                            "(write them like 7,28,90)", windows=text)
        if int(part) in windows:
            raise UserError(f"--windows: {part} is given twice", windows=text)
        windows.append(int(part))
    return tuple(windows)


def check_output(path: Path | None, suffixes: tuple[str, ...] = OUTPUT_SUFFIXES) -> Path | None:
    """The output path, refused before any work when it cannot be written (or does not end in
    one of ``suffixes``)."""
    if path is None:
        return None
    if path.suffix.lower() not in suffixes:
        raise UserError(f"--output: {path} must end in {' or '.join(suffixes)}", output=str(path))
    if path.is_dir():
        raise UserError(f"--output: {path} is a folder; name a file", output=str(path))
    folder = path.parent if str(path.parent) else Path(".")
    if not folder.is_dir():
        raise UserError(f"--output: cannot write {path}: the folder {folder} does not exist", output=str(path))
    if not os.access(folder, os.W_OK) or (path.exists() and not os.access(path, os.W_OK)):
        raise UserError(f"--output: cannot write {path}: permission denied", output=str(path))
    return path


def write_features(frame: pd.DataFrame, path: Path) -> None:
    """Write CSV or Parquet through a temporary file and a rename: a failure leaves no
    half-written table (and an earlier file at that path stays as it was)."""
    temporary = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        if path.suffix.lower() == ".parquet":
            frame.to_parquet(temporary, index=False)
        else:
            frame.to_csv(temporary, index=False, float_format=_FLOAT_FORMAT, lineterminator="\n")
        os.replace(temporary, path)
    except OSError as error:
        raise UserError(f"--output: cannot write {path}: {error.strerror or error}", output=str(path)) from None
    finally:
        temporary.unlink(missing_ok=True)


def _records(frame: pd.DataFrame) -> list[dict[str, Any]]:
    def plain(value: Any) -> Any:
        if hasattr(value, "item"):
            value = value.item()
        if value is None or (isinstance(value, float) and math.isnan(value)):
            return None
        return value

    return [{str(k): plain(v) for k, v in row.items()} for row in frame.to_dict("records")]


def features(args: argparse.Namespace, settings: Settings) -> int:
    """``churnguard features --as-of D [--windows 7,28] [--client ID ...] [--output FILE] [--json]``."""
    from storage.events.features import DEFAULT_MAX_EVENT_TYPES, features_as_of

    as_of = parse_as_of(args.as_of)
    # Without --windows: the windows models are trained with (CHURNGUARD_FEATURE_WINDOWS).
    windows = parse_windows(args.windows) if args.windows is not None else \
        tuple(int(w) for w in getattr(settings, "feature_windows", None) or parse_windows(None))
    output = check_output(args.output)
    clients = [str(c).strip() for c in args.clients] if args.clients else None
    for client in clients or []:
        problem = id_problem(client)
        if problem is not None:  # the lookup rule of /score and every ingest
            raise UserError(f"--client {client!r}: {problem}", client_id=visible(client))
    cap = int(getattr(settings, "max_event_types", DEFAULT_MAX_EVENT_TYPES))
    with Database(settings.database_url) as db:
        frame = features_as_of(db, as_of, windows=windows, client_ids=clients, max_event_types=cap)
    spec = frame.attrs.get("spec", {})
    dropped = list(spec.get("dropped_types", []))
    payload: dict[str, Any] = {
        "as_of": as_of.isoformat(sep=" "), "windows": list(windows), "clients": len(frame),
        "event_types": list(spec.get("event_types", [])), "dropped_event_types": dropped,
        "columns": [str(c) for c in frame.columns],
    }
    who = "the clients given" if clients else f"clients active at {as_of:%Y-%m-%d %H:%M}"
    note = (f"{len(dropped)} rarer usage event type(s) have no columns (CHURNGUARD_MAX_EVENT_TYPES={cap}): "
            f"{', '.join(dropped[:10])}{' ...' if len(dropped) > 10 else ''}") if dropped else ""
    if output is not None:
        write_features(frame, output)
        payload["output"] = str(output)
        emit(args, payload, f"wrote {len(frame)} {who} x {frame.shape[1] - 1} features to {output}"
             + (f"\n{note}" if note else ""))
        return 0
    if note and not getattr(args, "json", False):
        print(visible(f"churnguard: {note}"), file=sys.stderr)
    if getattr(args, "json", False):
        emit(args, {**payload, "rows": _records(frame)}, "")
        return 0
    if frame.empty:
        print(f"churnguard: no {who}", file=sys.stderr)
    frame.to_csv(_VisibleStdout(), index=False, float_format=_FLOAT_FORMAT, lineterminator="\n")
    return 0


class _VisibleStdout(io.TextIOBase):
    """Stdout for ``to_csv``, written a chunk at a time: stdout is often a terminal, and ids
    or attributes of a store older than the id rule must not carry escapes to it."""

    def write(self, text: str, /) -> int:
        sys.stdout.write(visible(text, keep="\n\t"))
        return len(text)

    def flush(self) -> None:
        sys.stdout.flush()


__all__ = ["check_output", "features", "parse_as_of", "parse_windows", "write_features"]
