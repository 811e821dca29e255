"""Column mappings from TOML files and --map flags."""

from __future__ import annotations

from pathlib import Path

import pytest

from storage.events.mapping import (
    MappingError,
    canonical_kind,
    load_mapping_file,
    parse_mapping_flags,
    resolve_mapping,
)


def test_flags_map_canonical_fields_to_columns() -> None:
    assert parse_mapping_flags(" client_id=cust , timestamp=ts,amount=amt ", "purchases") == {
        "client_id": "cust", "timestamp": "ts", "amount": "amt"}


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("client_id", "is not field=column"),
        ("client_id=", "is not field=column"),
        ("=cust", "is not field=column"),
        ("client_id=a,client_id=b", "mapped twice"),
        ("customer=cust", "'customer' is not a field of purchases"),
    ],
)
def test_bad_flags_are_refused_with_the_reason(text: str, expected: str) -> None:
    with pytest.raises(MappingError, match=expected):
        parse_mapping_flags(text, "purchases")


def test_kind_aliases_and_unknown_kinds() -> None:
    assert canonical_kind("Usage-Events") == "usage"
    assert canonical_kind("ticket") == "tickets"
    with pytest.raises(MappingError, match="unknown event kind 'orders'; use one of: clients, subscriptions"):
        canonical_kind("orders")


def test_toml_file_gives_the_table_of_the_kind(tmp_path: Path) -> None:
    path = tmp_path / "mapping.toml"
    path.write_text('[purchases]\nclient_id = "cust"\ntimestamp = "ts"\n\n[usage_events]\nevent_type = "what"\n',
                    encoding="utf-8")
    assert load_mapping_file(path, "purchases") == {"client_id": "cust", "timestamp": "ts"}
    assert load_mapping_file(path, "usage") == {"event_type": "what"}
    assert load_mapping_file(path, "tickets") == {}  # canonical names for kinds the file leaves out


def test_flat_toml_file_serves_one_kind(tmp_path: Path) -> None:
    path = tmp_path / "m.toml"
    path.write_text('client_id = "cust"\namount = "amt"\n', encoding="utf-8")
    assert load_mapping_file(path, "purchases") == {"client_id": "cust", "amount": "amt"}


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("[purchases\nclient_id = 1", "is not valid TOML"),
        ("[orders]\nclient_id = \"c\"\n", r"\[orders\] is not an event kind"),
        ("[purchases]\nclient_id = 3\n", "purchases.client_id must name a column"),
        ("[purchases]\nwhen = \"ts\"\n", "'when' is not a field of purchases"),
        ("amount = \"a\"\n[purchases]\nclient_id = \"c\"\n", "stand outside any \\[kind\\] table"),
    ],
)
def test_bad_mapping_files_are_refused(tmp_path: Path, text: str, expected: str) -> None:
    path = tmp_path / "bad.toml"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(MappingError, match=expected):
        load_mapping_file(path, "purchases")


def test_missing_mapping_file_is_named(tmp_path: Path) -> None:
    with pytest.raises(MappingError, match="does not exist"):
        load_mapping_file(tmp_path / "nope.toml", "clients")


def test_flags_override_the_file(tmp_path: Path) -> None:
    path = tmp_path / "mapping.toml"
    path.write_text('[purchases]\nclient_id = "cust"\ntimestamp = "ts"\n', encoding="utf-8")
    assert resolve_mapping("purchases", file=path, flags="timestamp=when") == {"client_id": "cust",
                                                                               "timestamp": "when"}
