"""A store written before the id rule may hold ids with terminal escapes or bidirectional
overrides.  Whatever lists them — ``churnguard top`` (text and JSON), the bot's /top page and
its CSV — shows them escaped, never raw."""

from __future__ import annotations

import contextlib
import io
import json
import os

import pytest
from sqlalchemy import text

from bot.handlers.top import page_text, ranking_csv
from churnguard import main
from tests.model.trained_store import adopt_quick_model, ingest_telco, open_store

EVIL = "C-1\x1b[2J\x1b]0;pwned\x07\u202eevil"


@pytest.fixture
def old_store(tmp_path):
    """Telco with a champion, then the riskiest client's id rewritten as an older release
    could have stored it (today's ingest refuses such an id)."""
    home = tmp_path / "home"
    store = open_store(f"sqlite:///{(home / 'churnguard.db').as_posix()}", home)
    ingest_telco(store)
    adopt_quick_model(store)
    from model.service import open_scorer

    riskiest = open_scorer(store.db, store.settings, store.registry).top(1)[0].client_id
    with store.db.session() as session:
        session.connection().execute(text("UPDATE client_record SET client_id = :evil WHERE client_id = :id"),
                                     {"evil": EVIL, "id": riskiest})
    yield store
    store.db.dispose()


def run(home, *argv: str) -> tuple[int, str]:
    out = io.StringIO()
    patch = pytest.MonkeyPatch()
    for name in list(os.environ):
        if name.startswith(("CHURNGUARD_", "TELEGRAM_")):
            patch.delenv(name, raising=False)
    patch.setenv("CHURNGUARD_HOME", str(home))
    try:
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(io.StringIO()):
            code = main(list(argv))
    finally:
        patch.undo()
    return code, out.getvalue()


def raw_escapes(value: str) -> bool:
    return any(not ch.isprintable() and ch not in "\n\r" for ch in value)


def test_top_lists_an_old_id_escaped_in_text_json_chat_and_csv(old_store):
    from model.service import open_scorer

    results = open_scorer(old_store.db, old_store.settings, old_store.registry).top(5)
    assert results[0].client_id == "C-1\\x1b[2J\\x1b]0;pwned\\x07\\u202eevil"
    assert not raw_escapes(page_text(results, 5, 0))
    assert not raw_escapes(ranking_csv(results).decode("utf-8-sig"))

    code, out = run(old_store.settings.home, "top", "-n", "5")
    assert code == 0 and "C-1\\x1b[2J" in out and not raw_escapes(out)
    code, out = run(old_store.settings.home, "top", "-n", "5", "--json")
    assert code == 0 and not raw_escapes(out)
    assert json.loads(out)["clients"][0]["client_id"] == results[0].client_id
