"""Every event type: an export with 25 usage event types trains on all 25 by default, and a
cap that binds (``CHURNGUARD_MAX_EVENT_TYPES``) names the types it leaves out in the training
report, ``train --json`` and the model card — never silently.

The data is the shipped event sample with its usage events split into 25 types, one of them
a rare ``cancel_request`` (the kind of event that matters most and a top-20 cut drops first).
"""

from __future__ import annotations

import json
import shutil
from datetime import datetime
from pathlib import Path

import pandas as pd
import pytest

import churnguard
from churnguard import Settings
from model.event_source import model_spec
from model.service import open_registry, train_and_register
from storage.db import Database
from storage.events.features import DEFAULT_MAX_EVENT_TYPES, feature_spec
from storage.events.ingest import ingest_events
from storage.events.mapping import load_mapping_file
from storage.events.sample import KIND_FILES, SAMPLE_DIR
from tests.model.trained_store import quick_config

VARIANTS = {"login": 10, "report": 6, "export": 5, "invite": 3}  # 24 types, plus cancel_request


@pytest.fixture(scope="module")
def export_folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The sample's tables, its usage file rewritten with 25 event types."""
    folder = tmp_path_factory.mktemp("types25")
    for kind, name in KIND_FILES.items():
        if kind != "usage":
            shutil.copyfile(SAMPLE_DIR / name, folder / name)
    shutil.copyfile(SAMPLE_DIR / "mapping.toml", folder / "mapping.toml")
    usage = pd.read_csv(SAMPLE_DIR / KIND_FILES["usage"], dtype=str)
    position = usage.groupby("event").cumcount()
    usage["event"] = [f"{event}_{n % VARIANTS[event]}" for event, n in zip(usage["event"], position, strict=True)]
    usage.loc[usage.index % 250 == 7, "event"] = "cancel_request"
    usage.to_csv(folder / KIND_FILES["usage"], index=False)
    assert usage["event"].nunique() == 25
    return folder


def event_store(folder: Path, home: Path) -> Database:
    db = Database(f"sqlite:///{(home / 'churnguard.db').as_posix()}").create_schema()
    for kind in ("clients", "subscriptions", "purchases", "tickets", "usage"):
        ingest_events(db, folder / KIND_FILES[kind], kind=kind, mapping=load_mapping_file(folder / "mapping.toml", kind),
                      now=datetime(2030, 1, 1))
    return db


def test_all_25_types_get_columns_by_default_and_a_cap_names_what_it_leaves_out(export_folder, tmp_path):
    home = tmp_path / "home"
    home.mkdir()
    db = event_store(export_folder, home)
    try:
        every = feature_spec(db)
        capped = feature_spec(db, max_event_types=20)
    finally:
        db.dispose()

    assert DEFAULT_MAX_EVENT_TYPES >= 25
    assert len(every.event_types) == 25 and every.dropped_types == () and "cancel_request" in every.event_types
    assert len(capped.event_types) == 20 and len(capped.dropped_types) == 5
    assert capped.dropped_types[-1] == "cancel_request"  # the rarest
    assert capped.as_dict()["dropped_types"] == list(capped.dropped_types)


@pytest.mark.parametrize("cap", [None, 20])
def test_training_uses_every_type_or_says_which_it_left_out(export_folder, tmp_path, cap):
    home = tmp_path / "home"
    home.mkdir()
    db = event_store(export_folder, home)
    values: dict[str, object] = {"home": home, "database_url": db.url, "training_source": "events"}
    if cap is not None:
        values["max_event_types"] = cap
    settings = Settings(**values)  # type: ignore[arg-type]
    try:
        result = train_and_register(db, settings, registry=open_registry(db, settings), config=quick_config(seed=3),
                                    actor="test")
        spec = model_spec(open_registry(db, settings).load(result.version))
    finally:
        db.dispose()

    payload = result.to_dict()  # what train --json prints
    card = Path(payload["card"]).read_text(encoding="utf-8")
    checks = payload["data_checks"]["event_types"]
    if cap is None:
        assert len(spec.event_types) == 25 and "cancel_request" in spec.event_types
        assert checks["left_out"] == [] and not any("event types" in w for w in payload["warnings"])
        assert any(name.startswith("usage_cancel_request_") for name in payload["processing"]["numeric"])
    else:
        assert len(spec.event_types) == 20 and "cancel_request" not in spec.event_types
        assert checks == {"used": 20, "left_out": list(spec.dropped_types), "cap": 20}
        (warning,) = [w for w in payload["warnings"] if "event types" in w]
        assert warning.startswith("5 of 25 usage event types have no feature columns, only the 20 most frequent "
                                  "(CHURNGUARD_MAX_EVENT_TYPES=20)")
        assert "cancel_request" in warning and warning in card


def test_the_features_command_names_left_out_types(export_folder, home, capsys, monkeypatch):
    home.mkdir(parents=True)
    event_store(export_folder, home).dispose()
    monkeypatch.setenv("CHURNGUARD_MAX_EVENT_TYPES", "20")

    assert churnguard.main(["features", "--as-of", "2025-06-01", "--windows", "30"]) == 0
    captured = capsys.readouterr()
    assert "5 rarer usage event type(s) have no columns (CHURNGUARD_MAX_EVENT_TYPES=20)" in captured.err
    assert "cancel_request" in captured.err and "usage_cancel_request_30d" not in captured.out.splitlines()[0]

    assert churnguard.main(["features", "--as-of", "2025-06-01", "--windows", "30", "--json"]) == 0
    assert "cancel_request" in json.loads(capsys.readouterr().out)["dropped_event_types"]


@pytest.mark.parametrize("value", ["0", "-3", "many"])
def test_a_bad_cap_stops_start_up_naming_the_variable(home, monkeypatch, capsys, value):
    monkeypatch.setenv("CHURNGUARD_MAX_EVENT_TYPES", value)

    with pytest.raises(SystemExit):
        churnguard.main(["status"])
    assert "CHURNGUARD_MAX_EVENT_TYPES" in capsys.readouterr().err
