"""The README is the user's manual: it must document every setting and keep its quick start true."""

import re

from churnguard import Settings
from tests.conftest import REPO

README = (REPO / "README.md").read_text(encoding="utf-8")


def test_every_setting_is_documented_in_the_readme_table():
    # given the environment variable of every setting
    names = [field.validation_alias.choices[0] for field in Settings.model_fields.values()]
    # then each has a row in the settings table
    missing = [name for name in names if f"| `{name}` |" not in README]
    assert missing == []


def test_the_readme_documents_no_setting_that_does_not_exist():
    names = {field.validation_alias.choices[0] for field in Settings.model_fields.values()}
    rows = set(re.findall(r"^\| `((?:CHURNGUARD|TELEGRAM)_[A-Z_]+)` \|", README, flags=re.MULTILINE))
    assert rows - names == set()


def test_quick_start_runs_the_same_test_command_as_ci():
    ci = (REPO / ".ci" / "run").read_text(encoding="utf-8")
    assert "python -m pytest -q" in README
    assert "python -m pytest -q" in ci
