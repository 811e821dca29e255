"""Turn a CRM export (CSV, .csv.gz, Parquet) or a SQL result into a typed DataFrame.

Reading is kept apart from validation and storage so that each way a file can be
unreadable is testable on its own, and so the command line, the bot upload and the inbox
job give the same answer for the same bytes.  Every refusal raises ``IngestRejected``
with a message that says what is wrong and where, because the person reading it is a
retention analyst holding an export from their CRM, not a developer.

Text is read as strings first and typed afterwards: CRM exports routinely store numbers
as text (Telco's ``TotalCharges`` has blank cells), so a column is numeric when every
non-blank cell parses as a number, whatever the file claimed.
"""

from __future__ import annotations

import codecs
import csv
import gzip
import hashlib
import io
import itertools
import re
import zlib
from collections.abc import Collection, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, NotRequired, TypedDict

import numpy as np
import pandas as pd

from storage.encodings import Decoded, check_encoding, decode
from storage.errors import IngestRejected

NUMERIC = "numeric"
CATEGORICAL = "categorical"

# Cells that mean "no value" in a column of numbers.  In a text column only blank cells
# are missing: "NA" may be a country code and "None" a real answer ("None" internet plan).
MISSING_TOKENS = frozenset({"", "na", "n/a", "nan", "null", "none", "-", "?", "#n/a", "<na>"})

ACCEPTED_DELIMITERS = (",", ";")
_OTHER_DELIMITERS = {"\t": "tabs", "|": "'|'"}
_SNIFF_CHARS = 256 * 1024
_SNIFF_RECORDS = 200
_MAX_EXAMPLES = 5

_MAGIC: tuple[tuple[bytes, str], ...] = (
    (b"\x89PNG", "a PNG image"),
    (b"%PDF", "a PDF document"),
    (b"PK\x03\x04", "a ZIP archive (an Excel .xlsx workbook is one; save it as CSV instead)"),
    (b"\xd0\xcf\x11\xe0", "an old-style Excel/Office document (save it as CSV instead)"),
    (b"\xff\xd8\xff", "a JPEG image"),
    (b"GIF8", "a GIF image"),
    (b"SQLite format 3", "an SQLite database"),
    (b"\x7fELF", "a program"),
)


class Note(TypedDict):
    """A warning about one column (``column`` None: about the whole batch).

    ``message`` is the command line's wording; ``chat``, when present, the chat's (the same
    warning with advice a Telegram user can act on instead of a command-line flag).
    """

    column: str | None
    message: str
    chat: NotRequired[str]


@dataclass(frozen=True)
class Limits:
    """How much one batch may hold; refusing early keeps a wrong upload from eating memory."""

    max_file_mb: float = 500.0
    max_rows: int = 5_000_000
    max_columns: int = 1000

    @property
    def max_bytes(self) -> int:
        return int(self.max_file_mb * 1024 * 1024)

    @classmethod
    def from_settings(cls, settings: object) -> Limits:
        return cls(
            max_file_mb=float(getattr(settings, "max_file_mb")),  # noqa: B009
            max_rows=int(getattr(settings, "max_rows")),  # noqa: B009
            max_columns=int(getattr(settings, "max_columns")),  # noqa: B009
        )


@dataclass
class Table:
    """A parsed batch: ``frame`` holds numeric columns as float64 and every other column as
    stripped text with blanks as NaN; ``column_types`` types each column that was not kept
    as text (the id and label columns are kept as text so "007" stays "007")."""

    frame: pd.DataFrame
    column_types: dict[str, str]
    source_name: str
    sha256: str
    format: str  # csv | csv.gz | parquet | frame
    encoding: str | None = None
    delimiter: str | None = None
    notes: list[Note] = field(default_factory=list)

    @property
    def rows(self) -> int:
        return len(self.frame)


def reject(message: str, problem: str, **details: Any) -> IngestRejected:
    return IngestRejected(message, problem=problem, **details)


def sha256_of(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


# ------------------------------------------------------------------------------------------
# Entry points
# ------------------------------------------------------------------------------------------


def read_bytes(path: Path | str, limits: Limits) -> bytes:
    """The raw file, after checking its size from the file system (before reading it)."""
    path = Path(path)
    if not path.exists():
        raise reject(f"{path}: no such file", "not_found", path=str(path))
    if not path.is_file():
        raise reject(f"{path}: not a file", "not_a_file", path=str(path))
    size = path.stat().st_size
    if size > limits.max_bytes:
        raise reject(
            f"{path.name} is {size / 1024 / 1024:.1f} MB, over the limit of {limits.max_file_mb:g} MB "
            f"(CHURNGUARD_MAX_FILE_MB); split the export or raise the limit",
            "too_big",
            size_mb=round(size / 1024 / 1024, 2),
            limit_mb=limits.max_file_mb,
        )
    return path.read_bytes()


def read_table(
    path: Path | str, *, limits: Limits, keep_text: Collection[str] = (), source_name: str | None = None,
    encoding: str | None = None,
) -> Table:
    """Read a CSV, .csv.gz or Parquet file into a typed table (see ``parse_bytes``)."""
    data = read_bytes(path, limits)
    return parse_bytes(data, source_name=source_name or Path(path).name, limits=limits, keep_text=keep_text,
                       encoding=encoding)


def parse_bytes(
    data: bytes, *, source_name: str, limits: Limits, keep_text: Collection[str] = (), sha256: str | None = None,
    encoding: str | None = None,
) -> Table:
    """Parse an uploaded file's bytes; the format is taken from the content, not the name,
    because CRM exports and chat uploads often carry the wrong extension.  ``encoding``:
    the text encoding the user named (``--encoding``), else it is found (``decode_text``)."""
    digest = sha256 or sha256_of(data)
    encoding = check_encoding(encoding)
    if not data.strip():
        raise reject(f"{source_name} is empty", "empty")
    if data[:4] == b"PAR1":
        frame = _read_parquet(data, source_name, limits)
        return table_from_frame(frame, source_name=source_name, limits=limits, keep_text=keep_text,
                                sha256=digest, fmt="parquet")
    fmt = "csv"
    if data[:2] == b"\x1f\x8b":
        data = _gunzip(data, source_name, limits)
        fmt = "csv.gz"
        if not data.strip():
            raise reject(f"{source_name} is empty once decompressed", "empty")
        if data[:4] == b"PAR1":
            raise reject(f"{source_name} is a gzip-compressed Parquet file; send the .parquet file itself",
                         "not_a_table")
    _reject_binary(data, source_name, encoding)
    decoded = decode_text(data, source_name, encoding)
    text = decoded.text
    _reject_non_table(text, source_name)
    delimiter = sniff_delimiter(text, source_name)
    header = _check_shape(text, delimiter, source_name, limits)
    frame = pd.read_csv(
        io.StringIO(text), sep=delimiter, dtype=str, keep_default_na=False, na_filter=False,
        skip_blank_lines=True, header=0,
    )
    if frame.shape[1] != len(header):  # pragma: no cover - both parsers follow RFC 4180 quoting
        raise reject(f"{source_name}: the header could not be parsed consistently", "bad_delimiter")
    frame.columns = pd.Index(header)
    notes: list[Note] = [] if decoded.note is None else [{"column": None, "message": decoded.note}]
    frame = _drop_blank_rows(frame, notes)
    if frame.empty:
        raise reject(f"{source_name} has a header but no data rows", "empty")
    typed, types = type_columns(frame, keep_text=keep_text, decimal_comma=delimiter == ";", notes=notes)
    return Table(typed, types, source_name, digest, fmt, decoded.encoding, delimiter, notes)


def table_from_frame(
    frame: pd.DataFrame,
    *,
    source_name: str,
    limits: Limits,
    keep_text: Collection[str] = (),
    sha256: str | None = None,
    fmt: str = "frame",
) -> Table:
    """Type a DataFrame that came from Parquet or a SQL query the same way as a CSV file.

    Without a file there are no raw bytes to hash, so the hash is taken over a CSV
    rendering of the rows: pulling the same rows twice is recognised as a repeat."""
    frame = frame.reset_index(drop=True)
    names = [str(name).strip() for name in frame.columns]
    _check_names(names, source_name)
    frame.columns = pd.Index([name or f"Unnamed: {i}" for i, name in enumerate(names)])
    if frame.shape[1] > limits.max_columns:
        raise _too_many_columns(source_name, frame.shape[1], limits)
    if len(frame) > limits.max_rows:
        raise _too_many_rows(source_name, len(frame), limits)
    if frame.shape[1] < 2:
        raise reject(f"{source_name} has {frame.shape[1]} column(s); a client table needs at least an id "
                     "column and one more", "not_a_table")
    digest = sha256 or sha256_of(frame.to_csv(index=False).encode("utf-8"))
    notes: list[Note] = []
    frame = _drop_blank_rows(frame, notes)
    if frame.empty:
        raise reject(f"{source_name} has no data rows", "empty")
    typed, types = type_columns(frame, keep_text=keep_text, decimal_comma=False, notes=notes)
    return Table(typed, types, source_name, digest, fmt, None, None, notes)


# ------------------------------------------------------------------------------------------
# Format checks
# ------------------------------------------------------------------------------------------


_GZIP_CHUNK = 1 << 20  # bytes decompressed at a time


def _gunzip(data: bytes, source_name: str, limits: Limits) -> bytes:
    """The decompressed bytes, once the archive is known to fit the limit.

    A small archive can inflate a thousandfold (a "gzip bomb").  So the archive is first
    decompressed a chunk at a time, only counting, and refused the moment the count passes
    ``CHURNGUARD_MAX_FILE_MB``: memory stays at one chunk however large the output would be.
    Only an archive that fits is decompressed again, for real."""
    total = 0
    for chunk in _inflate(data, source_name):
        total += len(chunk)
        if total > limits.max_bytes:
            raise reject(
                f"{source_name} decompresses to more than the limit of {limits.max_file_mb:g} MB "
                f"(CHURNGUARD_MAX_FILE_MB); split the export or raise the limit",
                "too_big",
                limit_mb=limits.max_file_mb,
            )
    return b"".join(_inflate(data, source_name))


def _inflate(data: bytes, source_name: str) -> Iterator[bytes]:
    """The decompressed content of a gzip archive (every member), ``_GZIP_CHUNK`` bytes at a time."""
    try:
        with gzip.GzipFile(fileobj=io.BytesIO(data)) as archive:
            while chunk := archive.read(_GZIP_CHUNK):
                yield chunk
    except (OSError, EOFError, zlib.error) as error:
        raise reject(f"{source_name} looks gzip-compressed but cannot be decompressed: {error}",
                     "not_a_table") from None


def _read_parquet(data: bytes, source_name: str, limits: Limits) -> pd.DataFrame:
    import pyarrow as pa
    import pyarrow.parquet as pq

    try:
        parquet = pq.ParquetFile(io.BytesIO(data))
        meta = parquet.metadata
        if meta.num_columns > limits.max_columns:
            raise _too_many_columns(source_name, meta.num_columns, limits)
        if meta.num_rows > limits.max_rows:
            raise _too_many_rows(source_name, meta.num_rows, limits)
        # ignore_metadata: a saved pandas index (often the client id) comes back as a column.
        frame = parquet.read().to_pandas(ignore_metadata=True)
    except (pa.ArrowException, OSError, ValueError) as error:
        raise reject(f"{source_name} is not a readable Parquet file: {error}", "not_a_table") from None
    hidden = [name for name in frame.columns if str(name).startswith("__index_level_")]
    return frame.drop(columns=hidden)


def _reject_binary(data: bytes, source_name: str, encoding: str | None = None) -> None:
    for magic, what in _MAGIC:
        if data.startswith(magic):
            raise reject(f"{source_name} is {what}, not a CSV or Parquet table", "not_a_table", detected=what)
    head = data[:8192]
    if head.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE, codecs.BOM_UTF32_BE)):
        return
    if encoding is not None and encoding.startswith(("utf-16", "utf-32")):
        return  # named by the user: its zero bytes are text
    if b"\x00" in head:
        raise reject(f"{source_name} is binary data, not a CSV or Parquet table", "not_a_table",
                     detected="binary")


def decode_text(data: bytes, source_name: str, encoding: str | None = None) -> Decoded:
    """The file's text: in the ``encoding`` named, else by byte-order mark, strict UTF-8 or a
    reported guess (``storage.encodings``; ``Decoded.note`` says when it was a guess)."""
    return decode(data, source_name, encoding)


def _reject_non_table(text: str, source_name: str) -> None:
    start = text.lstrip("\ufeff \t\r\n")[:200]
    lowered = start.lower()
    if lowered.startswith("<"):
        kind = "an HTML page" if "html" in lowered or "<table" in lowered else "HTML or XML"
        raise reject(f"{source_name} is {kind}, not a CSV table (a saved web page or a login/error page?)",
                     "not_a_table", detected="html")
    if start[:1] in "{[":
        raise reject(f"{source_name} looks like JSON, not a CSV table; export the data as CSV or Parquet",
                     "not_a_table", detected="json")
    sample = text[:8192]
    controls = sum(1 for ch in sample if ord(ch) < 32 and ch not in "\t\r\n")
    if controls > max(2, len(sample) // 100):
        raise reject(f"{source_name} is binary data, not a CSV or Parquet table", "not_a_table",
                     detected="binary")


# ------------------------------------------------------------------------------------------
# Delimiter and shape
# ------------------------------------------------------------------------------------------


def _records(text: str, delimiter: str) -> Any:
    return csv.reader(io.StringIO(text, newline=""), delimiter=delimiter)


def _is_blank(record: Sequence[str]) -> bool:
    return all(not value.strip() for value in record)


def sniff_delimiter(text: str, source_name: str) -> str:
    """',' or ';' — whichever splits the header into columns and the rows consistently."""
    sample = text[:_SNIFF_CHARS]
    if len(text) > _SNIFF_CHARS and "\n" in sample:
        sample = sample[: sample.rindex("\n")]
    stats: dict[str, tuple[int, float]] = {}
    for delimiter in (*ACCEPTED_DELIMITERS, *_OTHER_DELIMITERS):
        try:
            records = [r for r in itertools.islice(_records(sample, delimiter), _SNIFF_RECORDS) if not _is_blank(r)]
        except csv.Error:
            continue
        if not records:
            continue
        width = len(records[0])
        body = records[1:]
        share = sum(len(r) == width for r in body) / len(body) if body else 1.0
        stats[delimiter] = (width, share)
    usable = [d for d in ACCEPTED_DELIMITERS if stats.get(d, (0, 0.0))[0] > 1]
    if usable:
        return max(usable, key=lambda d: (stats[d][1], stats[d][0]))
    for delimiter, name in _OTHER_DELIMITERS.items():
        width, share = stats.get(delimiter, (0, 0.0))
        if width > 1 and share > 0.5:
            raise reject(
                f"{source_name} separates its columns with {name}; ChurnGuard reads files separated by "
                f"',' or ';' — save the export as CSV with one of those",
                "bad_delimiter",
                delimiter=delimiter,
            )
    raise reject(
        f"{source_name} has a single column: no ',' or ';' separates its header line into columns "
        f"(is it a CSV table?)",
        "not_a_table",
    )


def _check_names(names: Sequence[str], source_name: str) -> None:
    seen: dict[str, int] = {}
    for position, name in enumerate(names, start=1):
        if name and name in seen:
            raise reject(
                f"{source_name}: column {name!r} appears twice (columns {seen[name]} and {position}); "
                "column names must be unique",
                "duplicate_columns",
                column=name,
                positions=[seen[name], position],
            )
        seen[name] = position


def _check_shape(text: str, delimiter: str, source_name: str, limits: Limits) -> list[str]:
    """The cleaned header, after checking that every row has as
    many fields as the header — pandas would silently pad short rows with missing values."""
    reader = _records(text, delimiter)
    header: list[str] | None = None
    rows = 0
    bad: list[tuple[int, int]] = []
    bad_count = 0
    try:
        for record in reader:
            if header is None:
                if _is_blank(record):
                    continue
                header = [name.strip() for name in record]
                _check_names(header, source_name)
                if len(header) > limits.max_columns:
                    raise _too_many_columns(source_name, len(header), limits)
                continue
            if len(record) == len(header):
                rows += 1
                continue
            if not record or _is_blank(record):
                continue
            bad_count += 1
            if len(bad) < _MAX_EXAMPLES:
                bad.append((reader.line_num, len(record)))
    except csv.Error as error:
        raise reject(f"{source_name}: cannot split file line {reader.line_num} into fields: {error}",
                     "bad_delimiter", rows=[reader.line_num], row_kind="file line") from None
    assert header is not None  # the text is not blank
    if bad:
        where = ", ".join(f"line {line} has {count}" for line, count in bad)
        more = f" (and {bad_count - len(bad)} more lines)" if bad_count > len(bad) else ""
        raise reject(
            f"{source_name}: the header has {len(header)} fields separated by {delimiter!r}, but some file "
            f"lines do not: {where}{more}. The separator is inconsistent, or a field containing "
            f"{delimiter!r} is not quoted",
            "bad_delimiter",
            delimiter=delimiter,
            expected_fields=len(header),
            rows=[line for line, _ in bad],
            row_kind="file line",
            bad_rows=bad_count,
        )
    if rows > limits.max_rows:
        raise _too_many_rows(source_name, rows, limits)
    if rows == 0:
        raise reject(f"{source_name} has a header but no data rows", "empty")
    return [name or f"Unnamed: {i}" for i, name in enumerate(header)]


def _too_many_columns(source_name: str, count: int, limits: Limits) -> IngestRejected:
    return reject(
        f"{source_name} has {count} columns, over the limit of {limits.max_columns} (CHURNGUARD_MAX_COLUMNS)",
        "too_many_columns", columns=count, limit=limits.max_columns,
    )


def _too_many_rows(source_name: str, count: int, limits: Limits) -> IngestRejected:
    return reject(
        f"{source_name} has {count} data rows, over the limit of {limits.max_rows} (CHURNGUARD_MAX_ROWS); "
        "split the export or raise the limit",
        "too_many_rows", rows_in_file=count, limit=limits.max_rows,
    )


def _drop_blank_rows(frame: pd.DataFrame, notes: list[Note]) -> pd.DataFrame:
    """Spreadsheets often export trailing rows of bare separators (",,,,"); they are not clients."""
    def blank(column: pd.Series) -> pd.Series:
        return column.isna() | (column.astype("str").str.strip() == "")

    # A row can be empty only where its first cell is; only those rows are checked further.
    empty_rows = blank(frame.iloc[:, 0])
    if empty_rows.any():
        candidates = frame.loc[empty_rows]
        empty_rows.loc[empty_rows] = candidates.apply(blank).all(axis=1)
    count = int(empty_rows.sum())
    if count:
        notes.append({"column": None, "message": f"skipped {count} empty row(s)"})
        frame = frame.loc[~empty_rows]
    return frame


# ------------------------------------------------------------------------------------------
# Types
# ------------------------------------------------------------------------------------------

_DECIMAL_COMMA = re.compile(r"^[+-]?(\d+|\d*,\d+)$")


def as_text(series: pd.Series) -> pd.Series:
    """Stripped strings with NaN for blanks; integral numbers print without ".0" so that an
    id or label read from Parquet matches the same value read from CSV."""
    if pd.api.types.is_bool_dtype(series):
        return series.map({True: "True", False: "False"}).astype("str")
    if pd.api.types.is_integer_dtype(series):
        return series.astype("Int64").astype("str")
    if pd.api.types.is_float_dtype(series):
        values = series.astype("float64")
        finite = values.dropna()
        if len(finite) and bool(np.all(np.isfinite(finite))) and bool((finite == finite.round()).all()):
            return values.astype("Int64").astype("str")
        return values.astype("str")
    if pd.api.types.is_datetime64_any_dtype(series):
        return series.map(lambda value: value.isoformat() if pd.notna(value) else np.nan).astype("str")
    text = series.astype("str").str.strip()
    return text.where(text != "", np.nan)


def _numeric_or_none(text: pd.Series, decimal_comma: bool) -> pd.Series | None:
    """The column as float64 when every cell is a number or a missing token, else None."""
    lowered = text.str.lower()
    missing = text.isna() | lowered.isin(MISSING_TOKENS)
    present = text[~missing]
    if present.empty:
        return pd.Series(np.nan, index=text.index, dtype="float64")
    head = present.iloc[:50]
    if pd.to_numeric(head, errors="coerce").isna().any() and not (
        decimal_comma and bool(head.str.match(_DECIMAL_COMMA).all())
    ):
        return None  # a text column: no need to try every cell
    values = pd.to_numeric(present, errors="coerce")
    if values.isna().any() and decimal_comma and bool(present.str.match(_DECIMAL_COMMA).all()):
        values = pd.to_numeric(present.str.replace(",", ".", regex=False), errors="coerce")
    if values.isna().any() or not bool(np.isfinite(values.to_numpy(dtype="float64")).all()):
        return None
    out = pd.Series(np.nan, index=text.index, dtype="float64")
    out[~missing] = values.astype("float64")
    return out


def type_columns(
    frame: pd.DataFrame, *, keep_text: Collection[str], decimal_comma: bool, notes: list[Note]
) -> tuple[pd.DataFrame, dict[str, str]]:
    """Numeric columns become float64, the rest stripped text; ``keep_text`` columns stay text."""
    columns: dict[str, pd.Series] = {}
    types: dict[str, str] = {}
    for name in frame.columns:
        series = frame[name]
        if name in keep_text:
            columns[name] = as_text(series)
            continue
        if pd.api.types.is_numeric_dtype(series) and not pd.api.types.is_bool_dtype(series):
            values = series.astype("float64")
            infinite = ~np.isfinite(values.to_numpy()) & values.notna().to_numpy()
            if infinite.any():
                notes.append({"column": name, "message": f"{int(infinite.sum())} infinite value(s) stored as missing"})
                values = values.mask(infinite)
            columns[name], types[name] = values, NUMERIC
            continue
        text = as_text(series)
        numeric = _numeric_or_none(text, decimal_comma)
        if numeric is not None:
            columns[name], types[name] = numeric, NUMERIC
        else:
            columns[name], types[name] = text, CATEGORICAL
    return pd.DataFrame(columns, index=frame.index), types


__all__ = [
    "CATEGORICAL",
    "NUMERIC",
    "Limits",
    "Note",
    "Table",
    "as_text",
    "decode_text",
    "parse_bytes",
    "read_bytes",
    "read_table",
    "sniff_delimiter",
    "table_from_frame",
    "type_columns",
]
