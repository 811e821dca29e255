"""`churnguard health` and `churnguard status` as an operator (and Docker) runs them: real
processes on a real store, a real `churnguard run` against the Bot API emulator.

Speed is measured by bench/health.py; here a held write lock proves the commands *finish*
(with a generous limit) instead of waiting 30 s for SQLite's busy timeout."""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from bot.commands import ensure_model
from bot.emulator import Emulator
from storage.db import Database
from storage.heartbeat import heartbeat_path, read_heartbeat
from tests.bot.churnguard_fixtures import ADMIN, make_settings, trained_home, trained_template  # noqa: F401
from tests.bot.emulator_fixtures import emulator  # noqa: F401
from tests.bot.test_commands import START_TIMEOUT, environment

FINISH_TIMEOUT = 20.0  # far above the 1 s target, far below SQLite's 30 s busy timeout


def churnguard(home: Path, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "churnguard", *args], env=environment(home, **env),
                          capture_output=True, text=True, timeout=FINISH_TIMEOUT)


@pytest.fixture
def write_lock(trained_home: Path) -> Iterator[sqlite3.Connection]:  # noqa: F811
    """The store's write lock, held as an ingest holds it: BEGIN IMMEDIATE and a write, no commit."""
    connection = sqlite3.connect(trained_home / "churnguard.db", timeout=1, isolation_level=None)
    connection.execute("BEGIN IMMEDIATE")
    connection.execute("INSERT INTO meta (key, value) VALUES ('ingest.in_progress', 'yes')")
    try:
        yield connection
    finally:
        connection.execute("ROLLBACK")
        connection.close()


def test_health_and_status_answer_while_an_ingest_holds_the_write_lock(trained_home: Path,  # noqa: F811
                                                                       write_lock: sqlite3.Connection) -> None:
    health = churnguard(trained_home, "health")
    status = churnguard(trained_home, "status", "--json")

    assert health.returncode == 0, health.stdout + health.stderr
    lines = health.stdout.strip().splitlines()
    assert [line.split(":")[0] for line in lines] == ["OK   store", "OK   model", "OK   service"]
    assert "champion v1 can serve" in lines[1]
    assert "no service is running on this home" in lines[2]
    assert status.returncode == 0, status.stderr
    assert json.loads(status.stdout)["champion"] == "v1"
    # Nothing was written: the held transaction is still the only writer, and it still holds.
    assert write_lock.in_transaction


def test_health_and_status_never_create_a_store(tmp_path: Path) -> None:
    home = tmp_path / "nothing-here"

    health = churnguard(home, "health", "--json")
    status = churnguard(home, "status")

    assert health.returncode == 1
    checks = {check["name"]: check for check in json.loads(health.stdout)["checks"]}
    assert checks["store"]["status"] == "fail" and "no store at" in checks["store"]["message"]
    assert status.returncode == 0 and "nothing was ingested yet" in status.stdout
    assert not home.exists()


def _damage(path: Path) -> None:
    path.parent.chmod(0o755)
    path.chmod(0o644)
    path.write_bytes(path.read_bytes()[:-100] + b"x" * 100)


def test_health_fails_when_no_model_version_can_serve(tmp_path: Path) -> None:
    home = tmp_path / "home"
    settings = make_settings(home)
    with Database(settings.database_url) as db:
        db.create_schema()
        assert "champion" in ensure_model(settings, db, say=lambda _line: None, sample=True)
    assert churnguard(home, "health").returncode == 0

    _damage(home / "models" / "v1" / "model.txt")
    health = churnguard(home, "health")
    status = churnguard(home, "status")

    assert health.returncode == 1
    model_line = health.stdout.strip().splitlines()[1]
    assert model_line.startswith("FAIL model: no model version can serve: champion v1: ")
    assert "corrupted (sha256 differs from the manifest)" in model_line
    assert status.returncode == 0 and "champion: v1" in status.stdout  # status reports, health judges


def _wait_for_heartbeat(home: Path, process: subprocess.Popen[str]) -> None:
    deadline = time.monotonic() + START_TIMEOUT
    while time.monotonic() < deadline and process.poll() is None:
        beat = read_heartbeat(home)
        if beat is not None and beat.polling and beat.last_poll_ok is not None:
            return
        time.sleep(0.2)
    raise AssertionError(f"no heartbeat of a polling service in {home}")


def test_health_follows_the_running_service_heartbeat(trained_home: Path, emulator: Emulator,  # noqa: F811
                                                      tmp_path: Path) -> None:
    assert churnguard(trained_home, "health", "--service").returncode == 1  # nothing runs yet
    env = environment(trained_home, TELEGRAM_BOT_TOKEN=emulator.token, TELEGRAM_API_BASE_URL=emulator.base_url,
                      CHURNGUARD_ADMIN_IDS=str(ADMIN))
    process = subprocess.Popen([sys.executable, "-m", "churnguard", "run"], cwd=tmp_path, env=env,
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        _wait_for_heartbeat(trained_home, process)
        alive = churnguard(trained_home, "health", "--service")

        os.kill(process.pid, signal.SIGSTOP)  # a stuck service: alive, holding its lock, silent
        try:
            time.sleep(3.5)
            stuck = churnguard(trained_home, "health", "--service", "--max-age", "3")
        finally:
            os.kill(process.pid, signal.SIGCONT)
        process.send_signal(signal.SIGTERM)
        _, stderr = process.communicate(timeout=60)
    finally:
        if process.poll() is None:
            process.kill()
            process.communicate()

    assert alive.returncode == 0, alive.stdout
    service_line = alive.stdout.strip().splitlines()[-1]
    assert service_line.startswith(f"OK   service: pid {process.pid}, churnguard run")
    assert "polling (last getUpdates answered" in service_line and "scheduler running" in service_line
    assert stuck.returncode == 1
    assert "the service's event loop is stuck" in stuck.stdout.strip().splitlines()[-1]
    assert process.returncode == 0, stderr
    assert not heartbeat_path(trained_home).exists()  # a clean stop says "not running", not "stale"
    stopped = churnguard(trained_home, "health", "--service")
    assert stopped.returncode == 1
    assert f"FAIL service: no ChurnGuard service is running on the home {trained_home}" in stopped.stdout
    assert churnguard(trained_home, "health").returncode == 0


def test_health_never_exits_2_which_docker_reserves(tmp_path: Path) -> None:
    done = churnguard(tmp_path / "home", "health", CHURNGUARD_RECALL_TARGET="7")

    assert done.returncode == 1
    assert done.stderr.startswith("churnguard: invalid setting CHURNGUARD_RECALL_TARGET")
