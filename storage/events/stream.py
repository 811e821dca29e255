"""Read a large event file chunk by chunk, so that memory does not grow with the file.

Usage and purchase exports run to tens of millions of rows (a five-month churn simulation
writes ~20M events into one file).  Read whole, every cell would be a Python string: many
GB for one file.  This reader runs the format checks of ``storage.readers`` on the start of
the file (binary, HTML/JSON, encoding, delimiter, header), then streams the rows — CSV,
plain or gzip, through pyarrow's incremental CSV reader; Parquet by record batches — and
hands out pandas chunks of the wanted columns, typed like a whole-file read, whose index
is each row's 0-based data-row position: a problem found in chunk 40 names the same row
as a whole-file read would.

What differs from a whole-file read, and why:

* ``CHURNGUARD_MAX_ROWS`` and ``CHURNGUARD_MAX_FILE_MB`` do not apply: they guard memory,
  which no longer depends on the file (the column limit still applies).
* Rows with too few or too many fields are collected while streaming and refused at the
  end; pyarrow cannot tell their line numbers, so the message quotes them instead.
* A row whose *wanted* columns are all blank is skipped as an empty row (only the wanted
  columns are read; a whole-file read also looks at the ignored ones).
* The SHA-256 of the file is computed by a separate streaming pass (``sha256_file``).
"""

from __future__ import annotations

import csv
import gzip
import hashlib
import io
import zlib
from collections.abc import Collection, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from storage.encodings import check_encoding
from storage.readers import (
    Limits,
    _check_names,
    _reject_binary,
    _reject_non_table,
    _too_many_columns,
    decode_text,
    reject,
    sniff_delimiter,
    type_columns,
)

CHUNK_ROWS = 250_000
_HEAD_BYTES = 1 << 20
_BLOCK_BYTES = 4 << 20
_MAX_BAD_SHOWN = 5


def sha256_file(path: Path) -> str:
    """The file's SHA-256, read in blocks (the same digest a whole-file read computes)."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        while block := handle.read(8 << 20):
            digest.update(block)
    return digest.hexdigest()


def _check_path(path: Path) -> None:
    if not path.exists():
        raise reject(f"{path}: no such file", "not_found", path=str(path))
    if not path.is_file():
        raise reject(f"{path}: not a file", "not_a_file", path=str(path))


def _head(path: Path, source: str) -> tuple[bytes, bool, bool]:
    """(the first MB of the content, gzip-compressed?, whole content fits in the head?)."""
    with open(path, "rb") as handle:
        raw = handle.read(_HEAD_BYTES + 1)
    if raw[:2] != b"\x1f\x8b":
        return raw[:_HEAD_BYTES], False, len(raw) <= _HEAD_BYTES
    try:
        with gzip.open(path, "rb") as archive:
            head = archive.read(_HEAD_BYTES + 1)
    except (OSError, EOFError, zlib.error) as error:
        raise reject(f"{source} looks gzip-compressed but cannot be decompressed: {error}", "not_a_table") from None
    return head[:_HEAD_BYTES], True, len(head) <= _HEAD_BYTES


def _whole_lines(head: bytes, complete: bool) -> bytes:
    """The head cut after its last full line, so no character is split (UTF-16 kept even)."""
    if complete or b"\n" not in head:
        return head
    cut = head[: head.rindex(b"\n") + 1]
    if head.startswith((b"\xff\xfe", b"\xfe\xff")) and len(cut) % 2:
        cut = cut + head[len(cut) : len(cut) + 1]
    return cut


@dataclass
class EventStream:
    """An opened event file: its header, then ``chunks(columns)`` once."""

    path: Path
    source_name: str
    columns: list[str]
    format: str  # csv | csv.gz | parquet
    encoding: str | None = None
    delimiter: str | None = None
    chunk_rows: int = CHUNK_ROWS
    header_lines: int = 1
    encoding_note: str | None = None  # the encoding was guessed (storage.encodings)
    empty_rows: int = 0
    _bad: list[str] = field(default_factory=list)
    _bad_count: int = 0

    @property
    def notes(self) -> list[dict[str, Any]]:
        notes: list[dict[str, Any]] = []
        if self.encoding_note:
            notes.append({"column": None, "message": self.encoding_note})
        if self.empty_rows:
            notes.append({"column": None, "message": f"skipped {self.empty_rows} empty row(s)"})
        return notes

    def chunks(self, columns: list[str], keep_text: Collection[str] = ()) -> Iterator[pd.DataFrame]:
        """Typed frames of ``columns`` (numbers as float64, text stripped with blanks as
        NaN, ``keep_text`` columns always text), indexed by 0-based data-row position."""
        raw = self._parquet(columns) if self.format == "parquet" else self._csv(columns)
        offset = 0
        for frame in raw:
            frame.index = pd.RangeIndex(offset, offset + len(frame))
            offset += len(frame)
            frame = self._drop_empty(frame)
            if frame.empty:
                continue
            typed, _ = type_columns(frame, keep_text=keep_text, decimal_comma=self.delimiter == ";", notes=[])
            yield typed
        self._refuse_bad_rows()
        if offset == 0:
            raise reject(f"{self.source_name} has a header but no data rows", "empty")

    def _drop_empty(self, frame: pd.DataFrame) -> pd.DataFrame:
        blank = np.ones(len(frame), dtype=bool)
        for column in frame.columns:
            series = frame[column]
            if series.dtype == object:
                blank &= (series.isna() | (series.astype("str").str.strip() == "")).to_numpy()
            else:
                blank &= series.isna().to_numpy()
            if not blank.any():
                return frame
        self.empty_rows += int(blank.sum())
        return frame.loc[~blank]

    def _csv(self, columns: list[str]) -> Iterator[pd.DataFrame]:
        import pyarrow as pa
        import pyarrow.csv as pacsv

        def invalid(row: Any) -> str:
            self._bad_count += 1
            if len(self._bad) < _MAX_BAD_SHOWN:
                self._bad.append(f"{row.actual_columns} fields: {str(row.text)[:80]!r}")
            return "skip"

        encoding = "utf8" if self.encoding in (None, "utf-8", "utf-8-sig") else str(self.encoding)
        source: Any = pa.OSFile(str(self.path), "rb")
        if self.format == "csv.gz":
            source = pa.CompressedInputStream(source, "gzip")
        try:
            reader = self._open_csv(pacsv, pa, source, columns, encoding, invalid)
        except (pa.ArrowException, UnicodeDecodeError) as error:
            raise self._unreadable(0, error) from None
        yield from self._batched(reader, pa)

    def _open_csv(self, pacsv: Any, pa: Any, source: Any, columns: list[str], encoding: str, invalid: Any) -> Any:
        return pacsv.open_csv(
            source,
            read_options=pacsv.ReadOptions(column_names=self.columns, skip_rows=self.header_lines,
                                           block_size=_BLOCK_BYTES, encoding=encoding),
            parse_options=pacsv.ParseOptions(delimiter=self.delimiter or ",", newlines_in_values=True,
                                             invalid_row_handler=invalid),
            convert_options=pacsv.ConvertOptions(include_columns=columns,
                                                 column_types=dict.fromkeys(columns, pa.string()),
                                                 strings_can_be_null=False, quoted_strings_can_be_null=False),
        )

    def _unreadable(self, read: int, error: Exception) -> Exception:
        hint = ""
        if "UTF8" in str(error) or isinstance(error, UnicodeDecodeError):
            hint = f" (its start reads as {self.encoding or 'UTF-8'}: save the whole file in one encoding, e.g. UTF-8)"
        where = f"after data row {read}" if read else "in its first block of rows"
        return reject(f"{self.source_name}: cannot read the rows {where}{hint}: {error}", "not_a_table")

    def _parquet(self, columns: list[str]) -> Iterator[pd.DataFrame]:
        import pyarrow as pa
        import pyarrow.parquet as pq

        try:
            parquet = pq.ParquetFile(str(self.path))
            yield from self._batched(parquet.iter_batches(batch_size=self.chunk_rows, columns=columns), pa)
        except (pa.ArrowException, OSError) as error:
            raise reject(f"{self.source_name} is not a readable Parquet file: {error}", "not_a_table") from None

    def _batched(self, batches: Any, pa: Any) -> Iterator[pd.DataFrame]:
        """pyarrow's record batches regrouped into frames of exactly ``chunk_rows`` rows (the last fewer)."""
        pending: list[Any] = []
        held = 0
        read = 0
        iterator = iter(batches)
        while True:
            try:
                batch = next(iterator)
            except StopIteration:
                break
            except (pa.ArrowException, UnicodeDecodeError) as error:
                raise self._unreadable(read, error) from None
            pending.append(batch)
            held += batch.num_rows
            read += batch.num_rows
            if held >= self.chunk_rows:
                table = pa.concat_tables([p if isinstance(p, pa.Table) else pa.Table.from_batches([p])
                                          for p in pending])
                whole = held - held % self.chunk_rows
                for start in range(0, whole, self.chunk_rows):
                    yield table.slice(start, self.chunk_rows).to_pandas()
                rest = table.slice(whole)
                pending, held = ([rest] if rest.num_rows else []), rest.num_rows
        if held:
            yield pa.concat_tables([p if isinstance(p, pa.Table) else pa.Table.from_batches([p]) for p in pending]
                                   ).to_pandas()

    def _refuse_bad_rows(self) -> None:
        if not self._bad_count:
            return
        more = f" (and {self._bad_count - len(self._bad)} more)" if self._bad_count > len(self._bad) else ""
        raise reject(
            f"{self.source_name}: the header has {len(self.columns)} fields separated by {self.delimiter!r}, but "
            f"{self._bad_count} rows do not: {'; '.join(self._bad)}{more}. The separator is inconsistent, or a "
            f"field containing {self.delimiter!r} is not quoted",
            "bad_delimiter", delimiter=self.delimiter, expected_fields=len(self.columns), bad_rows=self._bad_count,
            examples=list(self._bad),
        )


def open_event_stream(path: Path | str, *, limits: Limits, chunk_rows: int = CHUNK_ROWS,
                      encoding: str | None = None) -> EventStream:
    """Check the start of the file and read its header; the rows come from ``chunks``.
    ``encoding``: the text encoding the user named, else it is found from the start."""
    path = Path(path)
    source = path.name
    encoding = check_encoding(encoding)
    _check_path(path)
    head, compressed, complete = _head(path, source)
    if not head.strip():
        raise reject(f"{source} is empty" + (" once decompressed" if compressed else ""), "empty")
    if head[:4] == b"PAR1":
        if compressed:
            raise reject(f"{source} is a gzip-compressed Parquet file; send the .parquet file itself", "not_a_table")
        return _open_parquet(path, source, limits, chunk_rows)
    _reject_binary(head, source, encoding)
    decoded = decode_text(_whole_lines(head, complete), source, encoding)
    text = decoded.text
    _reject_non_table(text, source)
    delimiter = sniff_delimiter(text, source)
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=delimiter)
    header: list[str] | None = None
    for record in reader:
        if any(value.strip() for value in record):
            header = [name.strip() for name in record]
            break
    if header is None:
        raise reject(f"{source} is empty", "empty")
    _check_names(header, source)
    if len(header) > limits.max_columns:
        raise _too_many_columns(source, len(header), limits)
    names = [name or f"Unnamed: {i}" for i, name in enumerate(header)]
    return EventStream(path, source, names, "csv.gz" if compressed else "csv", decoded.encoding, delimiter,
                       chunk_rows, header_lines=reader.line_num, encoding_note=decoded.note)


def _open_parquet(path: Path, source: str, limits: Limits, chunk_rows: int) -> EventStream:
    import pyarrow as pa
    import pyarrow.parquet as pq

    try:
        names = [str(n) for n in pq.ParquetFile(str(path)).schema_arrow.names]
    except (pa.ArrowException, OSError, ValueError) as error:
        raise reject(f"{source} is not a readable Parquet file: {error}", "not_a_table") from None
    names = [n for n in names if not n.startswith("__index_level_")]
    _check_names(names, source)
    if len(names) > limits.max_columns:
        raise _too_many_columns(source, len(names), limits)
    return EventStream(path, source, names, "parquet", chunk_rows=chunk_rows)


__all__ = ["CHUNK_ROWS", "EventStream", "open_event_stream", "sha256_file"]
