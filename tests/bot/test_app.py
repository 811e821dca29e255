"""The Application factory: Bot API address, rate limiting, concurrency, one services object
per Application, and setup that works without run_polling."""

from __future__ import annotations

from pathlib import Path

import pytest
from pydantic import SecretStr

from bot.access import AccessList
from bot.app import DEFAULT_CONCURRENCY, all_commands, build_application, command_menus, running
from bot.emulator import Emulator
from bot.retry import RetryingRateLimiter
from bot.services import services_of
from model import card
from storage.errors import UserError
from tests.bot.churnguard_fixtures import (  # noqa: F401
    ADMIN,
    VIEWER,
    live_bot,
    make_settings,
    trained_home,
    trained_template,
)
from tests.bot.emulator_fixtures import run_async


def test_the_bot_api_root_comes_from_settings(home: Path) -> None:
    settings = make_settings(home, telegram_bot_token=SecretStr("42:abc"),
                             telegram_api_base_url="http://bot-api.internal:8081/")

    application = build_application(settings)

    assert application.bot.base_url == "http://bot-api.internal:8081/bot42:abc"
    assert application.bot.base_file_url == "http://bot-api.internal:8081/file/bot42:abc"
    assert isinstance(application.bot.rate_limiter, RetryingRateLimiter)
    assert application.concurrent_updates == DEFAULT_CONCURRENCY
    assert application.job_queue is not None


def test_each_build_gets_its_own_services(home: Path) -> None:
    settings = make_settings(home, telegram_bot_token=SecretStr("42:abc"))

    first, second = build_application(settings), build_application(settings)

    assert services_of(first) is not services_of(second)
    assert services_of(first).access.admins == frozenset({111, 112})


def test_without_a_token_the_factory_points_to_the_sandbox(home: Path) -> None:
    with pytest.raises(UserError, match=r"TELEGRAM_BOT_TOKEN is not set.*churnguard sandbox"):
        build_application(make_settings(home))


def test_strangers_see_only_start_viewers_their_commands_admins_all() -> None:
    menus = command_menus(all_commands(), AccessList.from_ids(admins=[1], viewers=[2]))

    assert [command.command for command in menus[None]] == ["start"]
    assert "retrain" not in [command.command for command in menus[2]]
    assert [command.command for command in menus[1]] == [command.name for command in all_commands()]


def test_setup_runs_once_when_the_app_is_driven_without_run_polling(home: Path, emulator: Emulator) -> None:
    settings = make_settings(home, emulator)
    application = build_application(settings, schedule_jobs=False)
    emulator.add_user(ADMIN)

    async def scenario() -> str:
        async with running(application):
            svc = services_of(application)
            assert svc.ready and svc.registry is not None and svc.retrain_worker is not None
            runner = svc.runner
            from bot.app import setup

            await setup(application)  # a second call (post_init after a test's call) changes nothing
            assert svc.runner is runner
            update = emulator.inject_message(ADMIN, "/start")
            replies = await emulator.wait_for_replies_async(update)
            return replies[0].text or ""

    assert "You are an admin." in run_async(scenario())
    assert len(emulator.calls("setMyCommands")) == 4  # default scope, two admins, one viewer


TOUR = {  # command -> how the first reply starts, for admin and viewer alike
    "/start": "ChurnGuard estimates which clients",
    "/help": "ChurnGuard estimates which clients",
    "/score 7590-VHVEG": "Client 7590-VHVEG: churn risk ",
    "/top 3": "Top 3 riskiest active clients (model v1",
    "/model": "Champion model v1 (champion since ",
    "/drift": "No drift report exists yet.",
    "/alerts": "No alerts yet.",
    "/subscribe": "Subscribed: alerts",
    "/unsubscribe": "Unsubscribed: this chat gets no more alerts.",
}
ADMIN_TOUR = {
    "/models": "1 model version(s), oldest first",
    "/users": "Who has access",
    "/promote v1": "v1 is already the champion; nothing changed.",
    "/rollback": "No previous champion to roll back to; v1 stays champion.",
}


def test_a_tour_of_every_command_as_admin_and_as_viewer(trained_home: Path, emulator: Emulator, live_bot) -> None:  # noqa: F811
    bot = live_bot(make_settings(trained_home, emulator))

    for user in (ADMIN, VIEWER):
        for command, start in TOUR.items():
            replies = 1 + len(card.CHARTS) if command == "/model" else 1  # the card's charts follow
            answer = bot.send(user, command, replies=replies)
            assert (answer[0].text or "").startswith(start), (user, command, answer[0].text)
    for command, start in ADMIN_TOUR.items():
        answer = bot.ask(ADMIN, command)
        assert answer.startswith(start), (command, answer)
        assert bot.ask(VIEWER, command).startswith("Sorry, /")
