"""Fixtures for the bot's tests: a local Telegram (the emulator) and bots polling it.

They live in tests/bot/emulator_fixtures.py; importing them here makes them visible to every
test under tests/bot.
"""

from tests.bot.emulator_fixtures import bot_token, emulator, start_bot

__all__ = ["bot_token", "emulator", "start_bot"]
