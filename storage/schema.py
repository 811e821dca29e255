"""Which columns are the id, the label and the churn value: given once, then remembered.

The first ingested batch fixes the schema of a store.  Later commands may omit the schema
flags; a command that *explicitly* names a different id, label or positive label is refused,
because mixing two datasets in one store would silently corrupt training and monitoring.
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
