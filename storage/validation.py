"""Decide whether a parsed batch may be stored, and what the analyst should be warned about.

Refusals are for batches that would corrupt the store or training (no client ids, the same
client twice, a label that is not the configured yes/no, nothing to learn from); they raise
``IngestRejected`` before anything is written.  Warnings are for batches that are usable but
suspicious (a column that gives the answer away, columns that came or went, a column whose
type changed); they are stored with the batch and shown to the person who sent it.
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime

import numpy as np
import pandas as pd
from sklearn.metrics import roc_auc_score
from sklearn.model_selection import StratifiedKFold
from sklearn.preprocessing import TargetEncoder

from storage.errors import Advice, IngestRejected
from storage.ids import MAX_ID_LENGTH, hidden_characters, invisible_ids
from storage.readers import CATEGORICAL, NUMERIC, Note, Table, reject
from storage.schema import Schema

LEAK_AUC = 0.98
# A leak warning reads LEAK_PREFIX + reasons + LEAK_SUFFIX; training (model/data_checks.py)
# finds the flagged columns in the stored batch warnings by the prefix and leaves them out.
LEAK_PREFIX = "may leak the label: "
LEAK_SUFFIX = ("; training leaves it out unless CHURNGUARD_KEEP_LEAKING_COLUMNS names it (if it is known only "
               "after churn, add it to CHURNGUARD_IGNORE_COLUMNS)")
LEAK_WORDS = ("churn", "attrition", "attrited", "exited", "cancel")
LEAK_SAMPLE = 200_000  # rows; a column that separates the classes this well does so on a sample too
LEAK_MIN_CLASS = 20  # below this many rows of a class, near-perfect separation happens by chance
MAX_CLIENT_ID = MAX_ID_LENGTH  # characters, the width of client_record.client_id (storage/ids.py)
_EXAMPLES = 5
# The schema is a setting of the service: at a shell it is a flag, in a chat an admin's job.
_BOTH_COLUMNS = Advice(cli=" (--id-column, --label-column)",
                       chat=" (an admin sets both in the service's settings)")
_ID_COLUMN = Advice(cli="Name the id column with --id-column (or CHURNGUARD_ID_COLUMN)",
                    chat="Send a file with that column, or an admin must name the id column in the service's "
                         "settings (CHURNGUARD_ID_COLUMN).")
_ONE_CLASS = Advice(cli=". Check --positive-label, or send a batch with both outcomes first",
                    chat=". Check the churn value the service is set to (an admin sets it), or send a batch "
                         "with both outcomes first")
_CHURN_VALUE = Advice(cli=" — set the churn value with --positive-label (or CHURNGUARD_POSITIVE_LABEL)",
                      chat=" — an admin must set the churn value in the service's settings "
                           "(CHURNGUARD_POSITIVE_LABEL)")
_LEAK_CHAT = ("; training leaves it out unless an admin keeps it in the service's settings (if it is known only "
              "after churn, an admin should exclude it there)")


@dataclass(frozen=True)
class History:
    """What the store already holds that a new batch is compared with."""

    previous_batch_id: int | None = None
    previous_columns: dict[str, str] = field(default_factory=dict)
    has_labelled: bool = False
    negative_label: str | None = None


@dataclass
class ValidatedBatch:
    """A batch that passed every check, ready to be stored."""

    client_ids: list[str]
    labels: list[int] | None  # None: the batch has no label column
    data: pd.DataFrame  # every column except the id and the label, typed
    column_types: dict[str, str]
    warnings: list[Note]
    negative_label: str | None = None
    # One as-of date per row (the file's as-of column or ``--as-of``); None: dated when stored.
    as_of: list[datetime] | None = None

    @property
    def labelled(self) -> bool:
        return self.labels is not None

    @property
    def rows(self) -> int:
        return len(self.client_ids)

    @property
    def positives(self) -> int | None:
        return None if self.labels is None else int(sum(self.labels))


def _rows(mask: pd.Series | np.ndarray, limit: int = _EXAMPLES) -> list[int]:
    """1-based data-row numbers (row 1 is the first row after the header)."""
    positions = np.flatnonzero(np.asarray(mask))
    return [int(p) + 1 for p in positions[:limit]]


def _listed(rows: Sequence[int]) -> str:
    return ", ".join(map(str, rows))


def _shown(values: Sequence[object]) -> str:
    return ", ".join(repr(v) for v in values)


def validate(table: Table, schema: Schema, history: History,
             as_of: Sequence[datetime] | None = None) -> ValidatedBatch:
    """Check a parsed batch against the schema and what the store holds; refuse or annotate.

    ``as_of``: each row's as-of date (``storage.asof``; the table no longer holds that
    column).  A client may then appear once per date: only a repeated (client, date) pair
    is a duplicate."""
    frame = table.frame
    name = table.source_name
    columns = [str(c) for c in frame.columns]
    if schema.id_column == schema.label_column:
        raise reject(f"the id column and the label column are both {schema.id_column!r}; they must differ",
                     "bad_schema", column=schema.id_column, advice=_BOTH_COLUMNS)
    _check_id_column(frame, columns, schema, name)
    _check_all_null(frame, columns, name)
    ids = frame[schema.id_column]
    _check_ids(ids, schema.id_column, name, as_of)

    warnings: list[Note] = list(table.notes)
    labels: list[int] | None = None
    negative: str | None = history.negative_label
    if schema.label_column in frame.columns:
        y, negative = _encode_label(frame[schema.label_column], schema, history, name)
        positives = int(y.sum())
        if positives in (0, len(y)):
            which = "churned" if positives else "stayed"
            if not history.has_labelled:
                raise reject(
                    f"{name}: every client in label column {schema.label_column!r} {which} "
                    f"(values: {_shown(sorted(set(frame[schema.label_column].dropna())))}); a first "
                    f"labelled batch needs both churners ({schema.positive_label!r}) and non-churners to "
                    f"train on",
                    "single_class",
                    advice=_ONE_CLASS,
                    column=schema.label_column,
                    positive_label=schema.positive_label,
                )
            warnings.append({"column": schema.label_column,
                             "message": f"every client in this batch {which}; stored (one class only)"})
        labels = y.astype(int).tolist()
    else:
        near = [c for c in columns if c.lower() == schema.label_column.lower()]
        if near:
            warnings.append({"column": near[0], "message": f"no label column {schema.label_column!r}, but "
                             f"{near[0]!r} differs only in case; the batch was stored as unlabelled"})

    data_columns = [c for c in columns if c not in (schema.id_column, schema.label_column)]
    types = {c: table.column_types[c] for c in data_columns}
    data = frame[data_columns]
    if labels is not None and 0 < sum(labels) < len(labels):
        warnings.extend(leak_warnings(data, types, np.asarray(labels), schema))
    warnings.extend(drift_warnings(types, history))
    return ValidatedBatch(
        client_ids=ids.astype(str).tolist(),
        labels=labels,
        data=data,
        column_types=types,
        warnings=warnings,
        negative_label=negative,
        as_of=None if as_of is None else list(as_of),
    )


# ------------------------------------------------------------------------------------------
# Refusals
# ------------------------------------------------------------------------------------------


def _check_id_column(frame: pd.DataFrame, columns: list[str], schema: Schema, name: str) -> None:
    if schema.id_column in frame.columns:
        return
    close = difflib.get_close_matches(schema.id_column, columns, n=3, cutoff=0.6)
    close += [c for c in columns if c.lower() == schema.id_column.lower() and c not in close]
    hint = f" Did you mean {_shown(close)}? " if close else " "
    listed = _shown(columns[:30]) + (" …" if len(columns) > 30 else "")
    raise reject(
        f"{name}: missing id column {schema.id_column!r}.{hint}Columns in the file: {listed}. ",
        "missing_id_column",
        advice=_ID_COLUMN,
        column=schema.id_column,
        available=columns,
    )


def _check_all_null(frame: pd.DataFrame, columns: list[str], name: str) -> None:
    empty = [c for c in columns if bool(frame[c].isna().all())]
    if empty:
        raise reject(
            f"{name}: column(s) {_shown(empty)} have no value in any row; remove them from the export "
            f"(an empty column is usually a broken export or a trailing separator)",
            "empty_column",
            column=empty[0],
            columns=empty,
        )


def _check_ids(ids: pd.Series, column: str, name: str, as_of: Sequence[datetime] | None = None) -> None:
    blank = ids.isna()
    if blank.any():
        raise reject(
            f"{name}: id column {column!r} is blank in {int(blank.sum())} row(s), at data rows "
            f"{_listed(_rows(blank))} (row 1 = first row after the header); every client needs an id",
            "missing_ids",
            column=column,
            rows=_rows(blank),
            row_kind="data row",
        )
    too_long = ids.str.len() > MAX_CLIENT_ID
    if too_long.any():
        raise reject(
            f"{name}: id column {column!r} has values longer than {MAX_CLIENT_ID} characters, at data rows "
            f"{_listed(_rows(too_long))} — is it really the id column?",
            "bad_ids",
            column=column,
            rows=_rows(too_long),
            row_kind="data row",
        )
    hidden = invisible_ids(ids)
    if hidden.any():
        examples = list(dict.fromkeys(ids[hidden].tolist()))[:_EXAMPLES]
        raise reject(
            f"{name}: id column {column!r} has ids with control or invisible characters "
            f"({hidden_characters(''.join(examples))}) in {int(hidden.sum())} row(s), at data rows "
            f"{_listed(_rows(hidden))} (row 1 = first row after the header), e.g. {_shown(examples)}. Such an id "
            "prints as a terminal command or reversed text, and cannot be looked up; remove those characters "
            "from the export",
            "bad_ids",
            column=column,
            rows=_rows(hidden),
            row_kind="data row",
            examples=examples,
        )
    dated = as_of is not None and len(set(as_of)) > 1
    keys = pd.Series(list(zip(ids.tolist(), as_of, strict=True)), index=ids.index) if dated and as_of else ids
    repeated = keys.duplicated(keep=False)
    if repeated.any():
        values = ids[repeated]
        examples = list(dict.fromkeys(values.tolist()))[:_EXAMPLES]
        where = []
        for key in list(dict.fromkeys(keys[repeated].tolist()))[:3]:
            rows = _rows(keys == key if not dated else keys.map(lambda k, key=key: k == key), limit=4)
            shown = f"{key[0]!r} at {key[1]:%Y-%m-%d %H:%M}" if dated else repr(key)
            where.append(f"{shown} at data rows {', '.join(map(str, rows))}")
        once = "each client once per as-of date" if dated else "each client once"
        raise reject(
            f"{name}: {int(keys.duplicated().sum())} client id(s) repeat in column {column!r}"
            f"{' with the same as-of date' if dated else ''}: "
            f"{'; '.join(where)} (row 1 = first row after the header). One batch must hold {once}",
            "duplicate_ids",
            column=column,
            rows=_rows(repeated, limit=10),
            row_kind="data row",
            examples=examples,
        )


def same_label(value: str, expected: str) -> bool:
    """Label values match as text, or as numbers when both are numbers ("1" and "1.0")."""
    if value == expected:
        return True
    try:
        return float(value) == float(expected)
    except ValueError:
        return False


_same = same_label


def _encode_label(
    labels: pd.Series, schema: Schema, history: History, name: str
) -> tuple[np.ndarray, str | None]:
    """0/1 for each row, and the non-churn value; refuse anything but the two known values."""
    column, positive = schema.label_column, schema.positive_label.strip()
    blank = labels.isna()
    if blank.any():
        raise reject(
            f"{name}: label column {column!r} is blank in {int(blank.sum())} row(s), at data rows "
            f"{_listed(_rows(blank))} (row 1 = first row after the header). Fill the outcome in, or leave the "
            f"column out to store an unlabelled batch",
            "missing_labels",
            column=column,
            rows=_rows(blank),
            row_kind="data row",
        )
    counts = labels.value_counts()
    values = [str(v) for v in counts.index]
    is_positive = {v: _same(v, positive) for v in values}
    others = [v for v in values if not is_positive[v]]
    # "0" and "0.0" are one value; anything else beyond the positive one is a second class.
    distinct_others: list[str] = []
    for value in others:
        if not any(_same(value, seen) for seen in distinct_others):
            distinct_others.append(value)
    known_negative = history.negative_label
    expected_negative = known_negative or (distinct_others[0] if len(distinct_others) == 1 else None)

    def refuse(unexpected: list[str], why: str, advice: Advice | None = None) -> IngestRejected:
        mask = labels.isin(unexpected)
        return reject(
            f"{name}: label column {column!r} {why}; found {_shown(unexpected[:_EXAMPLES])} at data rows "
            f"{_listed(_rows(mask))} (row 1 = first row after the header). Value counts: "
            + ", ".join(f"{v!r}: {int(counts[v])}" for v in list(counts.index)[:8]),
            "bad_labels",
            advice=advice,
            column=column,
            rows=_rows(mask),
            row_kind="data row",
            examples=unexpected[:_EXAMPLES],
            positive_label=positive,
        )

    if not any(is_positive.values()) and len(distinct_others) >= 2:
        raise refuse(others, f"has no value {positive!r} (the configured churn value) but several others",
                     _CHURN_VALUE)
    if len(distinct_others) > 1:
        if known_negative is not None:
            unexpected = [v for v in others if not _same(v, known_negative)]
            why = f"must hold only {positive!r} (churned) and {known_negative!r} (stayed)"
        else:
            unexpected = others
            why = f"must hold exactly two values, {positive!r} (churned) and one other"
        raise refuse(unexpected, why)
    if distinct_others and known_negative is not None and not _same(distinct_others[0], known_negative):
        raise refuse(others, f"must hold only {positive!r} (churned) and {known_negative!r} (stayed), the "
                     "values this store already uses")
    y = labels.map(is_positive).to_numpy(dtype=bool)
    return y, expected_negative


# ------------------------------------------------------------------------------------------
# Warnings
# ------------------------------------------------------------------------------------------


def _squash(text: str) -> str:
    return re.sub(r"[^0-9a-z]", "", text.lower())


def column_auc(values: pd.Series, kind: str, y: np.ndarray, seed: int = 0) -> float | None:
    """How well one column alone separates the classes, as max(AUC, 1 - AUC).

    Categories are target-encoded out of fold (sklearn's TargetEncoder cross-fits), so a
    column of unique names does not look predictive merely by memorising each row's label.
    Missing numbers rank below every value, so a column that is blank exactly for one class
    is caught too.  None when the column or the classes are too small to judge."""
    if min(int(y.sum()), int(len(y) - y.sum())) < LEAK_MIN_CLASS:
        return None
    if kind == NUMERIC:
        x = values.to_numpy(dtype="float64")
        if np.isnan(x).all():
            return None
        low = np.nanmin(x) - 1.0
        score = np.where(np.isnan(x), low, x)
    else:
        text = values.astype(object).where(values.notna(), "<missing>").astype(str)
        counts = text.value_counts()
        if len(counts) < 2:
            return None
        if int(counts.min()) >= LEAK_MIN_CLASS * 2:
            # Every category is common: its in-sample churn rate cannot memorise single rows.
            score = pd.Series(y, index=text.index).groupby(text).transform("mean").to_numpy()
        else:
            folds = StratifiedKFold(n_splits=5, shuffle=True, random_state=seed)
            encoder = TargetEncoder(target_type="binary", cv=folds)
            score = encoder.fit_transform(text.to_numpy().reshape(-1, 1), y).ravel()
    if np.unique(score).size < 2:
        return None
    auc = float(roc_auc_score(y, score))
    return max(auc, 1.0 - auc)


def leak_warnings(data: pd.DataFrame, types: dict[str, str], y: np.ndarray, schema: Schema) -> list[Note]:
    """Columns that give the answer away: by name, or by separating the classes almost perfectly.

    Ignored columns are skipped — the user has already said they are not features."""
    if len(y) > LEAK_SAMPLE:
        picked = np.random.default_rng(0).choice(len(y), LEAK_SAMPLE, replace=False)
        data, y = data.iloc[picked], y[picked]
    label = _squash(schema.label_column)
    notes: list[Note] = []
    for column in data.columns:
        if column in schema.ignore_columns:
            continue
        reasons = []
        squashed = _squash(column)
        words = [w for w in LEAK_WORDS if w in squashed]
        if label and label in squashed:
            reasons.append(f"its name contains the label's name {schema.label_column!r}")
        elif words:
            reasons.append(f"its name mentions {words[0]!r}")
        auc = column_auc(data[column], types[column], y)
        if auc is not None and auc > LEAK_AUC:
            reasons.append(f"on its own it separates churners with ROC-AUC {auc:.3f} (above {LEAK_AUC})")
        if reasons:
            warning = LEAK_PREFIX + " and ".join(reasons)
            notes.append({"column": column, "message": warning + LEAK_SUFFIX, "chat": warning + _LEAK_CHAT})
    return notes


def drift_warnings(types: dict[str, str], history: History) -> list[Note]:
    """Columns that appeared, disappeared or changed type since the previous batch."""
    if history.previous_batch_id is None:
        return []
    before, ref = history.previous_columns, f"batch #{history.previous_batch_id}"
    notes: list[Note] = []
    for column, kind in types.items():
        if column not in before:
            notes.append({"column": column, "message": f"new column, not in the previous {ref}"})
        elif before[column] != kind:
            notes.append({"column": column, "message": f"type changed: {before[column]} in {ref}, now {kind}"})
    for column in before:
        if column not in types:
            notes.append({"column": column, "message": f"missing: the previous {ref} had this column"})
    return notes


__all__ = [
    "CATEGORICAL",
    "LEAK_AUC",
    "LEAK_PREFIX",
    "LEAK_WORDS",
    "NUMERIC",
    "History",
    "ValidatedBatch",
    "column_auc",
    "drift_warnings",
    "leak_warnings",
    "same_label",
    "validate",
]
