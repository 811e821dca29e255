"""Training in a child process: the same result and errors as in-process training."""

from __future__ import annotations

from pathlib import Path

import pytest

from bot.training import process_trainer
from storage.db import Database
from storage.errors import UserError
from tests.bot.churnguard_fixtures import make_settings


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
