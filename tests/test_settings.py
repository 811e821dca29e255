"""Settings: every bad value is one clear line naming its variable, exit code 2."""

from __future__ import annotations

import pytest

import churnguard
from churnguard import Settings


@pytest.mark.parametrize(("variable", "value", "shown"), [
    ("CHURNGUARD_RECALL_TARGET", "1.5", "'1.5'"),
    ("CHURNGUARD_ADMIN_IDS", "abc", "'abc'"),
    ("CHURNGUARD_VIEWER_IDS", "12,x", "'x'"),  # the bad item of the list, not the whole list
    ("TELEGRAM_API_BASE_URL", "ftp://x", "'ftp://x'"),
    ("CHURNGUARD_DATABASE_URL", "mysql://db/churn", "'mysql://db/churn'"),
    ("CHURNGUARD_MAX_ROWS", "0", "'0'"),
    ("CHURNGUARD_MAX_FILE_MB", "lots", "'lots'"),
    ("CHURNGUARD_LOG_LEVEL", "LOUD", "'LOUD'"),
    ("CHURNGUARD_OFFER_SUCCESS_RATE", "2", "'2'"),
    ("CHURNGUARD_TRAINING_SOURCE", "crm", "'crm'"),
    ("CHURNGUARD_CHURN_HORIZON_DAYS", "0", "'0'"),
    ("CHURNGUARD_OBSERVATION_EVERY", "yearly", "'yearly'"),
    ("CHURNGUARD_FEATURE_WINDOWS", "7,x", "'x'"),
    ("CHURNGUARD_FEATURE_WINDOWS", "30,30", "'30,30'"),
])
def test_invalid_value_is_one_line_naming_the_variable_and_exit_2(home, monkeypatch, capsys, variable, value,
                                                                   shown):
    monkeypatch.setenv(variable, value)

    with pytest.raises(SystemExit) as caught:
        churnguard.main(["status"])

    err = capsys.readouterr().err
    assert caught.value.code == 2
    assert err.count("\n") == 1
    assert err.startswith(f"churnguard: invalid setting {variable}: ")
    assert f"(got {shown})" in err


def test_comma_separated_lists_parse(home, monkeypatch):
    monkeypatch.setenv("CHURNGUARD_ADMIN_IDS", "1, 22 ,333")
    monkeypatch.setenv("CHURNGUARD_VIEWER_IDS", "")
    monkeypatch.setenv("CHURNGUARD_IGNORE_COLUMNS", "RowNumber, Surname,")

    settings = Settings()

    assert settings.admin_ids == [1, 22, 333]
    assert settings.viewer_ids == []
    assert settings.ignore_columns == ["RowNumber", "Surname"]
    assert settings.explicit("ignore_columns") and not settings.explicit("id_column")


def test_defaults_derive_the_database_and_inbox_from_home(home):
    settings = Settings()

    assert settings.home == home
    assert settings.database_url == f"sqlite:///{(home / 'churnguard.db').as_posix()}"
    assert settings.inbox_dir == home / "inbox"
    assert settings.telegram_api_base_url == "https://api.telegram.org"


def test_flags_override_settings_and_count_as_explicit(home, monkeypatch):
    monkeypatch.setenv("CHURNGUARD_ID_COLUMN", "from_env")
    seen = {}

    def capture(args, settings):
        seen["settings"] = settings
        return 0

    monkeypatch.setattr(churnguard, "_resolve", lambda _path: capture)

    assert churnguard.main(["schema", "--json"]) == 0
    assert seen["settings"].id_column == "from_env" and seen["settings"].explicit("id_column")
    assert churnguard.main(["ingest", "x.csv", "--id-column", "from_flag", "--ignore-columns", "a,b"]) == 0
    assert seen["settings"].id_column == "from_flag"
    assert seen["settings"].ignore_columns == ["a", "b"]


def test_dotenv_file_in_the_working_directory_is_read(home):
    (home.parent / ".env").write_text("CHURNGUARD_POSITIVE_LABEL=Attrited Customer\n")

    assert Settings().positive_label == "Attrited Customer"
