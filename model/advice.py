"""The next steps that model messages end with, worded once for the shell and once for a chat.

Shared messages (``NoChampion``, an unknown client, no data to train on) are read by a shell
user and by a Telegram user; only the advice at their end differs.  See
``storage.errors.Advice``: the command line appends ``cli``, the bot appends ``chat``.
"""

from __future__ import annotations

from storage.errors import Advice

TRAIN = Advice(cli=": run churnguard train", chat=": an admin can train one with /retrain")
RETRAIN_DAMAGED = Advice(cli=". Retrain with churnguard train.", chat=". An admin can retrain with /retrain.")
PICK_A_VERSION = Advice(
    cli="; see churnguard models, then churnguard promote VERSION or churnguard train",
    chat="; an admin can list them with /models, then /promote <version> or /retrain",
)
PROMOTE_A_VERSION = Advice(
    cli=" Promote a specific version with churnguard promote VERSION.",
    chat=" Promote a specific version with /promote <version> (/models lists them).",
)
INGEST_LABELLED = Advice(
    cli=": run churnguard ingest FILE with a labelled CRM export first",
    chat=": an admin can send a labelled CRM export (a .csv file) to this chat first",
)
INGEST_CLIENTS = Advice(
    cli=": ingest a CRM export first (churnguard ingest FILE)",
    chat=": an admin can send a CRM export (a .csv file) to this chat first",
)
INGEST_LATEST = Advice(
    cli=", or ingest the latest CRM export (churnguard ingest FILE).",
    chat="; if the client is new, an admin can send the latest CRM export (a .csv file) to this chat.",
)
INGEST_EVENT_CLIENTS = Advice(
    cli=" (churnguard ingest FILE --kind clients --mapping M.toml)",
    chat=" (event tables are ingested on the server: ask an admin)",
)

__all__ = ["INGEST_CLIENTS", "INGEST_EVENT_CLIENTS", "INGEST_LABELLED", "INGEST_LATEST", "PICK_A_VERSION",
           "PROMOTE_A_VERSION", "RETRAIN_DAMAGED", "TRAIN"]
