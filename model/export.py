"""The whole contact list as documents: every flagged client, riskiest first, as CSV and XLSX.

A retention team works through the flagged clients in a spreadsheet, and with most of a
store flagged that is tens of thousands of rows, so the documents are written while the list
is made: ``Scorer.flagged_ranking`` hands out the ranking a chunk at a time (probabilities
first, then reasons for one ranked chunk at a time) and each chunk goes straight into every
document being written.  No list of all rows, and no DataFrame of them, ever exists:

* CSV through the ``csv`` module, UTF-8 with a BOM (so Excel shows non-ASCII ids), CRLF;
* XLSX through XlsxWriter in ``constant_memory`` mode, which flushes each row to a temporary
  file when the next one starts (a sheet holds at most 1,048,576 rows; longer lists go on
  into "Flagged clients (2)", ...).  Probabilities are numbers formatted as percentages, so
  the sheet sorts and filters; an "About" sheet names the model, the threshold and the date.

Each row carries the rank, the client id, the churn probability, the risk band, the top three
reasons in the words /score uses, the threshold, the model version and the as-of date, so a
row copied out of the file still says where it came from.

Client ids and CRM values come from outside: a text cell that a spreadsheet would run as a
formula (starting with ``=``, ``+``, ``-``, ``@``, tab or carriage return) gets a leading
apostrophe, in both formats (XLSX cells are written as text and never as formulas anyway, but
a sheet saved back as CSV would carry the raw text out again).

A document is written to a temporary file beside its target and renamed into place at the
end: a failure leaves no half-written file, and an earlier file at that path stays as it was.
"""

from __future__ import annotations

import contextlib
import csv
import io
import os
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any, Protocol

from model.reasons import reason_text
from model.scoring import FlaggedList, ScoreResult
from storage.errors import UserError
from storage.tables import utcnow

FORMULA_PREFIXES = ("=", "+", "-", "@", "\t", "\r")
COLUMNS = ("rank", "client_id", "churn_probability", "risk_band", "reason_1", "reason_2", "reason_3",
           "threshold", "model_version", "as_of")
FORMATS = (".csv", ".xlsx")
REASONS = 3
SHEET = "Flagged clients"
SHEET_ROWS = 1_048_576  # Excel's limit, the header row included
WIDTHS = (7, 18, 17, 10, 44, 44, 44, 10, 14, 17)


def csv_safe(value: object) -> str:
    """A cell a spreadsheet shows as text: formula-looking values get a leading apostrophe."""
    text = "" if value is None else str(value)
    return "'" + text if text.startswith(FORMULA_PREFIXES) else text


def when(moment: datetime | None) -> str:
    return "" if moment is None else f"{moment:%Y-%m-%d %H:%M}"


@dataclass(frozen=True)
class Row:
    """One line of the list, before formatting."""

    rank: int
    client_id: str
    probability: float
    risk_band: str
    reasons: tuple[str, ...]
    threshold: float
    model_version: str
    as_of: str


def rows_of(results: Sequence[ScoreResult], first_rank: int, as_of: str) -> list[Row]:
    out = []
    for rank, result in enumerate(results, start=first_rank):
        reasons = tuple(reason_text(item) for item in result.reasons[:REASONS])
        out.append(Row(rank, result.client_id, float(result.probability or 0.0), str(result.risk_band or ""),
                       reasons + ("",) * (REASONS - len(reasons)), float(result.threshold or 0.0),
                       str(result.model_version or ""), as_of))
    return out


class Document(Protocol):
    """A document being written: rows are added in order, then it is finished or discarded."""

    path: Path

    def add(self, rows: Sequence[Row]) -> None: ...

    def finish(self) -> int: ...

    def discard(self) -> None: ...


def _temporary(path: Path) -> Path:
    return path.with_name(f".{path.stem}.{os.getpid()}.part{path.suffix}")


class CsvDocument:
    """The list as CSV, one row at a time."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._temporary = _temporary(path)
        self._stream: io.TextIOWrapper | None = open(  # noqa: SIM115 - closed in finish/discard
            self._temporary, "w", encoding="utf-8-sig", newline="")
        self._writer = csv.writer(self._stream, lineterminator="\r\n")
        self._writer.writerow(COLUMNS)

    def add(self, rows: Sequence[Row]) -> None:
        self._writer.writerows(
            [row.rank, csv_safe(row.client_id), f"{row.probability:.4f}", csv_safe(row.risk_band),
             *(csv_safe(reason) for reason in row.reasons), f"{row.threshold:.4f}", csv_safe(row.model_version),
             csv_safe(row.as_of)]
            for row in rows
        )

    def finish(self) -> int:
        assert self._stream is not None
        self._stream.close()
        self._stream = None
        os.replace(self._temporary, self.path)
        return self.path.stat().st_size

    def discard(self) -> None:
        if self._stream is not None:
            with contextlib.suppress(OSError):
                self._stream.close()
            self._stream = None
        self._temporary.unlink(missing_ok=True)


class XlsxDocument:
    """The list as an Excel workbook, written in XlsxWriter's constant-memory mode."""

    def __init__(self, path: Path, about: dict[str, Any]) -> None:
        import xlsxwriter

        self.path = path
        self.about = about
        self._temporary = _temporary(path)
        self._book: Any = xlsxwriter.Workbook(str(self._temporary), {
            "constant_memory": True,  # each row is flushed to disk when the next one starts
            "strings_to_formulas": False, "strings_to_urls": False, "strings_to_numbers": False,
        })
        self._bold = self._book.add_format({"bold": True})
        self._percent = self._book.add_format({"num_format": "0.0%"})
        self._closed = False
        self._sheets: list[Any] = []
        self._row = SHEET_ROWS  # forces the first sheet
        self._last_rows: list[int] = []

    def _sheet(self) -> Any:
        if self._row < SHEET_ROWS:
            return self._sheets[-1]
        if self._sheets:
            self._last_rows.append(self._row - 1)
        name = SHEET if not self._sheets else f"{SHEET} ({len(self._sheets) + 1})"
        sheet = self._book.add_worksheet(name)
        for column, width in enumerate(WIDTHS):
            sheet.set_column(column, column, width)
        sheet.freeze_panes(1, 0)
        for column, title in enumerate(COLUMNS):
            sheet.write_string(0, column, title, self._bold)
        self._sheets.append(sheet)
        self._row = 1
        return sheet

    def add(self, rows: Sequence[Row]) -> None:
        for row in rows:
            sheet = self._sheet()
            r = self._row
            sheet.write_number(r, 0, row.rank)
            sheet.write_string(r, 1, csv_safe(row.client_id))
            sheet.write_number(r, 2, row.probability, self._percent)
            sheet.write_string(r, 3, csv_safe(row.risk_band))
            for offset, reason in enumerate(row.reasons):
                sheet.write_string(r, 4 + offset, csv_safe(reason))
            sheet.write_number(r, 4 + REASONS, row.threshold, self._percent)
            sheet.write_string(r, 5 + REASONS, csv_safe(row.model_version))
            sheet.write_string(r, 6 + REASONS, csv_safe(row.as_of))
            self._row += 1

    def finish(self) -> int:
        self._sheet()  # a list with no rows still gets its header
        self._last_rows.append(self._row - 1)
        for sheet, last in zip(self._sheets, self._last_rows, strict=True):
            sheet.autofilter(0, 0, max(last, 1), len(COLUMNS) - 1)
        about = self._book.add_worksheet("About")
        about.set_column(0, 0, 24)
        about.set_column(1, 1, 90)
        for r, (label, value) in enumerate(self.about.items()):
            about.write_string(r, 0, label, self._bold)
            if isinstance(value, int | float) and not isinstance(value, bool):
                about.write_number(r, 1, value, self._percent if label == "Threshold" else None)
            else:
                about.write_string(r, 1, csv_safe(value))
        self._closed = True
        self._book.close()
        os.replace(self._temporary, self.path)
        return self.path.stat().st_size

    def discard(self) -> None:
        if not self._closed:
            self._closed = True
            with contextlib.suppress(Exception):
                self._book.close()
        self._temporary.unlink(missing_ok=True)


@dataclass(frozen=True)
class ExportResult:
    """What was written: the documents, how many clients, from which model and date."""

    rows: int
    active: int
    model_version: str
    champion: str
    threshold: float
    as_of: datetime | None
    files: dict[str, Path] = field(default_factory=dict)  # by format, ".csv" / ".xlsx"
    sizes: dict[str, int] = field(default_factory=dict)
    warnings: tuple[str, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        return {
            "rows": self.rows,
            "active_clients": self.active,
            "model_version": self.model_version,
            "threshold": self.threshold,
            "as_of": when(self.as_of) or None,
            "files": {fmt.lstrip("."): str(path) for fmt, path in self.files.items()},
            "bytes": {fmt.lstrip("."): size for fmt, size in self.sizes.items()},
            "warnings": list(self.warnings),
        }


def about(flagged: FlaggedList) -> dict[str, Any]:
    """The "About" sheet: what the list is and where it comes from."""
    facts: dict[str, Any] = {
        "What": "Every client flagged for contact (churn probability at or above the threshold), riskiest first",
        "Model version": flagged.model_version,
        "Threshold": flagged.threshold,
        "As of": when(flagged.as_of) or "unknown",
        "Flagged clients": flagged.total,
        "Active clients ranked": flagged.active,
        "Made at (UTC)": f"{utcnow():%Y-%m-%d %H:%M}",
        "Reasons": "the three features that moved each client's score most, in the words /score uses",
        "Cells": "text starting with = + - @ (or a tab or carriage return) has a leading apostrophe, so a "
                 "spreadsheet never runs it as a formula",
    }
    if flagged.champion != flagged.model_version:
        facts["Note"] = (f"the champion {flagged.champion} could not be loaded; its newest intact predecessor "
                         f"{flagged.model_version} made this list")
    return facts


def check_format(path: Path) -> str:
    suffix = path.suffix.lower()
    if suffix not in FORMATS:
        raise UserError(f"{path.name}: the list is written as .csv or .xlsx, not {suffix or 'a file without a suffix'}",
                        output=str(path))
    return suffix


def write_list(flagged: FlaggedList, paths: Iterable[Path]) -> ExportResult:
    """Write the list into every path (.csv or .xlsx) in one pass over its chunks."""
    targets = [Path(path) for path in paths]
    formats = [check_format(path) for path in targets]
    if len(set(formats)) != len(formats):
        raise ValueError("one document per format")
    as_of = when(flagged.as_of)
    documents: list[Document] = []
    try:
        for path, fmt in zip(targets, formats, strict=True):
            documents.append(CsvDocument(path) if fmt == ".csv" else XlsxDocument(path, about(flagged)))
        written = 0
        for chunk in flagged.chunks:
            rows = rows_of(chunk, written + 1, as_of)
            for document in documents:
                document.add(rows)
            written += len(rows)
        sizes = {fmt: document.finish() for fmt, document in zip(formats, documents, strict=True)}
    except BaseException:
        for document in documents:
            document.discard()
        raise
    return ExportResult(written, flagged.active, flagged.model_version, flagged.champion, flagged.threshold,
                        flagged.as_of, dict(zip(formats, targets, strict=True)), sizes, flagged.warnings)


__all__ = [
    "COLUMNS",
    "FORMATS",
    "FORMULA_PREFIXES",
    "ExportResult",
    "about",
    "check_format",
    "csv_safe",
    "write_list",
]
