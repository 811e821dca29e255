"""The contact list a team works from, and the contact log it sends back.

**Contact list**: the treatment arm only (``storage.campaigns.contact_list``), riskiest
first, with the reasons of each score and two empty columns, ``contacted_at`` and
``outcome``, so the team can fill in the same file and send it back as the contact log.
Cells go to spreadsheet users: one starting with ``=``, ``+``, ``-``, ``@``, tab or carriage
return is prefixed with an apostrophe (as the /top CSV does), because ids, reasons and
campaign names come from outside and must never run as formulas.  CSV only for now: the
shared XLSX writer (issue 12.6) plugs in at ``write_contact_list``.

**Contact log**: a CSV (or .csv.gz / Parquet) with ``client_id, contacted_at[, outcome]``,
read by the same reader as a CRM export (encodings, separators, sizes).  It is checked as a
whole before anything is stored, and refused (naming the rows) when a client is unknown to
the store, is not in the campaign, or is in its holdout; when a date cannot be read, lies in
the future or before the campaign was created.  Rows without a contact date are clients the
team did not reach: they are skipped and counted.  The same client and time logged twice
(in the file or earlier) is stored once.
"""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pandas as pd
from sqlmodel import col, select

from storage.campaign_tables import HOLDOUT, TREATMENT, Campaign, CampaignMember
from storage.campaigns import NewContact, add_contacts, contact_list, members
from storage.db import Database
from storage.errors import UserError
from storage.events.tables import EventClient
from storage.files import write_output
from storage.readers import Limits, parse_bytes
from storage.tables import ClientRecord

FORMULA_PREFIXES = ("=", "+", "-", "@", "\t", "\r")
LIST_COLUMNS = ("rank", "client_id", "churn_probability", "risk_band", "reason_1", "reason_2", "reason_3",
                "contacted_at", "outcome", "campaign_id", "campaign", "model_version", "scores_as_of")
LOG_COLUMNS = ("client_id", "contacted_at", "outcome")
LIST_FORMATS = (".csv",)
MAX_OUTCOME_CHARS = 200
MAX_EXAMPLES = 5
_ALIASES = {
    "client_id": ("client_id", "clientid", "client", "customer_id", "customerid", "id", "account_id"),
    "contacted_at": ("contacted_at", "contacted", "contacted_on", "contact_date", "contact_time", "date"),
    "outcome": ("outcome", "result", "status", "contact_outcome"),
}


def safe_cell(value: object) -> str:
    """A cell a spreadsheet shows as text: formula-looking values get a leading apostrophe."""
    text = "" if value is None else str(value)
    return "'" + text if text.startswith(FORMULA_PREFIXES) else text


# --------------------------------------------------------------------------------------------
# The contact list
# --------------------------------------------------------------------------------------------

def contact_rows(db: Database, campaign: Campaign) -> Iterator[list[str]]:
    """The contact list as rows of cells (header first), treatment members only."""
    yield list(LIST_COLUMNS)
    assert campaign.id is not None
    for position, member in enumerate(contact_list(db, campaign.id), start=1):
        if member.arm != TREATMENT:  # the query reads the treatment arm; never trust one place alone
            continue
        reasons = [*member.reasons[:3], "", "", ""][:3]
        yield [safe_cell(cell) for cell in (
            position, member.client_id, f"{member.probability:.4f}", member.risk_band, *reasons, "", "",
            campaign.id, campaign.name, campaign.model_version, f"{campaign.as_of:%Y-%m-%d %H:%M}")]


def contact_list_csv(db: Database, campaign: Campaign) -> bytes:
    """UTF-8 CSV with a BOM (Excel then reads non-ASCII ids correctly)."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\r\n")
    for row in contact_rows(db, campaign):
        writer.writerow(row)
    return ("\ufeff" + buffer.getvalue()).encode("utf-8")


def write_contact_list(db: Database, campaign: Campaign, path: Path) -> int:
    """Write the contact list to ``path`` (.csv) atomically; returns the number of clients.

    A file that cannot be written leaves nothing behind (no half-written list)."""
    path = Path(path)
    suffix = "".join(path.suffixes[-1:]).lower()
    if suffix not in LIST_FORMATS:
        wanted = "XLSX is not available yet; write a .csv file" if suffix == ".xlsx" else "write a .csv file"
        raise UserError(f"the contact list can be written as CSV only: {wanted}, e.g. contacts.csv",
                        output=str(path))
    data = contact_list_csv(db, campaign)
    write_output(path, data)
    return max(data.count(b"\r\n") - 1, 0)


# --------------------------------------------------------------------------------------------
# The contact log
# --------------------------------------------------------------------------------------------

class _EveryColumn:
    """``keep_text`` that keeps every column as text: ids such as 007 must stay 007."""

    def __contains__(self, _name: object) -> bool:
        return True

    def __iter__(self) -> Iterator[str]:
        return iter(())

    def __len__(self) -> int:
        return 0


@dataclass
class ContactLogResult:
    """What an uploaded contact log did."""

    campaign_id: int
    source_name: str
    rows: int
    stored: int
    already_logged: int
    not_contacted: int
    contacted_clients: int
    treated: int
    notes: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return {"campaign_id": self.campaign_id, "file": self.source_name, "rows": self.rows, "stored": self.stored,
                "already_logged": self.already_logged, "not_contacted": self.not_contacted,
                "contacted_clients": self.contacted_clients, "treated": self.treated,
                "contact_rate": round(self.contacted_clients / self.treated, 4) if self.treated else None,
                "notes": self.notes}

    def to_text(self) -> str:
        lines = [f"Contact log {self.source_name} for campaign {self.campaign_id}: {self.stored} contact(s) stored"
                 + (f", {self.already_logged} already logged before" if self.already_logged else "")
                 + (f", {self.not_contacted} row(s) without a contact date skipped (not reached)"
                    if self.not_contacted else "") + "."]
        rate = self.contacted_clients / self.treated if self.treated else 0.0
        lines.append(f"Contacted so far: {self.contacted_clients:,} of {self.treated:,} treated clients ({rate:.0%}).")
        lines += self.notes
        return "\n".join(lines)


def _name(column: object) -> str:
    return re.sub(r"[\s\-]+", "_", str(column).strip().lower())


def _columns(frame: pd.DataFrame, id_column: str | None, source_name: str) -> dict[str, str]:
    names = {_name(column): str(column) for column in frame.columns}
    found: dict[str, str] = {}
    for role, aliases in _ALIASES.items():
        options = (*aliases, _name(id_column)) if role == "client_id" and id_column else aliases
        match = next((names[alias] for alias in options if alias in names), None)
        if match is not None:
            found[role] = match
    missing = [role for role in ("client_id", "contacted_at") if role not in found]
    if missing:
        raise UserError(f"{source_name} has no {' and no '.join(missing)} column; a contact log has the columns "
                        f"client_id, contacted_at and optionally outcome (columns found: "
                        f"{', '.join(map(str, frame.columns[:20]))})", problem="missing_column", columns=missing)
    return found


def _row_list(rows: Sequence[int]) -> str:
    shown = ", ".join(str(row) for row in rows[:10])
    return shown + (f" and {len(rows) - 10} more" if len(rows) > 10 else "")


def _known_clients(db: Database, ids: Sequence[str]) -> set[str]:
    found: set[str] = set()
    with db.read_session() as session:
        for start in range(0, len(ids), 1000):
            chunk = list(ids[start:start + 1000])
            for table_column in (col(ClientRecord.client_id), col(EventClient.client_id)):
                found.update(str(c) for c in session.exec(select(table_column).where(table_column.in_(chunk)).distinct()))
    return found


def _parse_times(values: pd.Series) -> pd.Series:
    parsed = pd.to_datetime(values, errors="coerce", utc=True, format="mixed")
    return parsed.dt.tz_localize(None)


def check_contact_log(db: Database, campaign: Campaign, data: bytes, *, source_name: str, limits: Limits,
                      id_column: str | None = None, now: datetime | None = None
                      ) -> tuple[list[NewContact], int, int]:
    """The contacts a log file holds, checked as a whole (see the module docstring); returns
    (contacts, data rows, rows without a contact date).  ``UserError`` names every problem."""
    table = parse_bytes(data, source_name=source_name, limits=limits, keep_text=_EveryColumn())
    frame = table.frame.reset_index(drop=True)
    columns = _columns(frame, id_column, source_name)
    ids = frame[columns["client_id"]].astype("string").str.strip()
    stamps = frame[columns["contacted_at"]].astype("string").str.strip()
    outcomes = (frame[columns["outcome"]].astype("string").str.strip() if "outcome" in columns
                else pd.Series([""] * len(frame), dtype="string"))
    times = _parse_times(stamps.fillna(""))
    assert campaign.id is not None
    roster = {member.client_id: member for member in members(db, campaign.id)}
    row_number = pd.RangeIndex(1, len(frame) + 1)
    problems: list[str] = []
    details: dict[str, Any] = {}

    def problem(key: str, mask: pd.Series, text: str, examples: pd.Series | None = None) -> None:
        rows = [int(r) for r in row_number[mask.fillna(False).to_numpy(dtype=bool)]]
        if rows:
            shown = "" if examples is None else " (" + ", ".join(
                repr(str(v)) for v in examples[mask.fillna(False).to_numpy(dtype=bool)].head(MAX_EXAMPLES)) + ")"
            problems.append(f"{text} in data row(s) {_row_list(rows)}{shown}")
            details[key] = rows

    blank_id = ids.isna() | (ids == "")
    problem("blank_client_id", blank_id, "the client id is blank")
    not_member = ~blank_id & ~ids.isin(list(roster))
    unknown: set[str] = set()
    if bool(not_member.any()):
        strangers = sorted(set(ids[not_member].dropna()))
        unknown = set(strangers) - _known_clients(db, strangers)
    problem("unknown_clients", not_member & ids.isin(list(unknown)),
            "these clients are unknown to ChurnGuard (no record has the id)", ids)
    problem("not_in_campaign", not_member & ~ids.isin(list(unknown)),
            f"these clients are not in campaign {campaign.id}", ids)
    held = ~blank_id & ids.map(lambda c: c in roster and roster[c].arm == HOLDOUT).astype(bool)
    problem("holdout_clients", held, f"these clients are in the holdout of campaign {campaign.id}, which must not "
            "be contacted (the contact list never names them; is it the right campaign?)", ids)
    no_date = stamps.isna() | (stamps == "")
    problem("bad_dates", ~no_date & times.isna(), "contacted_at is not a date such as 2025-03-31 or "
            "2025-03-31 14:05", stamps)
    moment = now or datetime.now(UTC).replace(tzinfo=None)
    problem("future_dates", times > moment + timedelta(days=1), "contacted_at is in the future", stamps)
    opened = campaign.created_at.replace(hour=0, minute=0, second=0, microsecond=0)
    problem("before_campaign", times < opened, f"contacted_at is before campaign {campaign.id} was created "
            f"({campaign.created_at:%Y-%m-%d})", stamps)
    long_outcome = outcomes.fillna("").str.len() > MAX_OUTCOME_CHARS
    problem("long_outcome", long_outcome, f"the outcome is longer than {MAX_OUTCOME_CHARS} characters")
    if problems:
        raise UserError(f"{source_name} was not stored (nothing of it): " + "; ".join(problems) + ".",
                        problem="contact_log", campaign_id=campaign.id, **details)
    contacts = []
    for index in range(len(frame)):
        if bool(no_date.iloc[index]):
            continue
        client = str(ids.iloc[index])
        member = roster[client]
        assert member.id is not None
        contacts.append(NewContact(member.id, client, times.iloc[index].to_pydatetime().replace(microsecond=0),
                                   str(outcomes.iloc[index] if pd.notna(outcomes.iloc[index]) else "")))
    return contacts, len(frame), int(no_date.sum())


def log_contacts(db: Database, campaign: Campaign, data: bytes, *, source_name: str, limits: Limits, actor: str,
                 id_column: str | None = None) -> ContactLogResult:
    """Check a contact log and store its contacts in one transaction (nothing when refused)."""
    from storage.campaigns import contacted_members

    contacts, rows, skipped = check_contact_log(db, campaign, data, source_name=source_name, limits=limits,
                                                id_column=id_column)
    assert campaign.id is not None
    stored, repeated = add_contacts(db, campaign.id, contacts, source="upload", actor=actor, file_name=source_name)
    reached = len(contacted_members(db, campaign.id))
    notes = []
    if rows and skipped == rows:
        notes.append("No row had a contact date: fill in contacted_at for the clients the team reached.")
    return ContactLogResult(campaign.id, source_name, rows, stored, repeated, skipped, reached, campaign.treatment,
                            notes)


def log_button_contact(db: Database, campaign: Campaign, member: CampaignMember, *, actor: str,
                       now: datetime | None = None) -> tuple[bool, datetime]:
    """Log "contacted now" for one treatment member (the chat's button); (False, first time)
    when a contact is already logged for the member, which is then left as it was."""
    from storage.campaigns import contacted_members

    assert campaign.id is not None and member.id is not None
    if member.campaign_id != campaign.id or member.arm != TREATMENT:
        raise UserError(f"client {member.client_id} is not on the contact list of campaign {campaign.id}")
    earlier = contacted_members(db, campaign.id, [member.id]).get(member.id)
    if earlier is not None:
        return False, earlier
    moment = (now or datetime.now(UTC).replace(tzinfo=None)).replace(microsecond=0)
    add_contacts(db, campaign.id, [NewContact(member.id, member.client_id, moment, "contacted")], source="button",
                 actor=actor)
    return True, moment


__all__ = ["FORMULA_PREFIXES", "LIST_COLUMNS", "LOG_COLUMNS", "ContactLogResult", "check_contact_log",
           "contact_list_csv", "contact_rows", "log_button_contact", "log_contacts", "safe_cell",
           "write_contact_list"]
