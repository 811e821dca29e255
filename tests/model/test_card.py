"""Model card: Markdown plus real PNG charts; summary text from the report alone."""

import json

from model.card import CARD_FILE, CHARTS, card_markdown, summary_text, write_model_card
from tests.model.training_data import trained_telco

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def test_card_and_charts_are_written(tmp_path):
    outcome = trained_telco()

    paths = write_model_card(outcome, tmp_path / "card", title="Model v1")

    assert paths[0].name == CARD_FILE
    assert sorted(p.name for p in paths[1:]) == sorted(CHARTS.values())
    for chart in paths[1:]:
        data = chart.read_bytes()
        assert data.startswith(PNG_MAGIC) and len(data) > 5000
    text = paths[0].read_text(encoding="utf-8")
    assert text.startswith("# Model v1")
    for name in CHARTS.values():
        assert f"]({name})" in text
    assert f"{outcome.report['threshold']:.3f}" in text
    assert "TotalCharges_per_tenure" in text and "ROI" in text
    assert not [p for p in (tmp_path / "card").iterdir() if p.name.startswith(".")]


def test_card_and_summary_render_from_stored_json_report():
    report = json.loads(json.dumps(trained_telco().report))

    markdown = card_markdown(report)
    summary = summary_text(report)

    assert "Logistic regression" in markdown and "Majority (prior)" in markdown
    assert summary.splitlines()[0].startswith(("ACCEPTED", "REJECTED"))
    assert "recall" in summary and "ROI" in summary
    if not report["gate"]["passed"]:
        assert "Rejected because" in summary


def test_the_summary_names_the_champion_it_was_compared_with_not_a_current_one():
    # a version trained while v1 was champion, compared with it on the same test clients
    report = json.loads(json.dumps(trained_telco().report))
    report["metrics"]["test"]["champion"] = dict(report["metrics"]["test"]["logistic"], recall=0.91)
    report["champion_compared"] = "v1"

    summary = summary_text(report)

    # once this version is champion itself, "current champion" would name the wrong model
    assert "Current champion" not in summary
    assert "  v1, the champion when this version was trained: recall 91.0 %" in summary
