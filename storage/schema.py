"""Which columns are the id, the label, the churn value and the as-of date: given once, then
remembered.

The first ingested batch fixes the schema of a store.  Later commands may omit the schema
flags; a command that *explicitly* names a different id, label or positive label is refused,
because mixing two datasets in one store would silently corrupt training and monitoring.
The as-of column (``CHURNGUARD_AS_OF_COLUMN``) follows the same rule once one is remembered;
a store that never named one (its batches were dated by ``--as-of`` or the ingest time)
takes the first one a batch names.
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass, field

from sqlmodel import Session, select

from storage.errors import Advice, SchemaConflict
from storage.tables import DatasetSchema


@dataclass(frozen=True)
class Schema:
    """The dataset schema as the code uses it."""

    id_column: str
    label_column: str
    positive_label: str
    ignore_columns: tuple[str, ...] = field(default_factory=tuple)
    as_of_column: str = ""  # "" = rows are dated by ``ingest --as-of`` or the ingest time

    def ignores(self, column: str) -> bool:
        return column in self.ignore_columns

    def with_ignored(self, *columns: str) -> Schema:
        """The same schema with more columns kept out of the features (e.g. a frame's date column)."""
        extra = tuple(c for c in columns if c not in self.ignore_columns)
        return Schema(self.id_column, self.label_column, self.positive_label, self.ignore_columns + extra,
                      self.as_of_column)

    def as_dict(self) -> dict[str, object]:
        return {
            "id_column": self.id_column,
            "label_column": self.label_column,
            "positive_label": self.positive_label,
            "ignore_columns": list(self.ignore_columns),
            "as_of_column": self.as_of_column,
        }


_FLAGS = {"id_column": "--id-column", "label_column": "--label-column", "positive_label": "--positive-label"}


def remembered_schema(session: Session) -> DatasetSchema | None:
    return session.exec(select(DatasetSchema).order_by(DatasetSchema.id)).first()  # type: ignore[arg-type]


def schema_of(stored: DatasetSchema) -> Schema:
    """The remembered schema as the code uses it."""
    return Schema(stored.id_column, stored.label_column, stored.positive_label, tuple(stored.ignore_columns),
                  stored.as_of_column or "")


def resolve_schema(session: Session, requested: Schema, explicit: Collection[str]) -> Schema:
    """The schema a command must use: the remembered one, checked against explicit requests.

    ``explicit`` names the fields the user actually set (flag, environment or .env), so that
    built-in defaults never clash with a store that was created for another dataset.
    """
    stored = remembered_schema(session)
    if stored is None:
        return requested
    for name, flag in _FLAGS.items():
        wanted = getattr(requested, name)
        have = getattr(stored, name)
        if name in explicit and wanted != have:
            env = "CHURNGUARD_" + name.upper()
            raise SchemaConflict(
                f"this store remembers {name.replace('_', ' ')} {have!r} from its first batch, "
                f"but {wanted!r} was requested",
                advice=Advice(
                    cli=f" ({flag} or {env}). Drop the flag/variable to use the remembered schema, or point "
                    f"CHURNGUARD_HOME (or CHURNGUARD_DATABASE_URL) at a new store for a different dataset.",
                    chat=" by the service's settings. A store holds one dataset: an admin must set the "
                    "service back to the remembered schema, or give a different dataset a store of its own.",
                ),
                setting=name,
                remembered=have,
                requested=wanted,
            )
    ignore = requested.ignore_columns if "ignore_columns" in explicit else tuple(stored.ignore_columns)
    return Schema(stored.id_column, stored.label_column, stored.positive_label, tuple(ignore),
                  _as_of_column(stored.as_of_column, requested, explicit))


def _as_of_column(have: str, requested: Schema, explicit: Collection[str]) -> str:
    """The remembered as-of column; an explicit different one is refused once one is
    remembered, and adopted while none is (an empty request names nothing)."""
    wanted = requested.as_of_column if "as_of_column" in explicit else ""
    if not wanted:
        return have
    if have and wanted != have:
        raise SchemaConflict(
            f"this store remembers as-of column {have!r} from an earlier batch, but {wanted!r} was requested "
            f"(CHURNGUARD_AS_OF_COLUMN). Drop the variable to use the remembered column, or point "
            f"CHURNGUARD_HOME (or CHURNGUARD_DATABASE_URL) at a new store for a different dataset.",
            setting="as_of_column",
            remembered=have,
            requested=wanted,
        )
    return wanted


def remember_schema(session: Session, schema: Schema, batch_id: int | None) -> None:
    """Store the schema of the first batch (inside the caller's transaction), or refresh the
    remembered ignore list when the user changed it explicitly, or remember the first as-of
    column named."""
    stored = remembered_schema(session)
    if stored is None:
        session.add(
            DatasetSchema(
                id_column=schema.id_column,
                label_column=schema.label_column,
                positive_label=schema.positive_label,
                ignore_columns=list(schema.ignore_columns),
                first_batch_id=batch_id,
                as_of_column=schema.as_of_column,
            )
        )
        return
    changed = False
    if list(stored.ignore_columns) != list(schema.ignore_columns):
        stored.ignore_columns = list(schema.ignore_columns)
        changed = True
    if not stored.as_of_column and schema.as_of_column:
        stored.as_of_column = schema.as_of_column
        changed = True
    if changed:
        session.add(stored)


def schema_from_settings(settings: object) -> tuple[Schema, set[str]]:
    """The requested schema and which of its fields the user set explicitly."""
    schema = Schema(
        id_column=getattr(settings, "id_column"),  # noqa: B009
        label_column=getattr(settings, "label_column"),  # noqa: B009
        positive_label=getattr(settings, "positive_label"),  # noqa: B009
        ignore_columns=tuple(getattr(settings, "ignore_columns")),  # noqa: B009
        as_of_column=str(getattr(settings, "as_of_column", "") or "").strip(),
    )
    fields_set: set[str] = set(getattr(settings, "model_fields_set", set()))
    return schema, fields_set & {"id_column", "label_column", "positive_label", "ignore_columns", "as_of_column"}


__all__ = ["Schema", "remember_schema", "remembered_schema", "resolve_schema", "schema_from_settings"]
