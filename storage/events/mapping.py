"""Which of the user's columns holds which canonical field, per event kind.

A CRM export never uses our names, so each kind declares a mapping *canonical field ->
user column*.  It comes from a small TOML file (one table per kind)::

    [purchases]
    client_id = "cust"
    timestamp = "ts"
    amount = "amt"

or from a flag value ``client_id=cust,timestamp=ts``.  A field left out of the mapping
defaults to a column carrying the canonical name itself, so a file already using our
names needs no mapping at all.
"""

from __future__ import annotations

import tomllib
from dataclasses import dataclass
from pathlib import Path

from storage.errors import UserError


@dataclass(frozen=True)
class KindSpec:
    """The canonical fields of one kind; ``times`` are parsed as timestamps, ``amounts``
    as non-negative numbers, ``numbers`` as any numbers."""

    required: tuple[str, ...]
    optional: tuple[str, ...]
    times: tuple[str, ...]
    amounts: tuple[str, ...] = ()
    numbers: tuple[str, ...] = ()

    @property
    def fields(self) -> tuple[str, ...]:
        return self.required + self.optional


KINDS: dict[str, KindSpec] = {
    "clients": KindSpec(
        required=("client_id",), optional=("signup_date", "churn_date"), times=("signup_date", "churn_date")
    ),
    "subscriptions": KindSpec(
        required=("client_id", "start", "monthly_amount"),
        optional=("end", "plan"),
        times=("start", "end"),
        amounts=("monthly_amount",),
    ),
    "purchases": KindSpec(
        required=("client_id", "timestamp", "amount"),
        optional=("product",),
        times=("timestamp",),
        amounts=("amount",),
    ),
    "tickets": KindSpec(
        required=("client_id", "opened_at"),
        optional=("closed_at", "category", "satisfaction"),
        times=("opened_at", "closed_at"),
        numbers=("satisfaction",),
    ),
    "usage": KindSpec(
        required=("client_id", "timestamp", "event_type"),
        optional=("value",),
        times=("timestamp",),
        numbers=("value",),
    ),
    # A lookup, not events: names the codes of usage's event_type column (see ``types``).
    "event_types": KindSpec(required=("event_type", "name"), optional=(), times=()),
    # Departures of the flat client table's clients, not events (``storage.churns``).
    "churns": KindSpec(required=("client_id", "churn_date"), optional=(), times=("churn_date",)),
}

_ALIASES = {
    "client": "clients",
    "customers": "clients",
    "accounts": "clients",
    "account": "clients",
    "subscription": "subscriptions",
    "purchase": "purchases",
    "ticket": "tickets",
    "usage_events": "usage",
    "events": "usage",
    "event": "usage",
    "event_type": "event_types",
    "event_type_names": "event_types",
    "churn": "churns",
    "churn_list": "churns",
    "churn_lists": "churns",
    "departures": "churns",
}


class MappingError(UserError):
    """The kind or the column mapping given by the user is not usable."""


def canonical_kind(kind: str) -> str:
    """The canonical kind name for what the user typed (``--kind``)."""
    name = kind.strip().lower().replace("-", "_")
    name = _ALIASES.get(name, name)
    if name not in KINDS:
        raise MappingError(
            f"unknown event kind {kind!r}; use one of: {', '.join(KINDS)}", kind=kind, known=list(KINDS)
        )
    return name


def check_mapping(kind: str, mapping: dict[str, str], source: str = "mapping") -> dict[str, str]:
    """The mapping with its names checked against the kind's fields and stripped."""
    kind = canonical_kind(kind)
    spec = KINDS[kind]
    unknown = sorted(set(mapping) - set(spec.fields))
    if unknown:
        optional = f" and {', '.join(spec.optional)} (optional)" if spec.optional else ""
        raise MappingError(
            f"{source}: {', '.join(repr(u) for u in unknown)} is not a field of {kind}; the fields are "
            f"{', '.join(spec.required)} (required){optional}. "
            f"Write them as field = \"your column\".",
            kind=kind,
            unknown=unknown,
            fields=list(spec.fields),
        )
    for name, column in mapping.items():
        if not isinstance(column, str) or not column.strip():
            raise MappingError(
                f"{source}: {kind}.{name} must name a column (a non-empty text), got {column!r}",
                kind=kind,
                field=name,
            )
    return {name: column.strip() for name, column in mapping.items()}


def parse_mapping_flags(text: str, kind: str) -> dict[str, str]:
    """``"client_id=cust,timestamp=ts"`` -> ``{"client_id": "cust", "timestamp": "ts"}``."""
    kind = canonical_kind(kind)
    mapping: dict[str, str] = {}
    for part in (p.strip() for p in text.split(",")):
        if not part:
            continue
        name, sep, column = part.partition("=")
        name, column = name.strip(), column.strip()
        if not sep or not name or not column:
            raise MappingError(
                f"--map: {part!r} is not field=column (example: client_id=cust,timestamp=ts)", part=part
            )
        if name in mapping and mapping[name] != column:
            raise MappingError(f"--map: {name} is mapped twice ({mapping[name]!r} and {column!r})", field=name)
        mapping[name] = column
    return check_mapping(kind, mapping, "--map")


def load_mapping_file(path: Path, kind: str) -> dict[str, str]:
    """The mapping for ``kind`` from a TOML file: the ``[kind]`` table, or top-level keys
    when the file describes only one kind.  A file without an entry for the kind yields an
    empty mapping (canonical column names), not an error: one file may serve all kinds."""
    kind = canonical_kind(kind)
    try:
        document = tomllib.loads(Path(path).read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise MappingError(f"mapping file {path} does not exist", path=str(path)) from None
    except (OSError, UnicodeDecodeError) as error:
        raise MappingError(f"cannot read mapping file {path}: {error}", path=str(path)) from None
    except tomllib.TOMLDecodeError as error:
        raise MappingError(f"mapping file {path} is not valid TOML: {error}", path=str(path)) from None
    tables = {k: v for k, v in document.items() if isinstance(v, dict)}
    flat = {k: v for k, v in document.items() if not isinstance(v, dict)}
    section: dict[str, object] | None = None
    for name, table in tables.items():
        try:
            known = canonical_kind(name)
        except MappingError:
            raise MappingError(
                f"mapping file {path}: [{name}] is not an event kind; use one of: {', '.join(KINDS)}",
                path=str(path),
                section=name,
            ) from None
        if known == kind:
            section = table
    if section is None:
        section = flat if flat and not tables else {}
    elif flat:
        raise MappingError(
            f"mapping file {path}: keys {', '.join(flat)} stand outside any [kind] table; put them under "
            f"[{kind}] (or another kind)",
            path=str(path),
        )
    return check_mapping(kind, {str(k): v for k, v in section.items()}, f"mapping file {path} [{kind}]")  # type: ignore[misc]


def resolve_mapping(kind: str, *, file: Path | None = None, flags: str | None = None) -> dict[str, str]:
    """The mapping the ingest uses: the file's entries, overridden by ``--map`` flags."""
    kind = canonical_kind(kind)
    mapping = load_mapping_file(file, kind) if file is not None else {}
    if flags:
        mapping.update(parse_mapping_flags(flags, kind))
    return mapping


__all__ = [
    "KINDS",
    "KindSpec",
    "MappingError",
    "canonical_kind",
    "check_mapping",
    "load_mapping_file",
    "parse_mapping_flags",
    "resolve_mapping",
]
