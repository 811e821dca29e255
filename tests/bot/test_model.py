"""/model: the champion's version, threshold, test metrics against the baselines, training
data, and the model card charts as photos."""

from __future__ import annotations

from pathlib import Path

from bot.emulator import Emulator
from bot.handlers.model import NO_CHAMPION_TEXT
from model import card
from model.service import open_registry
from tests.bot.churnguard_fixtures import (  # noqa: F401
    VIEWER,
    live_bot,
    make_settings,
    trained_home,
    trained_template,
)


def test_model_shows_the_champion_and_its_card_charts(trained_home: Path, emulator: Emulator, live_bot) -> None:  # noqa: F811
    settings = make_settings(trained_home, emulator)
    bot = live_bot(settings)
    champion = open_registry(bot.db, settings).champion()
    assert champion is not None

    messages = bot.send(VIEWER, "/model", replies=1 + len(card.CHARTS))
    text = messages[0].text or ""
    photos = messages[1:]

    assert text.startswith(f"Champion model {champion.version} (champion since ")
    assert f"probability is ≥ {champion.threshold:.1%}" in text
    assert "Test: recall " in text and "PR-AUC" in text
    assert "Logistic regression: recall" in text and "Majority (prior): recall" in text
    assert (f"Trained on {champion.train_rows} labelled clients from batch(es) #1 "
            "WA_Fn-UseC_-Telco-Customer-Churn.csv (7043 rows, ") in text
    assert "Split (stratified): train " in text and ", test " in text
    assert [photo.kind for photo in photos] == ["photo"] * len(card.CHARTS)
    for photo, name in zip(photos, card.CHARTS.values(), strict=True):
        assert photo.photo == (champion.artifact_dir / name).read_bytes()
    assert photos[0].caption == "Precision-recall curve on the test split, chosen threshold marked"


def test_model_without_a_champion_says_how_to_get_one(home: Path, emulator: Emulator, live_bot) -> None:  # noqa: F811
    bot = live_bot(make_settings(home, emulator))

    assert bot.ask(VIEWER, "/model") == NO_CHAMPION_TEXT
