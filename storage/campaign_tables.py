"""The tables of retention campaigns (queries: storage/campaigns.py).

Kept apart from the queries for the same reason as ``storage/events/tables.py``:
``storage.db`` imports this module to register the tables on the metadata before it
creates a store, and the queries need ``storage.db`` in turn.
"""

from __future__ import annotations

from typing import Any

from pydantic import NaiveDatetime
from sqlalchemy import JSON, Column, Index, Text, UniqueConstraint
from sqlmodel import Field, SQLModel

from storage.tables import utcnow

TREATMENT, HOLDOUT = "treatment", "holdout"


class Campaign(SQLModel, table=True):
    """A retention campaign with a control group."""

    __tablename__ = "campaign"
    id: int | None = Field(default=None, primary_key=True)
    name: str = Field(max_length=200)
    created_at: NaiveDatetime = Field(default_factory=utcnow, index=True)
    created_by: str = Field(default="system", max_length=64)
    as_of: NaiveDatetime  # the date the members' scores describe
    horizon_days: int
    source: str = Field(max_length=16)  # "clients" (flat exports) | "events" (event history)
    last_batch_id: int = 0  # the newest batch when it was created: later labelled batches bring outcomes
    model_version: str = Field(max_length=32)
    threshold: float
    segment: str | None = Field(default=None, sa_column=Column(Text, nullable=True))
    top_n: int | None = None
    holdout_share: float
    seed: int
    treatment: int
    holdout: int
    plan: dict[str, Any] = Field(default_factory=dict, sa_column=Column(JSON, nullable=False))


class CampaignMember(SQLModel, table=True):
    """A client in a campaign, with the arm it was assigned to (never changed)."""

    __tablename__ = "campaign_member"
    __table_args__ = (
        UniqueConstraint("campaign_id", "client_id", name="uq_campaign_member_client"),
        Index("ix_campaign_member_arm_rank", "campaign_id", "arm", "rank"),
    )
    id: int | None = Field(default=None, primary_key=True)
    campaign_id: int = Field(foreign_key="campaign.id")
    client_id: str = Field(max_length=200)
    arm: str = Field(max_length=16)  # treatment | holdout
    risk_band: str = Field(max_length=16)
    probability: float
    rank: int  # 1 = riskiest member of the campaign
    draw: float  # the hash draw that decided the arm (model/campaigns/assignment.py)
    reasons: list[str] = Field(default_factory=list, sa_column=Column(JSON, nullable=False))


class CampaignContact(SQLModel, table=True):
    """One logged contact with a treatment member."""

    __tablename__ = "campaign_contact"
    __table_args__ = (
        UniqueConstraint("campaign_id", "client_id", "contacted_at", name="uq_campaign_contact_time"),
        Index("ix_campaign_contact_member", "campaign_id", "member_id"),
    )
    id: int | None = Field(default=None, primary_key=True)
    campaign_id: int = Field(foreign_key="campaign.id")
    member_id: int = Field(foreign_key="campaign_member.id")
    client_id: str = Field(max_length=200)
    contacted_at: NaiveDatetime
    outcome: str = Field(default="", sa_column=Column(Text, nullable=False))
    source: str = Field(default="upload", max_length=16)  # upload | button
    actor: str = Field(default="system", max_length=64)
    logged_at: NaiveDatetime = Field(default_factory=utcnow)
    file_name: str | None = Field(default=None, max_length=255)


__all__ = ["HOLDOUT", "TREATMENT", "Campaign", "CampaignContact", "CampaignMember"]
