"""Command-line handlers of ``churnguard campaign``: new, list, contacts, log, report.

Each handler opens the store, calls ``model.campaigns`` and prints through
``churnguard.emit``; the bot calls the same functions (bot/handlers/campaign.py).
"""

from __future__ import annotations

import argparse
from pathlib import Path

from churnguard import Settings, emit
from model.campaigns.contacts import log_contacts, write_contact_list
from model.campaigns.service import (
    CampaignOptions,
    all_campaigns,
    campaign_or_refuse,
    campaign_report,
    campaign_summary,
    campaigns_text,
    economics_of,
    new_campaign,
    parse_share,
)
from model.service import open_scorer, store_schema
from storage.db import Database
from storage.errors import UserError
from storage.files import write_output
from storage.readers import Limits, read_bytes
from storage.tables import AuditLog

ACTOR = "cli"


def _database(settings: Settings) -> Database:
    return Database(settings.database_url).create_schema()


def _audit(db: Database, action: str, detail: str, result: str = "ok") -> None:
    with db.session() as session:
        session.add(AuditLog(actor=ACTOR, action=action, detail=detail[:2000], result=result[:64]))


def campaign(args: argparse.Namespace, settings: Settings) -> int:
    """``churnguard campaign ACTION ...``"""
    handlers = {"new": new, "list": listing, "contacts": contacts, "log": log, "report": report}
    return handlers[args.campaign_command](args, settings)


def new(args: argparse.Namespace, settings: Settings) -> int:
    db = _database(settings)
    options = CampaignOptions(name=args.name, segment=args.segment, top=args.top,
                              holdout=parse_share(args.holdout), seed=args.seed, as_of=args.as_of)
    try:
        created = new_campaign(db, open_scorer(db, settings), options, economics=economics_of(settings),
                               horizon_days=settings.churn_horizon_days, default_seed=settings.seed, actor=ACTOR)
    except UserError as error:
        _audit(db, "campaign new", str(error), result="refused")
        raise
    number = created.campaign.id
    _audit(db, "campaign new", f"campaign {number}: {created.campaign.treatment} treated, "
                               f"{created.campaign.holdout} held out")
    steps = [f"Next: churnguard campaign contacts {number} --output contacts.csv writes the contact list (treatment "
             f"only); churnguard campaign log {number} FILE records who was reached; churnguard campaign report "
             f"{number} shows the outcomes as they arrive."]
    emit(args, created.to_dict(), created.to_text(steps))
    return 0


def listing(args: argparse.Namespace, settings: Settings) -> int:
    found = all_campaigns(_database(settings))
    emit(args, {"campaigns": [campaign_summary(c) for c in found]}, campaigns_text(found))
    return 0


def contacts(args: argparse.Namespace, settings: Settings) -> int:
    db = _database(settings)
    chosen = campaign_or_refuse(db, args.id)
    written = write_contact_list(db, chosen, Path(args.output))
    payload = {"campaign_id": chosen.id, "output": str(args.output), "clients": written, "holdout_left_out":
               chosen.holdout}
    emit(args, payload, f"Wrote the contact list of campaign {chosen.id} to {args.output}: {written:,} treated "
                        f"clients, riskiest first, with reasons. The {chosen.holdout:,} holdout clients are not on "
                        "it: do not contact them. Fill in contacted_at (and outcome) and send the file back with "
                        f"churnguard campaign log {chosen.id} FILE.")
    return 0


def log(args: argparse.Namespace, settings: Settings) -> int:
    db = _database(settings)
    chosen = campaign_or_refuse(db, args.id)
    path = Path(args.file)
    limits = Limits.from_settings(settings)
    schema = store_schema(db, settings)
    try:
        result = log_contacts(db, chosen, read_bytes(path, limits), source_name=path.name, limits=limits,
                              actor=ACTOR, id_column=schema.id_column if schema is not None else None)
    except UserError as error:
        _audit(db, "campaign log", f"campaign {chosen.id} {path.name}: {error}", result="refused")
        raise
    _audit(db, "campaign log", f"campaign {chosen.id} {path.name}: {result.stored} stored")
    emit(args, result.to_dict(), result.to_text())
    return 0


def report(args: argparse.Namespace, settings: Settings) -> int:
    db = _database(settings)
    chosen = campaign_or_refuse(db, args.id)
    assert chosen.id is not None
    result = campaign_report(db, chosen.id, economics=economics_of(settings))
    text = result.to_text()
    payload = result.to_dict()
    if args.chart is not None:
        png = result.chart()
        if png is None:
            text += "\nNo chart yet: no outcome is known."
            payload["chart"] = None
        else:
            write_output(Path(args.chart), png)
            text += f"\nChart of churn over time by group: {args.chart}"
            payload["chart"] = str(args.chart)
    emit(args, payload, text)
    return 0


__all__ = ["campaign", "contacts", "listing", "log", "new", "report"]
