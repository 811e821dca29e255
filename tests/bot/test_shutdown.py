"""`churnguard run` ends together with its training worker (issue 11, item 2).

Real processes over real HTTP: the service in a subprocess, polling the Bot API emulator in
this process, training in its spawned worker.  The service is killed (``kill -9``) during an
admin's /retrain, and stopped (SIGTERM) during the retrain an upload started in the
background; the store is then read directly.
"""

from __future__ import annotations

import asyncio
import contextlib
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import IO, TypeVar

import psutil
import pytest

from bot.emulator import Emulator
from bot.training import process_trainer
from jobs.owed import owed_jobs
from jobs.runner import JobRunner
from jobs.runs import RunView, recent_runs
from model.service import open_registry
from storage.db import Database
from storage.ingest import ingest_file
from storage.schema import schema_from_settings
from tests.bot.churnguard_fixtures import (  # noqa: F401
    ADMIN,
    live_bot,
    make_settings,
    trained_home,
    trained_template,
)
from tests.bot.test_commands import START_TIMEOUT, environment
from tests.conftest import TELCO

WORKER_GONE_SECONDS = 5.0  # "within a few seconds" of the service's death
STOP_DEADLINE_SECONDS = 5.0  # SIGTERM to exit; docker stop allows 10
LINES = TELCO.read_text(encoding="utf-8").splitlines()
T = TypeVar("T")


class Service:
    """``churnguard run`` in a subprocess; its log goes to a file (a pipe nobody reads would fill)."""

    def __init__(self, home: Path, emulator: Emulator, workdir: Path, *, tuning_seconds: float) -> None:
        self.log_path = workdir / f"service-{time.monotonic_ns()}.log"
        self._log: IO[str] = self.log_path.open("w")
        env = environment(home, TELEGRAM_BOT_TOKEN=emulator.token, TELEGRAM_API_BASE_URL=emulator.base_url,
                          CHURNGUARD_ADMIN_IDS=str(ADMIN), CHURNGUARD_INGEST_CRON="off", CHURNGUARD_DRIFT_CRON="off",
                          CHURNGUARD_PERFORMANCE_CRON="off", CHURNGUARD_RETRAIN_CRON="off")
        env["CHURNGUARD_TUNING_SECONDS"] = f"{tuning_seconds:g}"
        self.process = subprocess.Popen([sys.executable, "-m", "churnguard", "run"], cwd=workdir, env=env,
                                        stdout=self._log, stderr=subprocess.STDOUT, text=True)
        self.psutil = psutil.Process(self.process.pid)
        self.seen_workers: list[psutil.Process] = []  # cleaned up after the test, even when orphaned

    @property
    def log(self) -> str:
        return self.log_path.read_text(encoding="utf-8", errors="replace")

    def workers(self) -> list[psutil.Process]:
        """The service's spawned worker processes (multiprocessing's resource tracker excluded)."""
        found = []
        with contextlib.suppress(psutil.Error):
            for child in self.psutil.children(recursive=True):
                with contextlib.suppress(psutil.Error):
                    if "spawn_main" in " ".join(child.cmdline()):
                        found.append(child)
        self.seen_workers += [worker for worker in found if worker not in self.seen_workers]
        return found

    def close(self) -> None:
        if self.process.poll() is None:
            self.process.kill()
            self.process.wait(10)
        self._log.close()


@pytest.fixture
def services(emulator: Emulator, tmp_path: Path) -> Iterator[Callable[..., Service]]:
    started: list[Service] = []
    stray: list[psutil.Process] = []

    def start(home: Path, *, tuning_seconds: float) -> Service:
        emulator.add_user(ADMIN)
        service = Service(home, emulator, tmp_path, tuning_seconds=tuning_seconds)
        started.append(service)
        emulator.wait_for(lambda: service.process.poll() is not None or emulator.calls("getUpdates"),
                          timeout=START_TIMEOUT, what="the service to poll")
        assert service.process.poll() is None, service.log
        return service

    try:
        yield start
    finally:
        for service in started:
            service.workers()
            stray += service.seen_workers
            service.close()
        for worker in stray:  # never leave a trainer behind, whatever the test found
            with contextlib.suppress(psutil.Error):
                worker.kill()


def wait_until(check: Callable[[], T | None], timeout: float, what: str) -> T:
    deadline = time.monotonic() + timeout
    while True:
        found = check()
        if found:
            return found
        if time.monotonic() > deadline:
            raise TimeoutError(f"timed out waiting for {what}")
        time.sleep(0.1)


def training_worker(service: Service) -> psutil.Process:
    """The worker, once the training proper (the hyper-parameter search) is under way."""
    wait_until(lambda: "retrain: tuning" in service.log or service.process.poll() is not None, 180,
               "the retrain to reach the hyper-parameter search")
    assert service.process.poll() is None, service.log
    [worker] = service.workers()
    return worker


def model_versions(home: Path) -> list[tuple[str, str]]:
    settings = make_settings(home)
    db = Database(settings.database_url)
    try:
        return [(v.version, v.status) for v in open_registry(db, settings).list_versions()]
    finally:
        db.dispose()


def store_state(home: Path) -> tuple[list[RunView], list[tuple[str, str]]]:
    """The retrain runs (newest first) and the owed follow-ups (job, trigger)."""
    db = Database(make_settings(home).database_url)
    try:
        return recent_runs(db, job="retrain"), [(o.job, o.trigger) for o in owed_jobs(db)]
    finally:
        db.dispose()


def test_kill_9_during_retrain_takes_the_worker_along_and_nothing_is_registered_after(
        trained_home: Path, emulator: Emulator, services: Callable[..., Service]) -> None:  # noqa: F811
    before = model_versions(trained_home)
    service = services(trained_home, tuning_seconds=30)
    emulator.wait_for_replies(emulator.inject_message(ADMIN, "/retrain"), timeout=30)
    worker = training_worker(service)

    service.process.kill()  # kill -9: no handler runs, no cleanup
    service.process.wait(10)
    _, alive = psutil.wait_procs([worker], timeout=WORKER_GONE_SECONDS)

    assert alive == [], f"the training worker {worker.pid} outlived the service"
    # an orphan used to register and promote a champion about 30 s later; nothing may appear now
    time.sleep(2)
    assert model_versions(trained_home) == before
    assert not list((trained_home / "models").glob(".staging-*"))


def test_sigterm_during_an_uploads_retrain_exits_in_seconds_and_the_next_start_finishes_the_follow_ups(
        trained_home: Path, emulator: Emulator, services: Callable[..., Service]) -> None:  # noqa: F811
    before = model_versions(trained_home)
    service = services(trained_home, tuning_seconds=30)
    batch = ("\n".join([LINES[0], *LINES[1:1501]]) + "\n").encode("utf-8")  # labelled: a retrain follows
    reply = emulator.wait_for_replies(emulator.inject_document(ADMIN, "april.csv", batch), timeout=60)[0]
    assert "then a retrain on the new labels" in reply.shown_text, reply.shown_text
    worker = training_worker(service)

    started = time.monotonic()
    service.process.send_signal(signal.SIGTERM)
    try:
        code = service.process.wait(timeout=15)
    except subprocess.TimeoutExpired:
        pytest.fail("the service was still running 15 s after SIGTERM")
    took = time.monotonic() - started

    assert code == 0, service.log
    assert took < STOP_DEADLINE_SECONDS, f"the service needed {took:.1f} s to stop"
    assert not worker.is_running() or worker.status() == psutil.STATUS_ZOMBIE
    assert "Traceback" not in service.log, service.log
    runs, owed = store_state(trained_home)
    assert runs[0].outcome == "cancelled" and runs[0].details["trigger"] == "new_labels", runs[0]
    assert owed == [("retrain", "new_labels")]  # drift and performance ran before the SIGTERM
    assert model_versions(trained_home) == before

    # the next start runs the interrupted retrain, once
    restarted = services(trained_home, tuning_seconds=2)
    resumed = wait_until(lambda: next((r for r in store_state(trained_home)[0]
                                       if r.details.get("resumed") and r.outcome != "running"), None), 240,
                         "the resumed retrain to finish")
    assert resumed.outcome == "ok", resumed
    assert resumed.details["trigger"] == "new_labels"
    runs, owed = store_state(trained_home)
    assert owed == []
    assert [r.outcome for r in runs] == ["ok", "cancelled"]
    assert len(model_versions(trained_home)) == len(before) + 1
    restarted.process.send_signal(signal.SIGTERM)
    assert restarted.process.wait(timeout=15) == 0


def test_stopping_the_bot_during_an_admins_retrain_cancels_it_and_says_so(
        trained_home: Path, emulator: Emulator, live_bot) -> None:  # noqa: F811
    bot = live_bot(make_settings(trained_home, emulator, tuning_seconds=60.0))
    before = model_versions(trained_home)
    [progress] = emulator.wait_for_replies(emulator.inject_message(ADMIN, "/retrain"), timeout=30)
    wait_until(lambda: "tuning" in (emulator.message(ADMIN, progress.message_id).text or ""), 180,
               "the retrain to reach the hyper-parameter search")
    workers = [child for child in psutil.Process().children() if "spawn_main" in " ".join(child.cmdline())]
    assert len(workers) == 1

    started = time.monotonic()
    bot.__exit__(None, None, None)  # what SIGTERM does to the service: stop the jobs, then the bot
    took = time.monotonic() - started

    assert took < STOP_DEADLINE_SECONDS, f"the bot needed {took:.1f} s to stop"
    assert psutil.wait_procs(workers, timeout=1)[1] == []
    final = emulator.message(ADMIN, progress.message_id).text or ""
    assert final.startswith("The retrain was cancelled because the service is stopping; nothing was registered"), final
    runs, owed = store_state(trained_home)
    assert runs[0].outcome == "cancelled" and runs[0].details["trigger"] == "manual"
    assert owed == []  # an admin's own request is not repeated by itself at the next start
    assert model_versions(trained_home) == before


def test_the_jobs_shutdown_cancels_a_scheduled_retrain_in_its_worker(trained_home: Path, tmp_path: Path) -> None:  # noqa: F811
    settings = make_settings(trained_home, tuning_seconds=60.0)
    db = Database(settings.database_url)
    batch = tmp_path / "may.csv"
    batch.write_text("\n".join([LINES[0], *LINES[2001:3501]]) + "\n", encoding="utf-8")
    schema, explicit = schema_from_settings(settings)
    ingest_file(db, batch, schema=schema, explicit=explicit)  # new labels: the scheduled retrain trains
    runner = JobRunner(settings, db, None, services={"trainer": process_trainer})
    before = model_versions(trained_home)

    async def scenario() -> tuple[int, list[str], float]:
        lines: list[str] = []
        run = asyncio.create_task(runner.run("retrain", trigger="schedule", progress=lines.append))
        while not any(line.startswith("tuning") for line in lines):
            assert not run.done(), [report.summary for report in run.result()]
            await asyncio.sleep(0.1)
        started = time.monotonic()
        still_running = await runner.shutdown()  # what SIGTERM does to the service's jobs
        [report] = await run
        return still_running, [report.outcome, report.summary], time.monotonic() - started

    try:
        still_running, (outcome, summary), took = asyncio.run(asyncio.wait_for(scenario(), 240))
    finally:
        db.dispose()

    assert still_running == 0 and took < STOP_DEADLINE_SECONDS, took
    assert outcome == "cancelled", summary
    assert [child for child in psutil.Process().children() if "spawn_main" in " ".join(child.cmdline())] == []
    assert model_versions(trained_home) == before


def test_sigint_stops_the_service_as_sigterm_does(trained_home: Path, services: Callable[..., Service]) -> None:  # noqa: F811
    service = services(trained_home, tuning_seconds=2)
    service.process.send_signal(signal.SIGINT)
    assert service.process.wait(timeout=15) == 0, service.log
    assert "SIGINT received: stopping" in service.log and "Traceback" not in service.log
