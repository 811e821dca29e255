"""Bot round trip: /score through the local Bot API emulator, idle and during a retrain,
against a bare python-telegram-bot echo bot as the floor of this stack.

A round trip is timed from the moment the emulator queues the user's update to the moment
it records the bot's reply (both on the emulator's monotonic clock), so it includes long
polling, PTB's dispatch, the handler (scoring in a worker thread) and the sendMessage call.
20 users send 50 requests each, one after another (each waits for its answer first), all
20 at once.

Phases, in one process and against one emulator:

1. ``echo``: a bare PTB bot that echoes each text (PTB's defaults, same concurrency as
   ChurnGuard's, no rate limiter), the floor this stack allows on this machine; ``echo-4c`` is
   the same bot with ChurnGuard's 4-connection HTTP pool, shown for reference only (a smaller
   pool saves httpcore work per request, see ``bot/app.py``);
2. ``idle``: ChurnGuard's own Application (``bot.app.build_application``) answering /score;
3. ``retrain``: the same while an admin's /retrain trains a challenger in a worker thread.

ChurnGuard runs with its production rate limiter class but with Telegram's global 30 msg/s
pacing off (``overall_max_rate=0``): the emulator has no flood limit, and with pacing on the
bench would measure the pacing, not the bot.

Targets: no errors; p99 within 1.5x the echo bot's p99 (idle and during the retrain); p99
always under 1 s.  Prints a table and writes ``bench/results/bot.json``.

    python bench/bot.py [--users 20] [--requests 50] [--tuning-seconds 8] [--home DIR]
"""

from __future__ import annotations

import argparse
import contextlib
import json
import logging
import os
import platform
import queue
import statistics
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
os.environ.setdefault("MPLBACKEND", "Agg")

from pydantic import SecretStr  # noqa: E402
from telegram import Update  # noqa: E402
from telegram.ext import ContextTypes, MessageHandler, filters  # noqa: E402

from bot.app import CONNECTIONS, BotThread, build_application  # noqa: E402
from bot.commands import ensure_model  # noqa: E402
from bot.emulator import Emulator, Output  # noqa: E402
from bot.emulator.ptb import PollingThread, application_builder  # noqa: E402
from churnguard import SAMPLE_DATA, Settings  # noqa: E402
from storage.db import Database  # noqa: E402

RESULTS = REPO / "bench" / "results" / "bot.json"
ADMIN = 1
FIRST_USER = 1000
CONCURRENCY = 32
REPLY_TIMEOUT = 30.0
RETRAIN_TIMEOUT = 900.0
P99_RATIO_TARGET = 1.5
P99_LIMIT_SECONDS = 1.0


@dataclass
class Phase:
    name: str
    latencies: list[float] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    seconds: float = 0.0
    note: str = ""

    def summary(self) -> dict[str, Any]:
        values = sorted(self.latencies)

        def pct(q: float) -> float | None:
            if not values:
                return None
            return values[min(len(values) - 1, max(0, round(q * len(values)) - 1))]

        return {
            "phase": self.name,
            "requests": len(values) + len(self.errors),
            "answered": len(values),
            "errors": len(self.errors),
            "error_examples": self.errors[:5],
            "p50_ms": None if not values else round(1000 * statistics.median(values), 1),
            "p90_ms": None if not values else round(1000 * (pct(0.90) or 0), 1),
            "p99_ms": None if not values else round(1000 * (pct(0.99) or 0), 1),
            "max_ms": None if not values else round(1000 * values[-1], 1),
            "mean_ms": None if not values else round(1000 * statistics.fmean(values), 1),
            "throughput_rps": None if not self.seconds else round(len(values) / self.seconds, 1),
            "wall_seconds": round(self.seconds, 2),
            "note": self.note,
        }


def client_ids(count: int) -> list[str]:
    """Known clients with history (tenure > 0), so every /score is a real scoring."""
    ids = []
    for line in SAMPLE_DATA.read_text(encoding="utf-8").splitlines()[1:]:
        cells = line.split(",")
        if cells[5] != "0":
            ids.append(cells[0])
        if len(ids) == count:
            break
    return ids


class ReplyWatcher:
    """One thread follows the emulator's output log and hands each bot message to the user
    waiting for it, so 20 waiting users cost one wake-up per message, not 20 transcript scans."""

    def __init__(self, emulator: Emulator) -> None:
        self.emulator = emulator
        self.seen = len(emulator.outputs())
        self.queues: dict[int, queue.SimpleQueue[Output]] = {}
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._run, name="reply-watcher", daemon=True)

    def __enter__(self) -> ReplyWatcher:
        self.thread.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.stop.set()
        self.thread.join(5)

    def inbox(self, chat_id: int) -> queue.SimpleQueue[Output]:
        return self.queues.setdefault(chat_id, queue.SimpleQueue())

    def _run(self) -> None:
        while not self.stop.is_set():
            with contextlib.suppress(TimeoutError):
                self.emulator.wait_for(lambda: len(self.emulator.state._outputs) > self.seen or self.stop.is_set(),
                                       timeout=0.5)
            new = self.emulator.outputs(since_seq=self.seen)
            self.seen += len(new)
            for output in new:
                if output.kind == "message" and output.chat_id is not None:
                    self.inbox(output.chat_id).put(output)


def load(emulator: Emulator, phase: Phase, users: list[int], requests: int, make_text: Any,
         check: Any) -> None:
    """Every user sends ``requests`` messages, each after the previous answer; all users at once."""
    lock = threading.Lock()
    start_gate = threading.Barrier(len(users) + 1)

    with ReplyWatcher(emulator) as watcher:
        for user in users:
            watcher.inbox(user)

        def user_loop(user: int) -> None:
            inbox = watcher.inbox(user)
            start_gate.wait()
            for turn in range(requests):
                text = make_text(user, turn)
                update = emulator.inject_message(user, text)
                try:
                    reply = inbox.get(timeout=REPLY_TIMEOUT)
                except queue.Empty:
                    with lock:
                        phase.errors.append(f"user {user}: no answer to {text!r} within {REPLY_TIMEOUT} s")
                    continue
                latency = reply.at - emulator.injection(update).at
                problem = check(text, emulator.message(user, reply.message_id or 0).text or "")
                with lock:
                    if problem:
                        phase.errors.append(f"user {user}: {problem}")
                    else:
                        phase.latencies.append(latency)

        threads = [threading.Thread(target=user_loop, args=(user,), daemon=True) for user in users]
        for thread in threads:
            thread.start()
        start_gate.wait()
        started = time.monotonic()
        for thread in threads:
            thread.join()
        phase.seconds = time.monotonic() - started


def echo_phase(emulator: Emulator, users: list[int], requests: int, *, connections: int | None = None) -> Phase:
    """The bare echo bot: PTB's defaults (a 256-connection pool), or ``connections`` like ChurnGuard's."""
    async def echo(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        assert update.effective_chat is not None and update.effective_message is not None
        await context.bot.send_message(update.effective_chat.id, update.effective_message.text or "")

    builder = application_builder(emulator).concurrent_updates(CONCURRENCY).job_queue(None)
    if connections is not None:
        builder = builder.connection_pool_size(connections)
    application = builder.build()
    application.add_handler(MessageHandler(filters.TEXT, echo))
    if connections is None:
        phase = Phase("echo", note=f"bare PTB echo bot (PTB defaults), concurrent_updates={CONCURRENCY}: the floor")
    else:
        phase = Phase(f"echo-{connections}c", note=f"the same echo bot with ChurnGuard's {connections}-connection "
                                                   "pool, for reference (not a target)")
    with PollingThread(application):
        load(emulator, phase, users, requests, lambda user, turn: f"/score {user}-{turn}",
             lambda text, reply: None if reply == text else f"echo mismatch: {reply[:60]!r}")
    return phase


def score_check(text: str, reply: str) -> str | None:
    client = text.split(maxsplit=1)[1]
    return None if reply.startswith(f"Client {client}: churn risk ") else f"unexpected answer: {reply[:80]!r}"


def churnguard_phases(emulator: Emulator, settings: Settings, users: list[int], requests: int) -> list[Phase]:
    clients = client_ids(200)

    def score_text(user: int, turn: int) -> str:
        return f"/score {clients[(user * 7 + turn) % len(clients)]}"

    db = Database(settings.database_url)
    application = build_application(settings, db=db, overall_max_rate=0, schedule_jobs=False)
    idle = Phase("idle", note="ChurnGuard /score, nothing else running")
    during = Phase("retrain", note="ChurnGuard /score while /retrain trains a challenger")
    try:
        with BotThread(application):
            # Warm-up: the first score loads the champion from disk (the scorer caches it).
            emulator.wait_for_replies(emulator.inject_message(users[0], f"/score {clients[0]}"), timeout=120)
            load(emulator, idle, users, requests, score_text, score_check)

            started = emulator.wait_for_replies(emulator.inject_message(ADMIN, "/retrain"), timeout=60)[0]
            emulator.wait_for(lambda: len(emulator.message(ADMIN, started.message_id).edits) >= 1, timeout=120,
                              what="the retrain to report progress")
            load(emulator, during, users, requests, score_text, score_check)
            final = emulator.message(ADMIN, started.message_id).text or ""
            covered = not final.startswith(("Retrain finished", "The retrain failed"))
            during.note += "" if covered else " (WARNING: the retrain ended before the load did)"
            emulator.wait_for(
                lambda: (emulator.message(ADMIN, started.message_id).text or "").startswith(
                    ("Retrain finished", "The retrain failed")),
                timeout=RETRAIN_TIMEOUT, what="the retrain to finish")
            during.note += f"; retrain outcome: {(emulator.message(ADMIN, started.message_id).text or '')[:120]!r}"
    finally:
        db.dispose()
    return [idle, during]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--users", type=int, default=20)
    parser.add_argument("--requests", type=int, default=50, help="requests per user")
    parser.add_argument("--tuning-seconds", type=float, default=8.0,
                        help="training budget of the bootstrap model and of the retrain (long enough to "
                             "outlast the load)")
    parser.add_argument("--home", type=Path, default=None, help="store to use (default: a fresh temporary one)")
    parser.add_argument("--output", type=Path, default=RESULTS)
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING)

    load_before = os.getloadavg()
    home = args.home or Path(tempfile.mkdtemp(prefix="churnguard-bench-bot-"))
    users = list(range(FIRST_USER, FIRST_USER + args.users))
    emulator = Emulator().start()
    for user in [ADMIN, *users]:
        emulator.add_user(user)
    settings = Settings(  # type: ignore[call-arg]
        _env_file=None, home=home, admin_ids=[ADMIN], viewer_ids=users,
        telegram_bot_token=SecretStr(emulator.token), telegram_api_base_url=emulator.base_url,
        tuning_seconds=args.tuning_seconds,
        ingest_cron="off", drift_cron="off", performance_cron="off", retrain_cron="off",
    )
    try:
        db = Database(settings.database_url).create_schema()
        try:
            print(f"store {home}: {ensure_model(settings, db, say=lambda _line: None, sample=True)}", flush=True)
        finally:
            db.dispose()
        print(f"echo bot: {args.users} users x {args.requests} requests…", flush=True)
        phases = [echo_phase(emulator, users, args.requests),
                  echo_phase(emulator, users, args.requests, connections=CONNECTIONS)]
        print("ChurnGuard idle, then during a retrain…", flush=True)
        phases += churnguard_phases(emulator, settings, users, args.requests)
    finally:
        emulator.stop()

    rows = [phase.summary() for phase in phases]
    floor = rows[0]["p99_ms"] or 0.0
    checks = {"no_errors": all(row["errors"] == 0 for row in rows)}
    for row in rows:
        if row["phase"] not in ("idle", "retrain"):
            continue
        p99 = row["p99_ms"]
        checks[f"{row['phase']}_p99_within_{P99_RATIO_TARGET}x_echo"] = p99 is not None and p99 <= P99_RATIO_TARGET * floor
        checks[f"{row['phase']}_p99_under_1s"] = p99 is not None and p99 < 1000 * P99_LIMIT_SECONDS
    print()
    print(f"{'phase':<9} {'answered':>8} {'errors':>6} {'p50 ms':>8} {'p90 ms':>8} {'p99 ms':>8} {'max ms':>8} "
          f"{'req/s':>7} {'p99/echo':>8}")
    for row in rows:
        ratio = f"{row['p99_ms'] / floor:.2f}" if floor and row["p99_ms"] is not None else "-"
        print(f"{row['phase']:<9} {row['answered']:>8} {row['errors']:>6} {row['p50_ms']!s:>8} {row['p90_ms']!s:>8} "
              f"{row['p99_ms']!s:>8} {row['max_ms']!s:>8} {row['throughput_rps']!s:>7} {ratio:>8}")
    print(f"\nmachine load average (1 min): {load_before[0]:.2f} before, {os.getloadavg()[0]:.2f} after "
          f"({os.cpu_count()} CPUs); a busy machine shifts every number above")
    for name, ok in checks.items():
        print(f"{'PASS' if ok else 'FAIL'}  {name}")
    payload = {
        "benchmark": "bot /score round trip through the local Bot API emulator",
        "users": args.users, "requests_per_user": args.requests, "tuning_seconds": args.tuning_seconds,
        "machine": {"python": platform.python_version(), "cpus": os.cpu_count(), "platform": platform.platform(),
                    # Other work on the machine shifts every number: record how busy it was.
                    "load_average_1m_before": round(load_before[0], 2),
                    "load_average_1m_after": round(os.getloadavg()[0], 2)},
        "phases": rows, "targets": {"p99_ratio_to_echo": P99_RATIO_TARGET, "p99_limit_ms": 1000 * P99_LIMIT_SECONDS},
        "checks": checks, "passed": all(checks.values()),
        "when": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
    }
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(json.dumps(payload, indent=2) + "\n", encoding="utf-8")
    print(f"\nwritten to {args.output}")
    return 0 if payload["passed"] else 1


if __name__ == "__main__":
    raise SystemExit(main())
