"""`churnguard run` and `churnguard sandbox` as a user starts them: real processes, real HTTP."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from bot.commands import DEFAULT_SANDBOX_USER, sandbox_identity
from bot.emulator import Emulator
from storage.errors import UserError
from tests.bot.churnguard_fixtures import (  # noqa: F401
    ADMIN,
    STRANGER,
    VIEWER,
    make_settings,
    trained_home,
    trained_template,
)
from tests.conftest import REPO

START_TIMEOUT = 120.0


def environment(home: Path, **extra: str) -> dict[str, str]:
    env = {key: value for key, value in os.environ.items() if not key.startswith(("CHURNGUARD_", "TELEGRAM_"))}
    env.update(PYTHONPATH=str(REPO), CHURNGUARD_HOME=str(home), CHURNGUARD_TUNING_SECONDS="2", **extra)
    return env


def test_the_sandbox_user_is_an_admin_and_is_told_why(home: Path) -> None:
    unset = make_settings(home, admin_ids=[], viewer_ids=[])
    configured = make_settings(home, admin_ids=[7, 8], viewer_ids=[9])

    assert sandbox_identity(unset, None)[:2] == (DEFAULT_SANDBOX_USER, [DEFAULT_SANDBOX_USER])
    assert "you (user 1000001) are an admin for this session only" in sandbox_identity(unset, None)[2][0]
    assert sandbox_identity(configured, None)[:2] == (7, [7, 8])
    assert "a viewer" in sandbox_identity(configured, 9)[2][0]
    assert "stranger" in sandbox_identity(configured, 5)[2][0]
    with pytest.raises(UserError, match="--user-id must be a positive"):
        sandbox_identity(configured, 0)


def test_run_serves_any_bot_api_server_and_stops_on_sigterm(trained_home: Path, emulator: Emulator, tmp_path: Path) -> None:  # noqa: F811
    for user in (ADMIN, VIEWER, STRANGER):
        emulator.add_user(user)
    env = environment(trained_home, TELEGRAM_BOT_TOKEN=emulator.token, TELEGRAM_API_BASE_URL=emulator.base_url,
                      CHURNGUARD_ADMIN_IDS=str(ADMIN), CHURNGUARD_VIEWER_IDS=str(VIEWER))
    process = subprocess.Popen([sys.executable, "-m", "churnguard", "run"], cwd=tmp_path, env=env,
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        emulator.wait_for(lambda: emulator.calls("getUpdates"), timeout=START_TIMEOUT, what="the bot to poll")
        score = emulator.wait_for_replies(emulator.inject_message(VIEWER, "/score 7590-VHVEG"), timeout=30)[0]
        refusal = emulator.wait_for_replies(emulator.inject_message(STRANGER, "/top"), timeout=30)[0]
        process.send_signal(signal.SIGTERM)
        _, stderr = process.communicate(timeout=60)
    finally:
        if process.poll() is None:
            process.kill()
            process.communicate()

    assert process.returncode == 0, stderr
    assert score.text is not None and score.text.startswith("Client 7590-VHVEG: churn risk ")
    assert refusal.text is not None and refusal.text.startswith("Sorry, this is the private bot")
    assert "Traceback" not in stderr
    assert "stopped" in stderr


def test_run_without_a_token_opens_the_sandbox_chat(trained_home: Path, tmp_path: Path) -> None:  # noqa: F811
    script = "/start\n/score 7590-VHVEG\npress Why?\n/quit\n"

    done = subprocess.run([sys.executable, "-m", "churnguard", "run"], cwd=tmp_path, env=environment(trained_home),
                          input=script, capture_output=True, text=True, timeout=START_TIMEOUT)

    assert done.returncode == 0, done.stderr
    assert "TELEGRAM_BOT_TOKEN is not set: starting the offline sandbox" in done.stderr
    assert "so you (user 1000001) are an admin for this session only" in done.stdout
    assert "You are an admin." in done.stdout
    assert "Client 7590-VHVEG: churn risk " in done.stdout
    # Files the bot sends are kept in the service's home, not wherever the command was started.
    saved = list((trained_home / "sandbox-files").glob("photo-*"))
    assert len(saved) == 1 and saved[0].stat().st_size > 0
    assert f"[photo saved to {saved[0]}]" in done.stdout
    assert not (tmp_path / "sandbox-files").exists()
