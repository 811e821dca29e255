"""Which columns are the id, the label and the churn value: given once, then remembered.

The first ingested batch fixes the schema of a store.  Later commands may omit the schema
flags; a command that *explicitly* names a different id, label or positive label is refused,
because mixing two datasets in one store would silently corrupt training and monitoring.
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass, field

from sqlmodel import Session, select

from storage.errors import SchemaConflict
from storage.tables import DatasetSchema


@dataclass(frozen=True)
class Schema:
    """The dataset schema as the code uses it."""

    id_column: str
    label_column: str
    positive_label: str
    ignore_columns: tuple[str, ...] = field(default_factory=tuple)

    def ignores(self, column: str) -> bool:
        return column in self.ignore_columns

    def with_ignored(self, *columns: str) -> Schema:
        """The same schema with more columns kept out of the features (e.g. a frame's date column)."""
        extra = tuple(c for c in columns if c not in self.ignore_columns)
        return Schema(self.id_column, self.label_column, self.positive_label, self.ignore_columns + extra)

    def as_dict(self) -> dict[str, object]:
        return {
            "id_column": self.id_column,
            "label_column": self.label_column,
            "positive_label": self.positive_label,
            "ignore_columns": list(self.ignore_columns),
        }


_FLAGS = {"id_column": "--id-column", "label_column": "--label-column", "positive_label": "--positive-label"}


def remembered_schema(session: Session) -> DatasetSchema | None:
    return session.exec(select(DatasetSchema).order_by(DatasetSchema.id)).first()  # type: ignore[arg-type]


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
                f"but {wanted!r} was requested ({flag} or {env}). Drop the flag/variable to use the "
                f"remembered schema, or point CHURNGUARD_HOME (or CHURNGUARD_DATABASE_URL) at a new "
                f"store for a different dataset.",
                setting=name,
                remembered=have,
                requested=wanted,
            )
    ignore = requested.ignore_columns if "ignore_columns" in explicit else tuple(stored.ignore_columns)
    return Schema(stored.id_column, stored.label_column, stored.positive_label, tuple(ignore))


def remember_schema(session: Session, schema: Schema, batch_id: int | None) -> None:
    """Store the schema of the first batch (inside the caller's transaction), or refresh the
    remembered ignore list when the user changed it explicitly."""
    stored = remembered_schema(session)
    if stored is None:
        session.add(
            DatasetSchema(
                id_column=schema.id_column,
                label_column=schema.label_column,
                positive_label=schema.positive_label,
                ignore_columns=list(schema.ignore_columns),
                first_batch_id=batch_id,
            )
        )
    elif list(stored.ignore_columns) != list(schema.ignore_columns):
        stored.ignore_columns = list(schema.ignore_columns)
        session.add(stored)


def schema_from_settings(settings: object) -> tuple[Schema, set[str]]:
    """The requested schema and which of its fields the user set explicitly."""
    schema = Schema(
        id_column=getattr(settings, "id_column"),  # noqa: B009
        label_column=getattr(settings, "label_column"),  # noqa: B009
        positive_label=getattr(settings, "positive_label"),  # noqa: B009
        ignore_columns=tuple(getattr(settings, "ignore_columns")),  # noqa: B009
    )
    fields_set: set[str] = set(getattr(settings, "model_fields_set", set()))
    return schema, fields_set & {"id_column", "label_column", "positive_label", "ignore_columns"}


__all__ = ["Schema", "remember_schema", "remembered_schema", "resolve_schema", "schema_from_settings"]
