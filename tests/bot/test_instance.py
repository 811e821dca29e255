"""One service per store: a second `churnguard run` (or `sandbox`) on the same home, or on the same
PostgreSQL schema from another home, is refused at start with one line; `kill -9` of the first
leaves no stale lock behind.  Real processes, the Bot API emulator, a real PostgreSQL."""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from bot.emulator import Emulator
from storage.instance import holder
from tests.bot.churnguard_fixtures import ADMIN
from tests.bot.test_commands import START_TIMEOUT, environment
from tests.conftest import drop_pg_schema, pg_url_or_skip

REFUSAL_TIMEOUT = 60.0


class Service:
    """A `churnguard run` subprocess; stopped (SIGTERM, then SIGKILL) at the end of the test."""

    def __init__(self, home: Path, cwd: Path, emulator: Emulator, *args: str, **env: str) -> None:
        self.emulator = emulator
        full = environment(home, TELEGRAM_BOT_TOKEN=emulator.token, TELEGRAM_API_BASE_URL=emulator.base_url,
                           CHURNGUARD_ADMIN_IDS=str(ADMIN), **env)
        self.process = subprocess.Popen([sys.executable, "-m", "churnguard", "run", *args], cwd=cwd, env=full,
                                        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)

    def wait_polling(self, after: int = 0) -> None:
        """Block until this service (not only an earlier one) has polled the emulator."""
        def polled() -> bool:
            return self.process.poll() is None and len(self.emulator.calls("getUpdates")) > after
        self.emulator.wait_for(polled, timeout=START_TIMEOUT, what="the service to poll")

    def finish(self, timeout: float) -> tuple[int | None, str]:
        """Its exit code and stderr; None as the code when it was still running at ``timeout``."""
        try:
            _, stderr = self.process.communicate(timeout=timeout)
            return self.process.returncode, stderr
        except subprocess.TimeoutExpired:
            self.stop()
            return None, ""

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.communicate(timeout=30)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.communicate()


@pytest.fixture
def services() -> Iterator[list[Service]]:
    started: list[Service] = []
    try:
        yield started
    finally:
        for service in reversed(started):
            service.stop()


def test_a_second_run_or_sandbox_on_the_same_home_is_refused_with_one_line(
        home: Path, tmp_path: Path, emulator: Emulator, services: list[Service]) -> None:
    first = Service(home, tmp_path, emulator)
    services.append(first)
    first.wait_polling()
    assert holder(home) is not None and holder(home).pid == first.process.pid  # type: ignore[union-attr]

    second = Service(home, tmp_path, emulator)
    services.append(second)
    code, stderr = second.finish(REFUSAL_TIMEOUT)
    sandbox = subprocess.run([sys.executable, "-m", "churnguard", "sandbox"], cwd=tmp_path, env=environment(home),
                             input="/quit\n", capture_output=True, text=True, timeout=REFUSAL_TIMEOUT)

    assert code == 2, "the second service did not stop on its own"
    [line] = stderr.strip().splitlines()
    assert line.startswith(f"churnguard: another ChurnGuard service is already running on the home {home} "
                           f"(pid {first.process.pid}, churnguard run")
    assert sandbox.returncode == 2
    assert sandbox.stderr.strip().splitlines()[-1].startswith(
        f"churnguard: another ChurnGuard service is already running on the home {home}")
    assert "Preparing the sandbox" not in sandbox.stdout
    assert first.process.poll() is None  # the first one is untouched and keeps serving
    reply = emulator.wait_for_replies(emulator.inject_message(ADMIN, "/help"), timeout=30)
    assert reply[0].text is not None and "You are an admin" in reply[0].text


def test_after_kill_9_the_next_service_starts_at_once(home: Path, tmp_path: Path, emulator: Emulator,
                                                      services: list[Service]) -> None:
    first = Service(home, tmp_path, emulator)
    services.append(first)
    first.wait_polling()
    first.process.send_signal(signal.SIGKILL)
    first.process.communicate(timeout=30)
    assert holder(home) is None  # the kernel released the lock with the process

    polls = len(emulator.calls("getUpdates"))
    second = Service(home, tmp_path, emulator)
    services.append(second)
    second.wait_polling(after=polls)

    assert second.process.poll() is None
    assert holder(home) is not None and holder(home).pid == second.process.pid  # type: ignore[union-attr]


def test_two_homes_on_one_postgresql_schema_run_one_service(tmp_path: Path, emulator: Emulator,
                                                            services: list[Service]) -> None:
    url = pg_url_or_skip()
    try:
        first = Service(tmp_path / "home-a", tmp_path, emulator, CHURNGUARD_DATABASE_URL=url)
        services.append(first)
        first.wait_polling()
        second = Service(tmp_path / "home-b", tmp_path, emulator, CHURNGUARD_DATABASE_URL=url)
        services.append(second)
        code, stderr = second.finish(REFUSAL_TIMEOUT)
        # Once the first one is gone (kill -9: PostgreSQL sees its connection close), a new one starts.
        first.process.send_signal(signal.SIGKILL)
        first.process.communicate(timeout=30)
        time.sleep(0.5)
        polls = len(emulator.calls("getUpdates"))
        third = Service(tmp_path / "home-b", tmp_path, emulator, CHURNGUARD_DATABASE_URL=url)
        services.append(third)
        third.wait_polling(after=polls)
    finally:
        for service in services:
            service.stop()
        drop_pg_schema(url)

    assert code == 2, "the second service did not stop on its own"
    [line] = stderr.strip().splitlines()
    assert line.startswith("churnguard: another ChurnGuard service is already running on the database "
                           "postgresql+psycopg://postgres@127.0.0.1:5432/test")
    assert "from another home or host" in line
