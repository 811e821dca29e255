"""/campaign (admin): retention campaigns with a control group, from the chat.

* ``/campaign new [--name N] [--segment EXPR] [--top N] [--holdout 0.2] [--seed S]``: the
  same options as ``churnguard campaign new``; the reply states the power of the design, and
  the contact list follows as a CSV document and as pages with a button per client;
* ``/campaign list``, ``/campaign contacts ID``, ``/campaign report ID`` (text and a chart
  of churn over time by group);
* a contact log sent as a document whose caption names the campaign (``campaign 3``);
* the "✓ contacted" button under each client of a contact-list page logs "reached now".

Every part goes through the guard of /campaign (admins only, private chats, audited): the
command, the buttons and the upload.  Button data is checked strictly (a fixed pattern of
numbers; the member must be a treatment member of that campaign), so a forged press can
neither log a holdout client nor reach another campaign's list.  Replies never name a
server path or a command-line instruction.
"""

from __future__ import annotations

import gzip
import io
import logging
import re
import shlex
from typing import Any

from telegram import InlineKeyboardButton, InlineKeyboardMarkup, Update
from telegram.constants import ChatAction
from telegram.error import BadRequest
from telegram.ext import BaseHandler, ContextTypes, MessageHandler, filters

from bot.access import Role
from bot.guard import guard
from bot.handlers.admin import actor_of
from bot.handlers.scoring import NO_MODEL_TEXT, command_argument, require_scorer
from bot.messages import CAPTION_LIMIT, reply, show_activity, truncate
from bot.retry import retry_call
from bot.services import Button, Command, Services, services
from model.campaigns.contacts import contact_list_csv, log_button_contact, log_contacts
from model.campaigns.service import (
    CampaignOptions,
    all_campaigns,
    campaign_or_refuse,
    campaign_report,
    campaigns_text,
    economics_of,
    new_campaign,
    parse_share,
    store_example,
)
from model.registry import NoChampion
from model.service import store_schema
from storage.campaign_tables import TREATMENT, Campaign
from storage.campaigns import contact_page, contacted_members, member_by_id
from storage.errors import UserError
from storage.readers import Limits

log = logging.getLogger(__name__)

ACTION = "campaign"
PAGE_SIZE = 8
CONTACTED_PREFIX = "cgc:"  # cgc:<campaign>:<member>:<page>
PAGE_PREFIX = "cgp:"  # cgp:<campaign>:<page>
_CONTACTED = re.compile(r"^cgc:([1-9][0-9]{0,8}):([1-9][0-9]{0,11}):([0-9]{1,6})$")
_PAGE = re.compile(r"^cgp:([1-9][0-9]{0,8}):([0-9]{1,6})$")
CAPTION_FILTER = re.compile(r"^\s*/?campaign\b", re.IGNORECASE)
_CAPTION = re.compile(r"^\s*/?campaign(?:@\w+)?\s+(?:log\s+)?#?([0-9]{1,9})\s*$", re.IGNORECASE)
LOG_SUFFIXES = (".csv", ".csv.gz")
SEND_LIMIT = 45 * 1024 * 1024  # Telegram accepts documents up to 50 MB from a bot
_DASHES = ("\u2014", "\u2013", "\u2012", "\u2212")
_QUOTES = str.maketrans({"\u2018": "'", "\u2019": "'", "\u201c": '"', "\u201d": '"', "\u201e": '"', "\u00ab": '"',
                         "\u00bb": '"'})
OPTIONS = {"name": "name", "segment": "segment", "top": "top", "holdout": "holdout", "seed": "seed",
           "as-of": "as_of", "as_of": "as_of"}
STALE_BUTTON = "That button is not valid any more; send /campaign contacts with the campaign number again."

def usage_text(example: str | None) -> str:
    """How to use /campaign; the segment example is made of this store's own columns."""
    segment = f" --segment \"{example}\"" if example else ""
    return (
        "Retention campaigns with a control group:\n"
        "/campaign new [--name N] [--segment EXPR] [--top N] [--holdout 0.2] [--seed S] — take the champion's "
        "flagged clients (those the segment selects, the N riskiest), hold out a share as the control group and get "
        f"the contact list. Example: /campaign new --name Spring{segment} --top 500 --holdout 20%\n"
        "/campaign list — the campaigns\n"
        "/campaign contacts ID — the contact list (treatment only) as a CSV file, with a button per client to log a "
        "contact\n"
        "/campaign report ID — churn with and without contact, the uplift, clients saved and ROI, with a chart\n"
        "To log many contacts at once, send a CSV document with the columns client_id, contacted_at and outcome (the "
        "contact list itself, filled in, will do) with the caption: campaign ID"
    )


LOG_HELP = ("Send the contact log as a .csv document with the columns client_id, contacted_at (e.g. 2025-03-31 "
            "14:05) and outcome, with the caption: campaign {id}. The contact list this bot sends has those columns: "
            "fill them in for the clients you reached.")


# --------------------------------------------------------------------------------------------
# Parsing what an admin typed
# --------------------------------------------------------------------------------------------

def split_words(text: str) -> list[str]:
    """Words as a shell splits them (quotes keep spaces), after undoing what phones do to
    typed text: curly quotes become straight ones, a dash that replaced ``--`` becomes ``--``."""
    plain = text.translate(_QUOTES)
    try:
        words = shlex.split(plain)
    except ValueError:
        raise UserError("A quote is not closed. Put the segment in double quotes and its text values in single "
                        "quotes, e.g. --segment \"plan == 'annual'\".") from None
    return [("--" + word[1:]) if word[:1] in _DASHES else word for word in words]


def parse_new(words: list[str]) -> CampaignOptions:
    """The options of ``/campaign new`` (the same as the command line's)."""
    values: dict[str, str] = {}
    index = 0
    while index < len(words):
        word = words[index]
        if not word.startswith("--"):
            raise UserError(f"I did not understand {word[:40]!r}. Options are --name, --segment, --top, --holdout and "
                            "--seed, each followed by its value; put values with spaces in quotes.")
        key, has_value, value = word[2:].partition("=")
        option = OPTIONS.get(key.lower())
        if option is None:
            raise UserError(f"Unknown option --{key[:30]}. Options are --name, --segment, --top, --holdout and --seed.")
        if not has_value:
            index += 1
            if index >= len(words) or (words[index].startswith("--") and option != "segment"):
                raise UserError(f"--{key} needs a value, e.g. " + {"name": "--name Spring", "segment":
                                "--segment \"plan == 'annual'\"", "top": "--top 500", "holdout": "--holdout 20%",
                                "seed": "--seed 7", "as_of": "--as-of 2025-03-31"}[option] + ".")
            value = words[index]
        values[option] = value
        index += 1
    return CampaignOptions(
        name=values.get("name"), segment=values.get("segment"), top=_whole("top", values.get("top")),
        holdout=parse_share(values.get("holdout", "0.2")), seed=_whole("seed", values.get("seed")),
        as_of=values.get("as_of"))


def _whole(name: str, value: str | None) -> int | None:
    if value is None:
        return None
    try:
        return int(value.replace(",", "").replace("_", ""))
    except ValueError:
        raise UserError(f"--{name} must be a whole number, got {value[:30]!r}.") from None


def campaign_of_caption(caption: str | None) -> int | None:
    """The campaign number a document's caption names ("campaign 3", "/campaign log 3"), or None."""
    match = _CAPTION.match(caption or "")
    return int(match.group(1)) if match else None


def parse_button(pattern: re.Pattern[str], data: str | None) -> list[int] | None:
    match = pattern.match(data or "")
    return [int(group) for group in match.groups()] if match else None


# --------------------------------------------------------------------------------------------
# The contact list: a document and pages with buttons
# --------------------------------------------------------------------------------------------

def page_view(svc: Services, campaign: Campaign, page: int) -> tuple[str, InlineKeyboardMarkup | None]:
    """Blocking: one page of the contact list with a "contacted" button per client."""
    assert campaign.id is not None
    rows, total = contact_page(svc.db, campaign.id, offset=page * PAGE_SIZE, limit=PAGE_SIZE)
    pages = max(1, -(-total // PAGE_SIZE))
    if page >= pages:
        page = pages - 1
        rows, total = contact_page(svc.db, campaign.id, offset=page * PAGE_SIZE, limit=PAGE_SIZE)
    reached = contacted_members(svc.db, campaign.id, [row.id for row in rows if row.id is not None])
    lines = [f"Campaign {campaign.id} \u201c{campaign.name}\u201d — contact list, page {page + 1} of {pages} "
             f"({total:,} treated clients, riskiest first):", ""]
    buttons: list[list[InlineKeyboardButton]] = []
    for position, member in enumerate(rows, start=page * PAGE_SIZE + 1):
        when = reached.get(member.id or 0)
        reason = member.reasons[0] if member.reasons else ""
        mark = f" — ✓ contacted {when:%Y-%m-%d %H:%M}" if when is not None else ""
        lines.append(f"{position}. {member.client_id} — {member.probability:.1%} {member.risk_band}"
                     + (f" · {reason}" if reason else "") + mark)
        label = f"✓ {member.client_id} logged" if when is not None else f"Contacted {member.client_id}"
        buttons.append([InlineKeyboardButton(truncate(label, 60),
                                             callback_data=f"{CONTACTED_PREFIX}{campaign.id}:{member.id}:{page}")])
    navigation = []
    if page > 0:
        navigation.append(InlineKeyboardButton("◀ Prev", callback_data=f"{PAGE_PREFIX}{campaign.id}:{page - 1}"))
    if page < pages - 1:
        navigation.append(InlineKeyboardButton("Next ▶", callback_data=f"{PAGE_PREFIX}{campaign.id}:{page + 1}"))
    if navigation:
        buttons.append(navigation)
    lines += ["", "Press a client's button once the team has reached them (the time is logged now)."]
    return "\n".join(lines), InlineKeyboardMarkup(buttons) if buttons else None


def list_document(svc: Services, campaign: Campaign) -> tuple[bytes, str, str]:
    """Blocking: the contact list file, its name and caption (gzip when over Telegram's limit)."""
    data = contact_list_csv(svc.db, campaign)
    name = f"campaign-{campaign.id}-contacts.csv"
    note = "CSV only: an XLSX version is not available yet."
    if len(data) > SEND_LIMIT:
        data, name = gzip.compress(data), name + ".gz"
        note = "Compressed with gzip to fit Telegram's 50 MB limit; CSV only (no XLSX yet)."
    caption = truncate(f"Contact list of campaign {campaign.id} \u201c{campaign.name}\u201d: {campaign.treatment:,} "
                       f"treated clients, riskiest first, with reasons. The {campaign.holdout:,} holdout clients are "
                       f"not on it: do not contact them. {note}", CAPTION_LIMIT)
    return data, name, caption


async def send_contact_list(update: Update, context: ContextTypes.DEFAULT_TYPE, svc: Services,
                            campaign: Campaign) -> None:
    chat = update.effective_chat
    if chat is None:
        return
    await show_activity(context, chat.id, ChatAction.UPLOAD_DOCUMENT)
    data, name, caption = await svc.offload(list_document, svc, campaign)
    await context.bot.send_document(chat.id, document=io.BytesIO(data), filename=name, caption=caption)
    text, markup = await svc.offload(page_view, svc, campaign, 0)
    await reply(update, context, text, reply_markup=markup)


# --------------------------------------------------------------------------------------------
# /campaign
# --------------------------------------------------------------------------------------------

async def campaign(update: Update, context: ContextTypes.DEFAULT_TYPE) -> str:
    """Returns the audit result."""
    svc = services(context)
    message = update.effective_message
    words = split_words(command_argument(message.text if message else None))
    if not words or words[0].lower() in ("help", "?"):
        await reply(update, context, usage_text(await svc.offload(store_example, svc.db)))
        return "usage"
    action, rest = words[0].lower(), words[1:]
    if action == "new":
        return await _new(update, context, svc, rest)
    if action == "list":
        found = await svc.offload(all_campaigns, svc.db)
        await reply(update, context, campaigns_text(found))
        return f"listed {len(found)}"
    if action in ("contacts", "report", "log"):
        if len(rest) != 1:
            raise UserError(f"Which campaign? Send /campaign {action} ID, for example /campaign {action} 1 "
                            "(/campaign list shows them).")
        chosen = await svc.offload(campaign_or_refuse, svc.db, rest[0])
        if action == "contacts":
            await send_contact_list(update, context, svc, chosen)
            return f"contact list of campaign {chosen.id}"
        if action == "log":
            await reply(update, context, LOG_HELP.format(id=chosen.id))
            return "log help"
        return await _report(update, context, svc, chosen)
    raise UserError(f"I don't know /campaign {action[:30]}.\n\n" + usage_text(await svc.offload(store_example,
                                                                                             svc.db)))


async def _new(update: Update, context: ContextTypes.DEFAULT_TYPE, svc: Services, words: list[str]) -> str:
    options = parse_new(words)
    chat = update.effective_chat
    if chat is not None:
        await show_activity(context, chat.id, ChatAction.TYPING)
    settings = svc.settings
    try:
        scorer = require_scorer(svc)
        created = await svc.offload(new_campaign, svc.db, scorer, options, economics=economics_of(settings),
                                    horizon_days=settings.churn_horizon_days, default_seed=settings.seed,
                                    actor=actor_of(update))
    except NoChampion:
        await reply(update, context, NO_MODEL_TEXT)
        return "refused: no model"
    number = created.campaign.id
    await reply(update, context, created.to_text([
        f"Next: the contact list follows (treatment only). Press a client's button when the team has reached them, "
        f"or send the filled-in list back as a document with the caption: campaign {number}. "
        f"/campaign report {number} shows the outcomes as they arrive."]))
    await send_contact_list(update, context, svc, created.campaign)
    return f"campaign {number}: {created.campaign.treatment} treated, {created.campaign.holdout} held out"


async def _report(update: Update, context: ContextTypes.DEFAULT_TYPE, svc: Services, chosen: Campaign) -> str:
    chat = update.effective_chat
    assert chosen.id is not None
    if chat is not None:
        await show_activity(context, chat.id, ChatAction.TYPING)
    result = await svc.offload(campaign_report, svc.db, chosen.id, economics=economics_of(svc.settings))
    await reply(update, context, result.to_text(), filename=f"campaign-{chosen.id}-report.txt")
    png = await svc.offload(result.chart)
    if png is not None and chat is not None:
        await context.bot.send_photo(chat.id, photo=io.BytesIO(png), filename=f"campaign-{chosen.id}.png",
                                     caption=f"Campaign {chosen.id}: share of clients who left, by group, over the "
                                             f"{chosen.horizon_days} days after the scores.")
    return f"report of campaign {chosen.id}"


# --------------------------------------------------------------------------------------------
# Buttons
# --------------------------------------------------------------------------------------------

async def contacted(update: Update, context: ContextTypes.DEFAULT_TYPE, parsed: tuple[int, ...]) -> str:
    """The "Contacted <client>" button: log a contact now, then refresh the page."""
    svc = services(context)
    query = update.callback_query
    if query is None:
        return "ignored"
    campaign_id, member_id, page = parsed
    member = await svc.offload(member_by_id, svc.db, member_id)
    if member is None or member.campaign_id != campaign_id or member.arm != TREATMENT:
        await query.answer(STALE_BUTTON)
        return "refused: not a treatment member"
    chosen = await svc.offload(campaign_or_refuse, svc.db, campaign_id)
    logged, when = await svc.offload(log_button_contact, svc.db, chosen, member, actor=actor_of(update))
    if logged:
        await query.answer(f"Logged: {member.client_id} contacted at {when:%H:%M} UTC.")
    else:
        await query.answer(f"{member.client_id} was already logged as contacted on {when:%Y-%m-%d %H:%M} UTC.")
    await _show_page(update, svc, chosen, page)
    return f"campaign {campaign_id}: {member.client_id} " + ("contacted" if logged else "already logged")


async def turn_page(update: Update, context: ContextTypes.DEFAULT_TYPE, parsed: tuple[int, ...]) -> str:
    svc = services(context)
    query = update.callback_query
    if query is None:
        return "ignored"
    try:
        chosen = await svc.offload(campaign_or_refuse, svc.db, parsed[0])
    except UserError:
        await query.answer(STALE_BUTTON)
        return "refused: unknown campaign"
    await query.answer()
    await _show_page(update, svc, chosen, parsed[1])
    return f"campaign {chosen.id}: page {parsed[1] + 1}"


async def _show_page(update: Update, svc: Services, chosen: Campaign, page: int) -> None:
    query = update.callback_query
    assert query is not None
    text, markup = await svc.offload(page_view, svc, chosen, page)
    try:
        await query.edit_message_text(text, reply_markup=markup)
    except BadRequest as error:
        if "not modified" not in str(error).lower():
            raise


# --------------------------------------------------------------------------------------------
# The contact log as a document
# --------------------------------------------------------------------------------------------

def check_log_document(file_name: str | None, size: int | None, max_upload_mb: float) -> str | None:
    """Why this document cannot be a contact log, from its metadata alone; None when it may be downloaded."""
    if not file_name or not file_name.lower().endswith(LOG_SUFFIXES):
        return (f"{file_name or 'The file'!r} is not a .csv or .csv.gz file. Save the contact log as CSV with the "
                "columns client_id, contacted_at and outcome, and send it again.")
    if size is not None and size > int(max_upload_mb * 1024 * 1024):
        return (f"{file_name!r} is {size / 1024 / 1024:.1f} MB; uploads are limited to {max_upload_mb:g} MB. "
                "Split the contact log into smaller files and send them one by one.")
    return None


async def contact_log_upload(update: Update, context: ContextTypes.DEFAULT_TYPE) -> str:
    svc = services(context)
    message = update.effective_message
    chat = update.effective_chat
    if message is None or message.document is None or chat is None:
        return "ignored"
    number = campaign_of_caption(message.caption)
    if number is None:
        await reply(update, context, "Nothing was stored. To log contacts, send the file with a caption that names "
                                     "the campaign and nothing else, for example: campaign 3")
        return "refused: caption"
    document = message.document
    settings = svc.settings
    problem = check_log_document(document.file_name, document.file_size, settings.max_upload_mb)
    if problem is not None:
        await reply(update, context, f"{problem}\nNothing was stored.")
        return "refused before download"
    chosen = await svc.offload(campaign_or_refuse, svc.db, number)
    await show_activity(context, chat.id, ChatAction.TYPING)
    telegram_file = await document.get_file()
    problem = check_log_document(document.file_name, telegram_file.file_size, settings.max_upload_mb)
    if problem is not None:
        await reply(update, context, f"{problem}\nNothing was stored.")
        return "refused before download"
    data = bytes(await retry_call(telegram_file.download_as_bytearray, what="file download"))
    schema = await svc.offload(store_schema, svc.db, settings)
    name = document.file_name or "contact-log.csv"
    try:
        result = await svc.offload(log_contacts, svc.db, chosen, data, source_name=name,
                                   limits=Limits.from_settings(settings), actor=actor_of(update),
                                   id_column=schema.id_column if schema is not None else None)
    except UserError as error:
        await reply(update, context, str(error), filename="contact-log-refused.txt")
        return f"refused: {str(error)[:60]}"
    await reply(update, context, result.to_text() + f"\n/campaign report {chosen.id} shows the effect once the "
                                                     "outcomes are in.")
    return f"campaign {chosen.id}: {result.stored} contacts stored"


def handlers() -> list[BaseHandler[Update, ContextTypes.DEFAULT_TYPE, Any]]:
    """The contact-log upload, behind the guard of /campaign (its buttons are ``BUTTONS``)."""
    return [
        MessageHandler(filters.Document.ALL & filters.CaptionRegex(CAPTION_FILTER),
                       guard(ACTION, Role.ADMIN, contact_log_upload)),
    ]


BUTTONS = (
    Button(ACTION, "contacted", CONTACTED_PREFIX,
           lambda _svc, payload: parse_button(_CONTACTED, CONTACTED_PREFIX + payload), contacted,
           stale_text=STALE_BUTTON),
    Button(ACTION, "page", PAGE_PREFIX, lambda _svc, payload: parse_button(_PAGE, PAGE_PREFIX + payload), turn_page,
           stale_text=STALE_BUTTON),
)


COMMANDS = (
    Command(ACTION, "retention campaigns with a control group: new, list, contacts, report", Role.ADMIN, campaign,
            usage="new [options] | list | contacts ID | report ID"),
)

__all__ = ["BUTTONS", "COMMANDS", "campaign", "campaign_of_caption", "check_log_document", "contact_log_upload",
           "contacted", "handlers", "page_view", "parse_new", "split_words", "turn_page", "usage_text"]
