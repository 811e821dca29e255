"""Campaign tables on SQLite and PostgreSQL: one transaction per write, the holdout never on
a contact list, outcomes from the first labelled export after the campaign."""

from __future__ import annotations

import csv
import io
from datetime import datetime

import pytest

from model.campaigns.analysis import Economics
from model.campaigns.contacts import contact_list_csv, log_button_contact
from model.campaigns.service import CampaignOptions, Candidate, Selection, store_campaign
from storage.campaign_tables import Campaign
from storage.campaigns import (
    NewContact,
    NewMember,
    add_contacts,
    contact_list,
    contact_page,
    contacted_members,
    create_campaign,
    members,
)
from storage.errors import UserError
from storage.ingest import ingest_frame
from storage.outcomes import FlatOutcomeReader
from storage.schema import Schema

MONEY = Economics(5.0, 300.0, 0.25)
SCHEMA = Schema("id", "Churn", "Yes")


def selection(ids: list[str], *, as_of: datetime | None = None) -> Selection:
    candidates = [Candidate(cid, 0.9 - i / 1000, "high" if i % 3 == 0 else "medium", (f"reason of {cid}",))
                  for i, cid in enumerate(ids)]
    return Selection(candidates, "v1", 0.2, as_of or datetime(2025, 1, 1), "clients", len(ids), len(ids), len(ids),
                     None, None)


def stored(db, ids: list[str], share: float = 0.25, name: str | None = "test", as_of: datetime | None = None):
    return store_campaign(db, selection(ids, as_of=as_of), CampaignOptions(name=name, holdout=share), economics=MONEY,
                          horizon_days=30, default_seed=42)


def test_a_campaign_and_its_members_are_stored_together(db):
    created = stored(db, [f"c{i}" for i in range(200)])

    rows = members(db, created.campaign.id)
    assert len(rows) == 200 and [r.rank for r in rows] == list(range(1, 201))
    assert created.campaign.treatment == 150 and created.campaign.holdout == 50
    assert {r.arm for r in rows} == {"treatment", "holdout"} and all(0 <= r.draw < 1 for r in rows)
    assert rows[0].reasons == ["reason of c0"]


def test_a_campaign_without_a_holdout_or_without_treated_clients_is_refused(db):
    with pytest.raises(UserError, match="nobody to hold out"):
        stored(db, ["a", "b"], share=0.2)
    with pytest.raises(UserError, match="nobody to contact"):
        stored(db, ["a"], share=0.9)
    assert db.row_counts()["campaign"] == 0


def test_a_failure_while_assigning_stores_no_campaign(db):
    def broken(_campaign_id: int) -> list[NewMember]:
        raise RuntimeError("disk full")

    with pytest.raises(RuntimeError):
        create_campaign(db, Campaign(name="x", as_of=datetime(2025, 1, 1), horizon_days=30, source="clients",
                                     model_version="v1", threshold=0.2, holdout_share=0.2, seed=1, treatment=0,
                                     holdout=0), broken)

    counts = db.row_counts()
    assert counts["campaign"] == 0 and counts["campaign_member"] == 0


def test_the_holdout_is_never_on_the_contact_list_its_pages_or_its_file(db):
    created = stored(db, [f"c{i}" for i in range(120)], share=0.5)
    held = {m.client_id for m in members(db, created.campaign.id, arm="holdout")}

    listed = {m.client_id for m in contact_list(db, created.campaign.id)}
    paged: set[str] = set()
    page, total = contact_page(db, created.campaign.id, offset=0, limit=7)
    offset = 0
    while page:
        paged |= {m.client_id for m in page}
        offset += 7
        page, total = contact_page(db, created.campaign.id, offset=offset, limit=7)
    exported = {row["client_id"] for row in csv.DictReader(io.StringIO(
        contact_list_csv(db, created.campaign).decode("utf-8-sig")))}

    assert len(held) == 60 and total == 60
    assert listed == paged == exported and len(listed) == 60
    assert not (listed & held)


def test_a_holdout_client_cannot_be_logged_as_contacted(db):
    created = stored(db, [f"c{i}" for i in range(20)], share=0.5)
    held = members(db, created.campaign.id, arm="holdout")[0]

    with pytest.raises(ValueError, match="not a treatment member"):
        add_contacts(db, created.campaign.id, [NewContact(held.id, held.client_id, datetime(2025, 1, 2))],
                     source="upload", actor="test")
    with pytest.raises(UserError, match="not on the contact list"):
        log_button_contact(db, created.campaign, held, actor="test")
    assert db.row_counts()["campaign_contact"] == 0


def test_a_button_logs_a_contact_once(db):
    created = stored(db, [f"c{i}" for i in range(20)], share=0.5)
    treated = members(db, created.campaign.id, arm="treatment")[0]

    first = log_button_contact(db, created.campaign, treated, actor="telegram:1", now=datetime(2025, 1, 2, 9, 30))
    again = log_button_contact(db, created.campaign, treated, actor="telegram:1", now=datetime(2025, 1, 2, 9, 45))

    assert first == (True, datetime(2025, 1, 2, 9, 30)) and again == (False, datetime(2025, 1, 2, 9, 30))
    assert contacted_members(db, created.campaign.id) == {treated.id: datetime(2025, 1, 2, 9, 30)}


def test_cells_a_spreadsheet_would_run_are_escaped(db):
    created = stored(db, ["=HYPERLINK(\"http://x\")", "+33-1", "@SUM(A1)", "-2+3", "plain"], share=0.2,
                     name="=cmd|' /C calc'!A0")

    rows = list(csv.reader(io.StringIO(contact_list_csv(db, created.campaign).decode("utf-8-sig"))))

    cells = [cell for row in rows[1:] for cell in row]
    assert not any(cell.startswith(("=", "+", "-", "@")) for cell in cells)
    assert "'=cmd|' /C calc'!A0" in cells


def test_flat_outcomes_are_the_labels_of_the_members_records_of_the_campaigns_date(db):
    march = datetime(2024, 3, 31)
    ingest_frame(db, _frame([("a", None), ("b", None), ("c", None)]), schema=SCHEMA, source_name="march.csv",
                 as_of=march)
    created = stored(db, ["a", "b", "c"], share=0.34, as_of=march)
    reader = FlatOutcomeReader(db, created.campaign.last_batch_id)
    as_of = created.campaign.as_of

    assert reader.outcomes(["a", "b", "c"], as_of, 30) == {"a": None, "b": None, "c": None}
    # April's export labels April, not March: it says nothing about the campaign's period
    ingest_frame(db, _frame([("a", "No"), ("b", "Yes"), ("c", "Yes")]), schema=SCHEMA, source_name="april.csv",
                 as_of=datetime(2024, 4, 30))
    assert reader.outcomes(["a", "b", "c"], as_of, 30) == {"a": None, "b": None, "c": None}
    # March's outcomes, delivered later for March
    ingest_frame(db, _frame([("a", "Yes"), ("b", "No")]), schema=SCHEMA, source_name="march-outcomes.csv",
                 as_of=march)

    assert reader.outcomes(["a", "b", "c"], as_of, 30) == {"a": 1, "b": 0, "c": None}
    assert reader.churn_days(["a", "b", "c"], as_of, 30) == {"a": 30.0}


def _frame(rows: list[tuple[str, str | None]]):
    import pandas as pd

    data = {"id": [r[0] for r in rows], "spend": [10.0 + i for i in range(len(rows))]}
    if any(label is not None for _, label in rows):
        data["Churn"] = [label for _, label in rows]
    return pd.DataFrame(data)
