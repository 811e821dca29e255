"""The jobs' settings (the "# --- jobs" block of churnguard.Settings): defaults and bad values.

Every bad value must be refused at load with one line naming the environment variable.
"""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from churnguard import Settings, format_settings_error, main


def _error_line(monkeypatch, **env: str) -> str:
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    with pytest.raises(ValidationError) as caught:
        Settings()
    return format_settings_error(caught.value)


def test_defaults(home):
    settings = Settings()
    assert settings.ingest_cron == "*/5 * * * *"
    assert settings.drift_cron == "0 * * * *"
    assert settings.performance_cron == "10 * * * *"
    assert settings.retrain_cron == "0 3 * * 0"
    assert settings.retrain_on == ["schedule", "new_labels", "drift", "recall"]
    assert settings.alert_cooldown_hours == 24
    assert settings.min_churners == 20
    assert settings.retrain_window_batches == 0
    assert (settings.drift_psi_moderate, settings.drift_psi_threshold) == (0.10, 0.25)
    assert settings.source_url == "" and settings.source_query == ""
    assert settings.inbox_dir == home / "inbox"


def test_values_from_the_environment(home, monkeypatch):
    monkeypatch.setenv("CHURNGUARD_DRIFT_CRON", "0 6 * * 1-5")
    monkeypatch.setenv("CHURNGUARD_RETRAIN_CRON", "off")
    monkeypatch.setenv("CHURNGUARD_RETRAIN_ON", "recall, drift")
    monkeypatch.setenv("CHURNGUARD_SOURCE_URL", "sqlite:///crm.db")
    monkeypatch.setenv("CHURNGUARD_SOURCE_QUERY", "select * from clients where updated_at > :since")
    settings = Settings()
    assert settings.drift_cron == "0 6 * * 1-5"
    assert settings.retrain_cron == "off"
    assert settings.retrain_on == ["recall", "drift"]
    assert settings.source_url == "sqlite:///crm.db"


def test_an_empty_retrain_on_means_only_manual_retrains(home, monkeypatch):
    monkeypatch.setenv("CHURNGUARD_RETRAIN_ON", "")
    assert Settings().retrain_on == []


@pytest.mark.parametrize("variable", ["CHURNGUARD_INGEST_CRON", "CHURNGUARD_DRIFT_CRON",
                                      "CHURNGUARD_PERFORMANCE_CRON", "CHURNGUARD_RETRAIN_CRON"])
def test_an_invalid_cron_names_its_variable(home, monkeypatch, variable):
    line = _error_line(monkeypatch, **{variable: "61 * * * *"})
    assert line.startswith(f"invalid setting {variable}:")
    assert "not a valid cron expression" in line and "'61 * * * *'" in line


@pytest.mark.parametrize(
    ("variable", "value", "expected"),
    [
        ("CHURNGUARD_RETRAIN_ON", "schedule,weekly", "unknown trigger(s) weekly"),
        ("CHURNGUARD_DRIFT_PSI_MODERATE", "0", "greater than 0"),
        ("CHURNGUARD_DRIFT_PSI_THRESHOLD", "0.05", "must be above CHURNGUARD_DRIFT_PSI_MODERATE"),
        ("CHURNGUARD_DRIFT_ALPHA", "1.5", "less than 1"),
        ("CHURNGUARD_DRIFT_MIN_SAMPLES", "0", "greater than or equal to 1"),
        ("CHURNGUARD_DRIFT_SHARE", "1", "less than 1"),
        ("CHURNGUARD_MIN_CHURNERS", "zero", "valid integer"),
        ("CHURNGUARD_ALERT_COOLDOWN_HOURS", "-1", "greater than or equal to 0"),
        ("CHURNGUARD_RETRAIN_WINDOW_BATCHES", "-3", "greater than or equal to 0"),
        ("CHURNGUARD_SOURCE_URL", "not a url", "must be a database URL"),
        ("CHURNGUARD_SOURCE_QUERY", "select 1", "must be set together"),
        ("CHURNGUARD_SHADOW", "maybe", "must be on or off"),
        ("CHURNGUARD_SHADOW", "2", "must be on or off"),
        ("CHURNGUARD_PROMOTION", "auto", "must be gate"),
        ("CHURNGUARD_PROMOTION", "", "must be gate"),
        ("CHURNGUARD_PROMOTION", "shadow", "set CHURNGUARD_SHADOW=on as well"),
    ],
)
def test_bad_values_are_one_clear_line(home, monkeypatch, variable, value, expected):
    line = _error_line(monkeypatch, **{variable: value})
    assert line.startswith(f"invalid setting {variable}:"), line
    assert expected in line
    assert ";" not in line  # one problem, one line


def test_the_shadow_challenger_is_off_and_promotion_goes_through_the_gate_by_default(home):
    settings = Settings()
    assert settings.shadow is False and settings.promotion == "gate"


@pytest.mark.parametrize(("shadow", "promotion"), [("on", "shadow"), ("ON", "Shadow"), ("true", "gate"),
                                                   ("off", "gate"), ("1", " shadow ")])
def test_shadow_and_promotion_values(home, monkeypatch, shadow, promotion):
    monkeypatch.setenv("CHURNGUARD_SHADOW", shadow)
    monkeypatch.setenv("CHURNGUARD_PROMOTION", promotion)
    settings = Settings()
    assert settings.shadow is (shadow.lower() in ("on", "true", "1"))
    assert settings.promotion == promotion.strip().lower()


def test_shadow_promotion_without_the_shadow_running_stops_the_command_line(home, monkeypatch, capsys):
    monkeypatch.setenv("CHURNGUARD_PROMOTION", "shadow")
    monkeypatch.setenv("CHURNGUARD_SHADOW", "off")
    with pytest.raises(SystemExit) as caught:
        main(["shadow"])
    assert caught.value.code == 2
    [line] = capsys.readouterr().err.strip().splitlines()
    assert line.startswith("churnguard: invalid setting CHURNGUARD_PROMOTION:") and "CHURNGUARD_SHADOW=on" in line


def test_a_source_url_without_a_query_is_refused(home, monkeypatch):
    line = _error_line(monkeypatch, CHURNGUARD_SOURCE_URL="sqlite:///crm.db")
    assert line.startswith("invalid setting CHURNGUARD_SOURCE_QUERY:")


def test_the_command_line_stops_with_the_line_and_exit_code_2(home, monkeypatch, capsys):
    monkeypatch.setenv("CHURNGUARD_INGEST_CRON", "every five minutes")
    with pytest.raises(SystemExit) as caught:
        main(["jobs", "list"])
    assert caught.value.code == 2
    err = capsys.readouterr().err
    assert err.startswith("churnguard: invalid setting CHURNGUARD_INGEST_CRON:")
    assert len(err.strip().splitlines()) == 1
