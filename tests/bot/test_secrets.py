"""The bot token never leaves the server: not on stderr, not in DEBUG logs, not in a chat.

The probes an operator (or an attacker) would try, against a real ``churnguard run`` process
and the Bot API emulator: a revoked token, a wrong ``TELEGRAM_API_BASE_URL``, an unreachable
server, DEBUG logging; and inside a running bot, an error whose text quotes the token.
"""

from __future__ import annotations

import signal
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from telegram import Update
from telegram.ext import CommandHandler, ContextTypes

from bot.access import Role, audit_entries
from bot.emulator import Emulator
from bot.guard import guard
from tests.bot.churnguard_fixtures import (  # noqa: F401
    ADMIN,
    SECOND_ADMIN,
    live_bot,
    make_settings,
    trained_home,
    trained_template,
)
from tests.bot.test_commands import START_TIMEOUT, environment

# Shaped like a real token from @BotFather: the bot id, a colon, 35 characters.
TOKEN = "7312345678:AAHdqTcvCH1vGWJxfSeofSAs0K5PALDsawQ"
SECRET = TOKEN.split(":", 1)[1]
MASKED_URL = "bot7312345678:***"


@pytest.fixture
def real_emulator() -> Iterator[Emulator]:
    """An emulator that accepts TOKEN, as Telegram accepts a bot's real token."""
    emu = Emulator(token=TOKEN).start()
    try:
        yield emu
    finally:
        emu.stop()


def closed_port() -> int:
    """A port nothing listens on (bound once, then released)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def run_service(home: Path, cwd: Path, **env: str) -> subprocess.CompletedProcess[str]:
    """``churnguard run`` that is expected to stop on its own (a start-up failure)."""
    return subprocess.run([sys.executable, "-m", "churnguard", "run"], cwd=cwd, env=environment(home, **env),
                          capture_output=True, text=True, timeout=START_TIMEOUT)


def assert_no_secret(text: str) -> None:
    assert TOKEN not in text
    assert SECRET not in text
    assert SECRET[:20] not in text


def test_a_revoked_token_is_one_clear_line_without_the_token(home: Path, tmp_path: Path, emulator: Emulator) -> None:
    # The emulator knows another token: to it, TOKEN is revoked (401 Unauthorized).
    done = run_service(home, tmp_path, TELEGRAM_BOT_TOKEN=TOKEN, TELEGRAM_API_BASE_URL=emulator.base_url)

    output = done.stdout + done.stderr
    assert done.returncode != 0
    assert_no_secret(output)
    assert "Traceback" not in output
    assert done.stderr.strip().splitlines() == [
        f"churnguard: the Bot API server at {emulator.base_url} refused TELEGRAM_BOT_TOKEN (Unauthorized): the "
        "token is wrong or was revoked; get the current one from @BotFather"]


def test_a_wrong_base_url_path_is_one_clear_line_without_the_token(home: Path, tmp_path: Path,
                                                                    real_emulator: Emulator) -> None:
    wrong = f"{real_emulator.base_url}/telegram"  # 404 for every Bot API call

    done = run_service(home, tmp_path, TELEGRAM_BOT_TOKEN=TOKEN, TELEGRAM_API_BASE_URL=wrong)

    output = done.stdout + done.stderr
    assert done.returncode != 0
    assert_no_secret(output)
    assert "Traceback" not in output
    [line] = done.stderr.strip().splitlines()
    assert line.startswith(f"churnguard: the Bot API server at {wrong} answered 404 Not Found to getMe: ")
    assert "TELEGRAM_API_BASE_URL must be the server's root" in line


def test_an_unreachable_bot_api_is_one_clear_line_and_no_traceback(home: Path, tmp_path: Path) -> None:
    server = f"http://127.0.0.1:{closed_port()}"

    done = run_service(home, tmp_path, TELEGRAM_BOT_TOKEN=TOKEN, TELEGRAM_API_BASE_URL=server)

    assert done.returncode != 0
    assert_no_secret(done.stdout + done.stderr)
    assert "Traceback" not in done.stderr
    [line] = done.stderr.strip().splitlines()
    assert line.startswith(f"churnguard: cannot reach the Bot API server at {server} (")
    assert line.endswith("check TELEGRAM_API_BASE_URL and the network")


def test_debug_logs_show_the_bot_api_url_with_the_token_masked(trained_home: Path, tmp_path: Path,  # noqa: F811
                                                               real_emulator: Emulator) -> None:
    real_emulator.add_user(ADMIN)
    env = environment(trained_home, TELEGRAM_BOT_TOKEN=TOKEN, TELEGRAM_API_BASE_URL=real_emulator.base_url,
                      CHURNGUARD_ADMIN_IDS=str(ADMIN), CHURNGUARD_LOG_LEVEL="DEBUG")
    process = subprocess.Popen([sys.executable, "-m", "churnguard", "run"], cwd=tmp_path, env=env,
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        real_emulator.wait_for(lambda: real_emulator.calls("getUpdates"), timeout=START_TIMEOUT,
                               what="the bot to poll")
        real_emulator.wait_for_replies(real_emulator.inject_message(ADMIN, "/help"), timeout=30)
        process.send_signal(signal.SIGTERM)
        stdout, stderr = process.communicate(timeout=60)
    finally:
        if process.poll() is None:
            process.kill()
            process.communicate()

    output = stdout + stderr
    assert process.returncode == 0, stderr[-2000:]
    assert_no_secret(output)
    # The lines that held the token are still there, masked: the log stays useful.
    assert f"Set Bot API URL: {real_emulator.base_url}/{MASKED_URL}" in stderr
    assert " DEBUG telegram." in stderr


async def _leaky_failure(update: Update, context: ContextTypes.DEFAULT_TYPE) -> str:
    # A bug whose message quotes a URL with the token, as an HTTP library's error would.
    raise RuntimeError(f"GET https://api.telegram.org/bot{TOKEN}/getFile failed; token {TOKEN} was used")


def test_an_error_quoting_the_token_reaches_admins_and_the_audit_log_masked(home: Path, emulator: Emulator,
                                                                            live_bot: Any) -> None:  # noqa: F811
    bot = live_bot(make_settings(home, emulator))
    # First in its group, ahead of the "unknown command" fallback.
    bot.application.handlers[0].insert(0, CommandHandler("leak", guard("leak", Role.ADMIN, _leaky_failure)))

    [reply] = bot.send(ADMIN, "/leak")
    notices = emulator.wait_for_messages(SECOND_ADMIN, 1, timeout=30)

    assert reply.text is not None and "something went wrong" in reply.text
    notice = notices[-1].text or ""
    assert "RuntimeError: GET https://api.telegram.org/bot7312345678:***/getFile failed" in notice
    assert_no_secret(notice)
    [row] = audit_entries(bot.db, actor=ADMIN, action="leak")
    assert row.result == "error" and "bot7312345678:***" in row.detail
    assert_no_secret(row.detail)
