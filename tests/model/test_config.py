"""TrainConfig: checked values, built from the root Settings."""

import pytest

from churnguard import Settings
from model.config import TrainConfig
from storage.errors import UserError


def test_defaults_are_the_documented_ones():
    config = TrainConfig()

    assert (config.recall_target, config.tuning_seconds, config.n_folds) == (0.90, 20.0, 5)


@pytest.mark.parametrize("field,value", [
    ("recall_target", 90), ("recall_target", 0), ("tuning_seconds", 0), ("n_folds", 1), ("contact_cost", -1),
    ("offer_success_rate", 1.5), ("champion_tolerance", float("nan")), ("max_trials", 0), ("seed", -3),
    ("retained_value", "300"),
])
def test_bad_values_are_refused_naming_the_setting(field, value):
    with pytest.raises(UserError, match=field):
        TrainConfig(**{field: value})


def test_from_settings_takes_matching_fields_and_overrides(home):
    settings = Settings(recall_target=0.85, contact_cost=2.0, seed=7)

    config = TrainConfig.from_settings(settings, seed=11, max_trials=5)

    assert config.recall_target == 0.85 and config.contact_cost == 2.0
    assert config.seed == 11 and config.max_trials == 5
    assert config.tuning_seconds == settings.tuning_seconds


def test_none_overrides_keep_the_settings_value(home):
    assert TrainConfig.from_settings(Settings(seed=7), seed=None).seed == 7
