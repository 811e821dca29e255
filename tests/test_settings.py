"""Settings: every bad value is one clear line naming its variable, exit code 2."""

from __future__ import annotations

import os
from pathlib import Path

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


@pytest.fixture
def bare_environment(tmp_path, monkeypatch):
    """No CHURNGUARD_* or TELEGRAM_* variable; the working directory is an empty folder."""
    for name in list(os.environ):
        if name.startswith(("CHURNGUARD_", "TELEGRAM_")):
            monkeypatch.delenv(name, raising=False)
    work = tmp_path / "work"
    work.mkdir()
    monkeypatch.chdir(work)
    return work


def test_bare_names_in_the_environment_are_not_settings(bare_environment, tmp_path, monkeypatch):
    # A login shell always has HOME; a PaaS often sets DATABASE_URL and LOG_LEVEL for other programs.
    login_home = tmp_path / "login-home"
    monkeypatch.setenv("HOME", str(login_home))
    monkeypatch.setenv("DATABASE_URL", "mysql://someone-else/db")
    monkeypatch.setenv("LOG_LEVEL", "LOUD")
    monkeypatch.setenv("INBOX", str(tmp_path / "elsewhere"))
    monkeypatch.setenv("ADMIN_IDS", "not-a-number")
    monkeypatch.setenv("BOT_TOKEN", "123:abc")

    settings = Settings()

    assert settings.home == Path("var")
    assert settings.database_url == "sqlite:///var/churnguard.db"
    assert settings.inbox_dir == Path("var") / "inbox"
    assert settings.log_level == "INFO"
    assert settings.admin_ids == []
    assert settings.telegram_bot_token is None
    assert churnguard.main(["schema", "--json"]) == 0
    assert (bare_environment / "var" / "churnguard.db").is_file()
    assert not login_home.exists()


def test_bare_names_in_a_dotenv_file_are_not_settings(bare_environment):
    (bare_environment / ".env").write_text("HOME=/somewhere/else\nDATABASE_URL=mysql://x/y\nLOG_LEVEL=LOUD\n"
                                           "RECALL_TARGET=7\nCHURNGUARD_SEED=5\n")

    settings = Settings()

    assert settings.home == Path("var")
    assert settings.database_url == "sqlite:///var/churnguard.db"
    assert settings.log_level == "INFO" and settings.recall_target == 0.90
    assert settings.seed == 5  # its own names are still read from the file


def test_code_may_still_pass_settings_by_field_name(bare_environment):
    settings = Settings(home="/srv/churn", id_column="CLIENTNUM", _env_file=None)

    assert settings.home == Path("/srv/churn")
    assert settings.id_column == "CLIENTNUM" and settings.explicit("id_column")
    assert settings.database_url == "sqlite:////srv/churn/churnguard.db"
