"""Training in a child process that only trains: it dies with its parent, stops when the
service stops, and the parent alone registers what it trained (issue 11, item 2)."""

from __future__ import annotations

import subprocess
import sys
import threading
import time
from pathlib import Path

import psutil
import pytest

from bot.training import process_trainer, run_in_worker
from jobs.runner import JobCancelled
from model.service import open_registry
from storage.db import Database
from storage.errors import UserError
from tests.bot import worker_targets
from tests.bot.churnguard_fixtures import make_settings, trained_home, trained_template  # noqa: F401
from tests.conftest import REPO

GONE_SECONDS = 5.0


def test_an_error_in_the_child_comes_back_as_the_same_clear_error(home: Path) -> None:
    settings = make_settings(home)
    db = Database(settings.database_url).create_schema()
    lines: list[str] = []
    try:
        with pytest.raises(UserError, match="no data stored yet"):
            process_trainer(db, settings, actor="test", progress=lines.append)
        assert db.row_counts()["model_version"] == 0
    finally:
        db.dispose()


def test_a_worker_ends_as_soon_as_its_parent_is_killed() -> None:
    parent = subprocess.Popen([sys.executable, "-m", "tests.bot.worker_targets"], cwd=REPO,
                              env={"PYTHONPATH": str(REPO), "PATH": "/usr/bin:/bin"},
                              stdout=subprocess.PIPE, text=True)
    worker: psutil.Process | None = None
    try:
        assert parent.stdout is not None
        line = parent.stdout.readline()  # "worker <pid>", said by the child once it runs
        assert line.startswith("worker "), line
        worker = psutil.Process(int(line.split()[1]))
        assert worker.ppid() == parent.pid

        parent.kill()  # kill -9: the parent runs no cleanup at all
        parent.wait(10)
        _, alive = psutil.wait_procs([worker], timeout=GONE_SECONDS)

        assert alive == [], "the worker outlived its parent"
    finally:
        if parent.poll() is None:
            parent.kill()
        if worker is not None and worker.is_running():
            worker.kill()


def test_cancelling_stops_the_worker_at_once() -> None:
    cancel = threading.Event()
    pids: list[int] = []

    def progress(line: str) -> None:
        pids.append(int(line.split()[1]))
        threading.Timer(0.3, cancel.set).start()

    with pytest.raises(JobCancelled, match="the service is stopping"):
        run_in_worker(worker_targets.wait, 600.0, progress=progress, cancel=cancel)
    assert not psutil.pid_exists(pids[0]) or psutil.Process(pids[0]).status() == psutil.STATUS_ZOMBIE


def test_a_worker_that_dies_is_a_clear_error_not_a_hang() -> None:
    with pytest.raises(RuntimeError, match=r"ended before it finished \(exit code 9\)"):
        run_in_worker(worker_targets.die, 9)


def test_a_retrain_cancelled_mid_training_stops_its_worker_and_registers_nothing(trained_home: Path) -> None:  # noqa: F811
    settings = make_settings(trained_home, tuning_seconds=60.0)
    db = Database(settings.database_url)
    registry = open_registry(db, settings)
    before = [(v.version, v.status) for v in registry.list_versions()]
    cancel = threading.Event()
    lines: list[str] = []
    cancelled_at: list[float] = []

    def progress(line: str) -> None:
        lines.append(line)
        if line.startswith("tuning") and not cancel.is_set():  # the search is under way: SIGTERM now
            cancelled_at.append(time.monotonic())
            cancel.set()

    try:
        with pytest.raises(JobCancelled):
            process_trainer(db, settings, actor="test", progress=progress, registry=registry, cancel=cancel)
        stopped_after = time.monotonic() - cancelled_at[0]
        assert stopped_after < GONE_SECONDS, stopped_after
        assert [(v.version, v.status) for v in registry.list_versions()] == before
        assert not list((trained_home / "models").glob(".staging-*"))
    finally:
        db.dispose()
