"""A production bot starts on an empty store and learns its dataset from the first upload.

``churnguard run`` with a real token never loads the bundled Telco sample (see
``bot.commands.ensure_model``): it starts, waits for data, and tells the admins how to send
it — in a message to each admin at start (:func:`announce_waiting`) and in /start and /help
(:func:`waiting_note`).  The first CSV an admin sends fixes the store's schema, and since a
chat has no ``--id-column`` flag, the upload's **caption** names the columns::

    id=CLIENTNUM label=Attrition_Flag positive="Attrited Customer" ignore=Naive_Bayes_1,Naive_Bayes_2

Until a schema is remembered, :func:`upload_schema` reads the file's header first (the file
is read twice, once: only the first upload pays) and refuses, with an explanation of the
caption, an export whose id or label column is not where the defaults (or the caption) say,
or whose label column does not hold the churn value: storing it would fix a wrong schema for
good.  Later uploads use the remembered schema; a caption that contradicts it is refused.
"""

from __future__ import annotations

import logging
import shlex
from collections.abc import Iterable
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING

from sqlalchemy import func
from sqlmodel import select
from telegram.error import TelegramError

from storage.db import Database
from storage.errors import UserError
from storage.readers import Limits, read_table
from storage.schema import Schema, remembered_schema, schema_from_settings
from storage.tables import Batch, ModelVersion
from storage.validation import same_label

if TYPE_CHECKING:
    from bot.app import ChurnGuardApp
    from churnguard import Settings

log = logging.getLogger(__name__)

# Caption keys and the schema fields they set.
CAPTION_KEYS = {"id": "id_column", "label": "label_column", "positive": "positive_label", "ignore": "ignore_columns"}
_SETTING_NAMES = {"id_column": "CHURNGUARD_ID_COLUMN", "label_column": "CHURNGUARD_LABEL_COLUMN",
                  "positive_label": "CHURNGUARD_POSITIVE_LABEL", "ignore_columns": "CHURNGUARD_IGNORE_COLUMNS"}
CAPTION_EXAMPLE = 'id=CLIENTNUM label=Attrition_Flag positive="Attrited Customer"'
_MAX_LABEL_VALUES = 12  # more distinct values than this: not an outcome column


def how_to_send(schema: Schema) -> str:
    """The instructions an admin needs for the first upload, in chat words."""
    return (
        "How to send your data: export your clients as a .csv (or .csv.gz) file with one row per client, an id "
        "column and an outcome column (did the client leave?), and send it to me here as a document. "
        f"If its columns are not named {schema.id_column!r} (id) and {schema.label_column!r} (outcome, "
        f"{schema.positive_label!r} = left), name them in the file's caption, for example:\n"
        f"{CAPTION_EXAMPLE}\n"
        "(add ignore=col1,col2 for columns that must not be used). The first file fixes these names for this "
        "bot; I store it, then train the first model, and tell you when it is ready."
    )


def waiting_for_data(db: Database) -> bool:
    """True while the store holds no data of any kind and no model: it waits for a first upload."""
    with db.read_session() as session:
        batches = session.exec(select(func.count()).select_from(Batch)).one()
        versions = session.exec(select(func.count()).select_from(ModelVersion)).one()
    return int(batches) == 0 and int(versions) == 0


def waiting_note(db: Database, settings: Settings) -> str | None:
    """The paragraph /start and /help add for admins while the store is empty."""
    if not waiting_for_data(db):
        return None
    return "This bot has no data yet. " + how_to_send(schema_from_settings(settings)[0])


async def announce_waiting(application: ChurnGuardApp) -> int:
    """At start, on an empty store: tell each admin how to send the data.  Returns how many
    admins were told (an admin who never opened a chat with the bot cannot be messaged)."""
    from bot.messages import send_text
    from bot.services import services_of

    svc = services_of(application)
    note = await svc.offload(waiting_note, svc.db, svc.settings)
    if note is None:
        return 0
    text = "ChurnGuard is running and waiting for data. " + note.removeprefix("This bot has no data yet. ")
    told = 0
    for admin in sorted(svc.access.admins):
        try:
            await send_text(application.bot, admin, text, filename="how-to-send-data.txt")
            told += 1
        except TelegramError as error:
            log.warning("could not tell admin %s how to send data: %s", admin, error)
    log.info("the store is empty: told %d of %d admin(s) how to send data", told, len(svc.access.admins))
    return told


# ------------------------------------------------------------------------------------------
# The caption of an upload
# ------------------------------------------------------------------------------------------

def parse_caption(caption: str | None) -> dict[str, str]:
    """The schema fields a caption names: ``key=value`` words (values may be quoted); other
    words ("March export") are ignored.  An unknown key or a broken quote is refused."""
    if not caption or "=" not in caption:
        return {}
    try:
        words = shlex.split(caption)
    except ValueError:
        raise UserError(f"I could not read the caption: a quote is not closed. Write it like this: "
                        f"{CAPTION_EXAMPLE}") from None
    found: dict[str, str] = {}
    for word in words:
        key, equals, value = word.partition("=")
        if not equals:
            continue
        field = CAPTION_KEYS.get(key.strip().lower())
        if field is None:
            raise UserError(f"The caption names {key!r}, which I do not know: use "
                            f"{', '.join(f'{k}=' for k in CAPTION_KEYS)}, for example {CAPTION_EXAMPLE}")
        if not value.strip() and field != "ignore_columns":
            raise UserError(f"The caption gives {key}= without a value, for example {CAPTION_EXAMPLE}")
        found[field] = value.strip()
    return found


def _with_caption(schema: Schema, fields: dict[str, str]) -> Schema:
    changes: dict[str, object] = {name: value for name, value in fields.items() if name != "ignore_columns"}
    if "ignore_columns" in fields:
        changes["ignore_columns"] = tuple(part.strip() for part in fields["ignore_columns"].split(",") if part.strip())
    return replace(schema, **changes)  # type: ignore[arg-type]


def _shown(values: Iterable[str], limit: int = 20) -> str:
    items = list(values)
    text = ", ".join(repr(v) for v in items[:limit])
    return text + (f" and {len(items) - limit} more" if len(items) > limit else "")


def upload_schema(db: Database, settings: Settings, caption: str | None, path: Path, name: str,
                  limits: Limits) -> tuple[Schema, set[str]]:
    """The schema (and its explicit fields) to ingest an admin's upload with.

    Raises ``UserError`` with an explanation for the chat; nothing has been stored then.
    """
    requested, explicit = schema_from_settings(settings)
    fields = parse_caption(caption)
    with db.read_session() as session:
        stored = remembered_schema(session)
    if stored is not None:
        for field, value in fields.items():
            have = getattr(stored, field)
            have_text = ",".join(have) if isinstance(have, list) else str(have)
            if field != "ignore_columns" and value != have_text:
                raise UserError(f"This bot already holds a dataset whose {field.replace('_', ' ')} is "
                                f"{have_text!r}, so the caption's {value!r} does not fit: a caption names the "
                                "columns only for the very first file. Send exports of the same dataset, without "
                                "a caption or with the same names.")
        if "ignore_columns" in fields:
            return _with_caption(requested, fields), explicit | {"ignore_columns"}
        return requested, explicit
    for field, value in fields.items():
        configured = getattr(requested, field)
        configured_text = ",".join(configured) if isinstance(configured, tuple) else str(configured)
        if field in explicit and value != configured_text:
            raise UserError(f"The caption's {value!r} contradicts this bot's configuration "
                            f"({_SETTING_NAMES[field]} = {configured_text!r}); ask the operator, or send the file "
                            "without that part of the caption.")
    schema = _with_caption(requested, fields)
    _check_first_file(path, name, schema, limits)
    return schema, explicit | set(fields)


def _check_first_file(path: Path, name: str, schema: Schema, limits: Limits) -> None:
    """The first file fixes the schema: its id and label columns must be where named, and the
    label column must hold the churn value."""
    table = read_table(path, limits=limits, keep_text=(schema.id_column, schema.label_column), source_name=name)
    columns = [str(column) for column in table.frame.columns]
    missing = [f"{what} column {column!r}" for what, column in (("id", schema.id_column),
                                                                ("outcome", schema.label_column))
               if column not in columns]
    if missing:
        raise UserError(
            f"{name} is the first file of this bot, and it fixes which columns are the client id and the outcome. "
            f"It has no {' and no '.join(missing)}. Its columns are: {_shown(columns)}.\n"
            f"Send it again with a caption naming them, for example:\n{CAPTION_EXAMPLE}\n"
            "id= is the client id column, label= the outcome column, positive= the outcome value that means the "
            "client left (add ignore=col1,col2 for columns that must not be used).")
    values = table.frame[schema.label_column].dropna().astype(str).str.strip().unique().tolist()
    positive = schema.positive_label.strip()
    if len(values) <= _MAX_LABEL_VALUES and not any(same_label(value, positive) for value in values):
        raise UserError(
            f"{name} is the first file of this bot. Its outcome column {schema.label_column!r} holds "
            f"{_shown(sorted(values))}, but not {schema.positive_label!r}, the value that would mean the client left. "
            f"Name that value in the caption, for example:\nid={schema.id_column} label={schema.label_column} "
            f"positive=\"{sorted(values)[0] if values else 'Yes'}\"")


__all__ = ["CAPTION_EXAMPLE", "CAPTION_KEYS", "announce_waiting", "how_to_send", "parse_caption", "upload_schema",
           "waiting_for_data", "waiting_note"]
