"""Retention campaigns in the store: the campaign, its members and the contact log.

Three new tables (storage/campaign_tables.py; created at start-up like any new table, no
migration):

* ``campaign``: what was decided when it was created: the scores' as-of date and the churn
  horizon (a member's outcome is "left within the horizon after that date"), the model and
  threshold, the segment, cap and holdout share, the seed, and the power statement.
* ``campaign_member``: one row per client: its arm (``treatment`` / ``holdout``), risk band,
  probability, rank (1 = riskiest), the hash draw that assigned it, and the reasons shown on
  the contact list.  Written once, with the campaign, in one transaction, and never
  updated: the assignment cannot change after the fact.
* ``campaign_contact``: who the team reached, when, and what happened (an uploaded log or a
  button in the chat).  Only treatment members can have a contact: the holdout is never
  offered to the team (``contact_list`` reads the treatment arm only), and a logged contact
  references the member row, whose arm the writer checks.

Every write is one transaction: a campaign with all its members, or an upload's contacts
all together; a refused upload stores nothing.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import func
from sqlmodel import col, select

from storage.campaign_tables import HOLDOUT, TREATMENT, Campaign, CampaignContact, CampaignMember
from storage.db import Database
from storage.errors import NotFound
from storage.tables import Batch

_IN_CHUNK = 5_000


@dataclass(frozen=True)
class NewMember:
    client_id: str
    arm: str
    risk_band: str
    probability: float
    rank: int
    draw: float
    reasons: tuple[str, ...] = ()


@dataclass(frozen=True)
class NewContact:
    member_id: int
    client_id: str
    contacted_at: datetime
    outcome: str = ""


def newest_batch_id(db: Database) -> int:
    """The id of the newest stored batch (0 for an empty store)."""
    with db.read_session() as session:
        return int(session.exec(select(func.max(Batch.id))).one() or 0)


def create_campaign(db: Database, campaign: Campaign,
                    assign: Callable[[int], Sequence[NewMember]]) -> tuple[Campaign, list[CampaignMember]]:
    """Store ``campaign`` and its members in one transaction.

    The arms depend on the campaign's id (the hash draws use it), which the database gives
    only on insert: ``assign(campaign_id)`` is called inside the transaction and returns the
    members.  An empty list rolls everything back.  Returns the stored campaign and members.
    """
    with db.session() as session:
        session.add(campaign)
        session.flush()
        assert campaign.id is not None
        rows = list(assign(int(campaign.id)))
        if not rows:
            raise ValueError("a campaign needs members")
        campaign.treatment = sum(1 for row in rows if row.arm == TREATMENT)
        campaign.holdout = sum(1 for row in rows if row.arm == HOLDOUT)
        stored = [CampaignMember(campaign_id=campaign.id, client_id=row.client_id, arm=row.arm,
                                 risk_band=row.risk_band, probability=float(row.probability), rank=int(row.rank),
                                 draw=float(row.draw), reasons=list(row.reasons)) for row in rows]
        session.add_all(stored)
        session.add(campaign)
        session.flush()
        session.refresh(campaign)
    return campaign, stored


def get_campaign(db: Database, campaign_id: int) -> Campaign:
    """The campaign, or ``NotFound`` naming the campaigns there are."""
    with db.read_session() as session:
        found = session.get(Campaign, int(campaign_id))
        if found is not None:
            return found
        ids = [i for i in session.exec(select(col(Campaign.id)).order_by(col(Campaign.id).desc()).limit(10)) if i is not None]
    known = f"; the newest are {', '.join(map(str, ids))}" if ids else "; there are no campaigns yet"
    raise NotFound(f"there is no campaign {campaign_id}{known}", campaign_id=campaign_id)


def list_campaigns(db: Database, limit: int = 50) -> list[Campaign]:
    """The newest campaigns first."""
    with db.read_session() as session:
        return list(session.exec(select(Campaign).order_by(col(Campaign.id).desc()).limit(limit)))


def members(db: Database, campaign_id: int, *, arm: str | None = None) -> list[CampaignMember]:
    """The campaign's members (or one arm's) by rank, riskiest first."""
    query = select(CampaignMember).where(CampaignMember.campaign_id == int(campaign_id))
    if arm is not None:
        query = query.where(CampaignMember.arm == arm)
    with db.read_session() as session:
        return list(session.exec(query.order_by(col(CampaignMember.rank))))


def contact_list(db: Database, campaign_id: int) -> list[CampaignMember]:
    """Who the team should contact: the treatment arm only, riskiest first.  The holdout is
    never part of it, whoever asks and however the list is exported."""
    return members(db, campaign_id, arm=TREATMENT)


def contact_page(db: Database, campaign_id: int, *, offset: int, limit: int) -> tuple[list[CampaignMember], int]:
    """One page of the contact list (treatment only) and the list's length."""
    base = select(CampaignMember).where(CampaignMember.campaign_id == int(campaign_id),
                                        CampaignMember.arm == TREATMENT)
    with db.read_session() as session:
        total = int(session.exec(select(func.count()).select_from(base.subquery())).one())
        page = list(session.exec(base.order_by(col(CampaignMember.rank)).offset(max(offset, 0)).limit(limit)))
    return page, total


def member_by_id(db: Database, member_id: int) -> CampaignMember | None:
    with db.read_session() as session:
        return session.get(CampaignMember, int(member_id))


def contacts(db: Database, campaign_id: int) -> list[CampaignContact]:
    """Every logged contact of the campaign, oldest first."""
    with db.read_session() as session:
        query = select(CampaignContact).where(CampaignContact.campaign_id == int(campaign_id))
        return list(session.exec(query.order_by(col(CampaignContact.contacted_at), col(CampaignContact.id))))


def contacted_members(db: Database, campaign_id: int, member_ids: Iterable[int] | None = None) -> dict[int, datetime]:
    """Member id -> the first logged contact time, for the members with any contact."""
    query = (select(CampaignContact.member_id, func.min(CampaignContact.contacted_at))
             .where(CampaignContact.campaign_id == int(campaign_id)).group_by(col(CampaignContact.member_id)))
    if member_ids is not None:
        query = query.where(col(CampaignContact.member_id).in_(list(member_ids)))
    with db.read_session() as session:
        return {int(member): when for member, when in session.exec(query)}


def add_contacts(db: Database, campaign_id: int, rows: Sequence[NewContact], *, source: str, actor: str,
                 file_name: str | None = None) -> tuple[int, int]:
    """Store the contacts in one transaction; returns (stored, already logged).

    Every row must name a treatment member of this campaign (checked again here, inside the
    transaction, so no caller can log a holdout client); a row whose client and time are
    already logged is skipped, so uploading the same log twice changes nothing."""
    if not rows:
        return 0, 0
    wanted = {int(row.member_id) for row in rows}
    with db.session() as session:
        arms: dict[int, tuple[str, str]] = {}
        ids = sorted(wanted)
        for start in range(0, len(ids), _IN_CHUNK):
            chunk = ids[start:start + _IN_CHUNK]
            query = select(col(CampaignMember.id), CampaignMember.arm, CampaignMember.client_id).where(
                CampaignMember.campaign_id == int(campaign_id), col(CampaignMember.id).in_(chunk))
            arms.update({int(i): (str(a), str(c)) for i, a, c in session.exec(query) if i is not None})
        for row in rows:
            arm = arms.get(int(row.member_id))
            if arm is None or arm[0] != TREATMENT or arm[1] != row.client_id:
                raise ValueError(f"client {row.client_id} is not a treatment member of campaign {campaign_id}")
        logged = {(str(c), when) for c, when in session.exec(
            select(CampaignContact.client_id, CampaignContact.contacted_at).where(
                CampaignContact.campaign_id == int(campaign_id)))}
        stored = skipped = 0
        seen: set[tuple[str, datetime]] = set()
        for row in rows:
            key = (row.client_id, row.contacted_at)
            if key in logged or key in seen:
                skipped += 1
                continue
            seen.add(key)
            session.add(CampaignContact(campaign_id=int(campaign_id), member_id=int(row.member_id),
                                        client_id=row.client_id, contacted_at=row.contacted_at,
                                        outcome=row.outcome, source=source, actor=actor[:64],
                                        file_name=None if file_name is None else file_name[:255]))
            stored += 1
    return stored, skipped


__all__ = [
    "HOLDOUT",
    "TREATMENT",
    "Campaign",
    "CampaignContact",
    "CampaignMember",
    "NewContact",
    "NewMember",
    "add_contacts",
    "contact_list",
    "contact_page",
    "contacted_members",
    "contacts",
    "create_campaign",
    "get_campaign",
    "list_campaigns",
    "member_by_id",
    "members",
    "newest_batch_id",
]
