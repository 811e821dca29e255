"""Encodings of real exports: named, marked, UTF-8 or guessed and said so; never silently garbled.

The files are real bytes in the encodings CRM systems write: Russian in Windows-1251, Polish
and Czech in Windows-1250, French and German in Windows-1252 / Latin-1, UTF-16 with a mark,
and UTF-8 with one damaged byte (the case that used to become phantom clients).
"""

from __future__ import annotations

import json
import random

import pytest
from sqlmodel import col, select

import churnguard
from storage.db import Database
from storage.encodings import alphabet_fit, check_encoding, decode, oddities
from storage.errors import IngestRejected, UserError
from storage.events.ingest import ingest_events
from storage.ingest import ingest_file
from storage.readers import Limits, parse_bytes
from storage.schema import Schema
from storage.tables import ClientRecord

SCHEMA = Schema("Клиент", "Отток", "Да")
LATIN = Schema("id", "Churn", "Yes")

# Names, cities and plans in each language, as a CRM export holds them.
LANGUAGES = {
    "russian": ("cp1251", ["Пётр Иванов", "Анна Смирнова", "Сергей Кузнецов", "Ольга Попова", "Дмитрий Соколов"],
                ["Москва", "Казань", "Санкт-Петербург", "Омск", "Екатеринбург"], ["Базовый", "Премиум", "Семейный"]),
    "polish": ("cp1250", ["Łukasz Wąsik", "Zofia Żółć", "Paweł Ślązak", "Małgorzata Ćwik", "Katarzyna Wójcik"],
               ["Łódź", "Kraków", "Gdańsk", "Wrocław", "Częstochowa"], ["Podstawowy", "Rozszerzony", "Premium"]),
    "czech": ("cp1250", ["Jiří Dvořák", "Šárka Nováková", "Tomáš Černý", "Eva Růžičková", "Zdeněk Procházka"],
              ["Brno", "Plzeň", "České Budějovice", "Ústí nad Labem", "Hradec Králové"], ["Základní", "Rozšířený"]),
    "french": ("cp1252", ["Hélène Lefèvre", "François Gérard", "Zoë Dupré", "Gaëlle Bérard", "Jérôme Fèvre"],
               ["Besançon", "Orléans", "Nîmes", "Saint-Étienne", "Béziers"], ["Élémentaire", "Étendu", "Privilège"]),
    "german": ("latin-1", ["Jürgen Müller", "Uwe Groß", "Anna Schäfer", "Jörg Köhler", "Käthe Lüdtke"],
               ["Köln", "München", "Düsseldorf", "Nürnberg", "Würzburg"], ["Grundtarif", "Erweitert", "Prämie"]),
}


def export(language: str, rows: int = 30, seed: int = 0) -> str:
    """A semicolon-separated client export (as Excel writes in these countries)."""
    _, names, cities, plans = LANGUAGES[language]
    pick = random.Random(seed).choice
    lines = ["id;name;city;plan;amount;Churn"]
    lines += [f"K{i:03d};{pick(names)};{pick(cities)};{pick(plans)};{i % 50},{i % 100:02d};{'Yes' if i % 4 else 'No'}"
              for i in range(1, rows + 1)]
    return "\n".join(lines) + "\n"


def parse(data: bytes, encoding: str | None = None):
    return parse_bytes(data, source_name="export.csv", limits=Limits(), keep_text=("id", "Churn"), encoding=encoding)


def stored_ids(db: Database) -> list[str]:
    with db.session() as session:
        return list(session.exec(select(ClientRecord.client_id).order_by(col(ClientRecord.id))).all())


# ------------------------------------------------------------------------------------------
# Legacy encodings: read right, and the guess is reported
# ------------------------------------------------------------------------------------------


@pytest.mark.parametrize("language", list(LANGUAGES))
def test_legacy_exports_are_read_right_and_the_guess_is_a_warning(language):
    encoding = LANGUAGES[language][0]
    text = export(language)

    table = parse(text.encode(encoding))

    _, names, cities, _ = LANGUAGES[language]
    assert set(table.frame["name"]) <= set(names) and set(table.frame["city"]) <= set(cities)
    assert table.encoding == ("cp1252" if encoding == "latin-1" else encoding)  # Latin-1's superset reads alike
    assert [note["message"][:len("not UTF-8: read as " + table.encoding)] for note in table.notes] == [
        f"not UTF-8: read as {table.encoding}"]


@pytest.mark.parametrize("language", ["polish", "czech"])
def test_central_european_text_is_not_read_as_western(language):
    # CP1250 shares most bytes with CP1252: "Dvořák" would become "Dvoøák", "Łódź" "£ódŸ".
    for seed in range(5):
        text = export(language, rows=12, seed=seed)
        assert decode(text.encode("cp1250"), "export.csv").text == text


def test_a_cp1251_batch_is_stored_with_its_cyrillic_ids_and_the_report_warns(db, tmp_path):
    text = "Клиент;Город;Тариф;Отток\n" + "".join(
        f"Клиент-{i};{city};Базовый;{'Да' if i % 3 == 0 else 'Нет'}\n"
        for i, city in enumerate(["Москва", "Казань", "Омск", "Пермь"] * 10, start=1))
    path = tmp_path / "клиенты.csv"
    path.write_bytes(text.encode("cp1251"))

    report = ingest_file(db, path, schema=SCHEMA)

    assert report.encoding == "cp1251"
    assert stored_ids(db)[:2] == ["Клиент-1", "Клиент-2"]
    assert "not UTF-8: read as cp1251 (Cyrillic, Windows-1251)" in report.to_text()


def test_utf16_with_a_byte_order_mark_is_read_without_a_warning():
    text = export("czech")

    table = parse(text.encode("utf-16"))

    assert table.encoding == "utf-16" and table.notes == []
    assert table.frame["city"].str.contains("ř|ě|á|Ú|é").any()


# ------------------------------------------------------------------------------------------
# UTF-8 with a few bad bytes: refused, naming the lines; never re-read in another charset
# ------------------------------------------------------------------------------------------


def damaged_cyrillic_utf8() -> bytes:
    text = "Клиент;Город;Отток\n" + "".join(f"Клиент-{i};Москва;{'Да' if i % 3 == 0 else 'Нет'}\n"
                                            for i in range(1, 41))
    data = bytearray(text.encode("utf-8"))
    data[data.index("Клиент-7;".encode()) + 2] = 0xFF  # one byte of "л" damaged, on file line 8
    return bytes(data)


def test_utf8_with_one_bad_byte_is_refused_naming_the_line_and_nothing_is_stored(db, tmp_path):
    path = tmp_path / "clients.csv"
    path.write_bytes(damaged_cyrillic_utf8())

    with pytest.raises(IngestRejected) as caught:
        ingest_file(db, path, schema=SCHEMA)

    error = caught.value
    assert error.details["problem"] == "bad_encoding" and error.details["rows"] == [8]
    assert error.details["row_kind"] == "file line"
    assert "UTF-8 text except for" in str(error) and "file line 8" in str(error)
    assert "Москва" in str(error)  # the line is shown decoded, with only the bad byte replaced
    assert "--encoding" not in str(error)  # the same text reaches the chat, where there is no flag
    assert db.row_counts()["client_record"] == 0


def test_many_damaged_lines_are_listed_up_to_five():
    lines = ["id;city;Churn"] + [f"{i};Köln;{'Yes' if i % 2 else 'No'}" for i in range(1, 40)]
    data = ("\n".join(lines) + "\n").encode()
    for line in (3, 9, 12, 20, 21, 30):
        start = data.index(f"\n{line - 1};".encode()) + 1
        data = data[:start + 4] + b"\xe9" + data[start + 5:]  # "ö" of Köln -> a Latin-1 "é" byte, half a char

    with pytest.raises(IngestRejected) as caught:
        parse(data)

    assert caught.value.details["rows"] == [3, 9, 12, 20, 21]
    assert "the first 5 such lines" in str(caught.value)


def test_the_command_line_names_the_lines_and_offers_encoding(home, tmp_path, capsys):
    path = tmp_path / "clients.csv"
    path.write_bytes(damaged_cyrillic_utf8())

    code = churnguard.main(["ingest", str(path), "--id-column", "Клиент", "--label-column", "Отток",
                            "--positive-label", "Да"])

    err = capsys.readouterr().err
    assert code == 2
    assert "file line 8" in err and "--encoding" in err


# ------------------------------------------------------------------------------------------
# --encoding: the user's word wins, strictly
# ------------------------------------------------------------------------------------------


def test_a_named_encoding_is_used_without_a_guess(home, tmp_path, capsys):
    path = tmp_path / "klienci.csv"
    path.write_bytes(export("polish").encode("cp1250"))

    code = churnguard.main(["ingest", str(path), "--encoding", "Windows-1250", "--id-column", "id", "--json"])

    payload = json.loads(capsys.readouterr().out)
    assert code == 0 and payload["encoding"] == "cp1250" and payload["warnings"] == []


def test_a_named_encoding_that_does_not_fit_is_refused_with_the_lines(home, tmp_path, capsys):
    path = tmp_path / "klienci.csv"
    path.write_bytes(export("polish").encode("cp1250"))

    code = churnguard.main(["ingest", str(path), "--encoding", "utf-8", "--id-column", "id"])

    err = capsys.readouterr().err
    assert code == 2 and "was read as the encoding you named, utf-8" in err and "file lines 2 (" in err


def test_a_named_encoding_reads_a_damaged_utf8_file_as_the_user_says():
    # The user knows better: the file is Windows-1251 that happens to hold UTF-8-like bytes.
    table = parse(damaged_cyrillic_utf8(), encoding="cp1251")

    assert table.encoding == "cp1251" and table.notes == []


@pytest.mark.parametrize("name", ["klingon", "rot13", "base64"])
def test_unknown_or_non_text_encodings_are_refused(home, tmp_path, capsys, name):
    path = tmp_path / "a.csv"
    path.write_bytes(b"id,Churn\n1,Yes\n")

    code = churnguard.main(["ingest", str(path), "--encoding", name])

    assert code == 2 and "cp1251" in capsys.readouterr().err  # names encodings that exist
    with pytest.raises(UserError):
        check_encoding(name)


# ------------------------------------------------------------------------------------------
# Event files: the same rules, chunked reading included
# ------------------------------------------------------------------------------------------


def test_event_files_in_cp1251_are_read_and_the_guess_is_reported(db, tmp_path):
    clients = tmp_path / "clients.csv"
    clients.write_bytes("клиент,регион\n" "К-1,Москва\nК-2,Казань\n".encode("cp1251"))
    usage = tmp_path / "usage.csv"
    usage.write_bytes(("клиент,время,событие\n" + "".join(
        f"К-{1 + i % 2},2024-01-{1 + i % 28:02d} 10:00:00,{event}\n"
        for i, event in enumerate(["вход", "покупка", "жалоба"] * 20))).encode("cp1251"))
    mapping = {"client_id": "клиент"}

    first = ingest_events(db, clients, kind="clients", mapping=mapping)
    second = ingest_events(db, usage, kind="usage", mapping={**mapping, "timestamp": "время", "event_type": "событие"})

    assert first.attributes == ["регион"] and second.rows == 60
    assert any(note.startswith("not UTF-8: read as cp1251") for note in first.notes + second.notes)
    assert len([n for n in second.notes if n.startswith("not UTF-8")]) == 1


def test_an_event_file_with_a_damaged_utf8_byte_is_refused(db, tmp_path):
    clients = tmp_path / "clients.csv"
    clients.write_bytes(damaged_cyrillic_utf8())

    with pytest.raises(IngestRejected) as caught:
        ingest_events(db, clients, kind="clients", mapping={"client_id": "Клиент"})

    assert caught.value.details["rows"] == [8]
    assert db.row_counts()["event_client"] == 0


# ------------------------------------------------------------------------------------------
# The tie-breakers on their own
# ------------------------------------------------------------------------------------------


def test_words_of_a_wrong_charset_are_odd_and_real_words_are_not():
    assert oddities("Jürgen Müller, Saint-Étienne, Санкт-Петербург, N° 5, 12 m²") == 0
    assert oddities("Mьller") == oddities("MŘller") == oddities("M³ller") == oddities("v·ros") == 1


def test_one_alphabet_fits_text_decoded_right():
    assert alphabet_fit("Jiří Dvořák, České Budějovice") == 1.0
    assert alphabet_fit("Jiøí Dvoøák, Èeské Budìjovice") < 1.0  # Danish ø next to Italian ì
