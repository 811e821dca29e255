"""Campaigns end to end: create one from the champion's flagged clients, report on it.

The command line and the bot call these functions, so both create the same campaign from
the same options and show the same report; the bench drives the same functions on
simulated clients.  The maths lives in the pure modules beside this one (assignment,
stats, analysis, segment); this module reads and writes the store.

Creating a campaign:

1. score every active client with the champion (``Scorer.active_scores``);
2. keep the flagged ones (probability >= the threshold), those the segment selects, riskiest
   first, capped at ``top``;
3. explain each member's score (the reasons on the contact list);
4. in one transaction: store the campaign, assign the arms (a hash of the campaign's id, its
   seed and each client, stratified by risk band) and store every member;
5. state the power of the design: what drop in churn it can detect, and whether it can
   detect the effect the settings assume.

The campaign records the as-of date of its scores and the churn horizon
(``CHURNGUARD_CHURN_HORIZON_DAYS``): a member's outcome is "left within the horizon after
that date", read through an ``OutcomeReader`` (storage/outcomes.py).
"""

from __future__ import annotations

import io
import math
import re
import unicodedata
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

import numpy as np

from model.campaigns.analysis import Economics, MemberOutcome, analyse
from model.campaigns.assignment import (
    HOLDOUT,
    MAX_HOLDOUT_SHARE,
    MIN_HOLDOUT_SHARE,
    TREATMENT,
    assign,
    campaign_key,
)
from model.campaigns.segment import Segment, check, example_for, parse_segment
from model.campaigns.stats import power_plan
from model.reasons import reason_text
from model.rules import risk_bands
from model.scoring import Scorer
from model.sources import EVENTS as EVENT_ROWS
from storage.campaign_tables import Campaign
from storage.campaigns import (
    NewMember,
    contacted_members,
    create_campaign,
    get_campaign,
    list_campaigns,
    members,
    newest_batch_id,
)
from storage.db import Database
from storage.errors import UserError
from storage.outcomes import EventOutcomeReader, FlatOutcomeReader, OutcomeReader
from storage.tables import utcnow

DEFAULT_HOLDOUT = 0.2
MAX_TOP = 1_000_000
MAX_NAME = 100
EVENTS, CLIENTS = "events", "clients"
_SHARE = re.compile(r"^\s*(?P<number>\d+(?:[.,]\d+)?|[.,]\d+)\s*(?P<percent>%?)\s*$")


# --------------------------------------------------------------------------------------------
# Options
# --------------------------------------------------------------------------------------------

def parse_share(text: object) -> float:
    """A holdout share: ``0.2``, ``20%`` or ``20 %``; refused outside 1 %..90 %."""
    raw = str(text if text is not None else "").strip()
    match = _SHARE.match(raw)
    if match is None:
        raise UserError(f"the holdout share must be a number such as 0.2 or 20%, got {raw[:40]!r}", holdout=raw[:40])
    value = float(match.group("number").replace(",", "."))
    if match.group("percent"):
        value /= 100
    elif value >= 1:
        raise UserError(f"the holdout share {raw!r} is not a share: write 0.2 or 20% for a fifth of the clients",
                        holdout=raw)
    if not MIN_HOLDOUT_SHARE <= value <= MAX_HOLDOUT_SHARE:
        raise UserError(f"the holdout share must be between {MIN_HOLDOUT_SHARE:.0%} and {MAX_HOLDOUT_SHARE:.0%}, "
                        f"got {value:.1%}: without a holdout nothing can be measured", holdout=value)
    return value


def clean_name(name: object) -> str | None:
    """The campaign's name without control characters; None when empty (a default is used)."""
    if name is None:
        return None
    text = "".join(ch for ch in str(name) if unicodedata.category(ch) not in ("Cc", "Cf", "Cs")).strip()
    if not text:
        return None
    if len(text) > MAX_NAME:
        raise UserError(f"the campaign name is {len(text)} characters long; at most {MAX_NAME}", name=text[:40])
    return text


def check_top(top: object) -> int | None:
    if top is None:
        return None
    if isinstance(top, bool) or not isinstance(top, int) or not 1 <= top <= MAX_TOP:
        raise UserError(f"--top must be a whole number from 1 to {MAX_TOP:,}, got {top!r}", top=str(top))
    return top


@dataclass(frozen=True)
class CampaignOptions:
    """What an admin chooses (CLI flags, /campaign arguments)."""

    name: str | None = None
    segment: str | None = None
    top: int | None = None
    holdout: float = DEFAULT_HOLDOUT
    seed: int | None = None
    as_of: str | None = None

    def checked(self) -> CampaignOptions:
        if self.seed is not None and (isinstance(self.seed, bool) or not 0 <= int(self.seed) < 2**63):
            raise UserError(f"the seed must be a whole number >= 0, got {self.seed!r}", seed=str(self.seed))
        holdout = self.holdout if isinstance(self.holdout, float) and MIN_HOLDOUT_SHARE <= self.holdout <= \
            MAX_HOLDOUT_SHARE else parse_share(self.holdout)
        return CampaignOptions(clean_name(self.name), self.segment, check_top(self.top), holdout, self.seed,
                               self.as_of)


# --------------------------------------------------------------------------------------------
# Selection (who is eligible) and creation
# --------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class Candidate:
    """A flagged client that a campaign may take, with what the contact list shows about it."""

    client_id: str
    probability: float
    risk_band: str
    reasons: tuple[str, ...] = ()


@dataclass(frozen=True)
class Selection:
    """The ranked candidates and how they were chosen."""

    candidates: list[Candidate]
    model_version: str
    threshold: float
    as_of: datetime
    source: str  # CLIENTS | EVENTS
    active: int
    flagged: int
    in_segment: int
    segment: str | None
    top: int | None


def select_candidates(scorer: Scorer, options: CampaignOptions, *, reasons: int = 3) -> Selection:
    """The champion's flagged clients that the segment selects, riskiest first, capped at ``top``."""
    scores = scorer.active_scores(as_of=options.as_of)
    segment: Segment | None = parse_segment(options.segment, example=example_for(scores.frame))
    probabilities = scores.probabilities
    flagged = probabilities >= scores.threshold
    chosen = flagged.copy()
    if segment is not None:
        if len(scores.frame):
            check(segment, scores.frame, what="the scored clients")
        chosen &= segment.mask(scores.frame)
    rows = np.flatnonzero(chosen)
    if not len(rows):
        where = f" that match {segment}" if segment is not None else ""
        raise UserError(f"no flagged client{where}: of {len(probabilities):,} active clients, {int(flagged.sum()):,} "
                        f"are flagged (churn risk >= {scores.threshold:.1%}); nothing was stored",
                        flagged=int(flagged.sum()), active=len(probabilities))
    # Riskiest first; equal probabilities by id, so the ranking is the same on every run.
    order = rows[np.lexsort((scores.ids[rows].astype(str), -probabilities[rows]))]
    if options.top is not None:
        order = order[:options.top]
    bands = risk_bands(probabilities[order], scores.threshold)
    explained = scorer.explain_active(scores, [int(i) for i in order], reasons=reasons)
    candidates = [
        Candidate(result.client_id, float(probabilities[i]), str(band),
                  tuple(reason_text(item) for item in result.reasons))
        for i, band, result in zip(order, bands, explained, strict=True)
    ]
    source = EVENTS if scores.source.kind == EVENT_ROWS else CLIENTS
    moment = scores.as_of if scores.as_of is not None else utcnow().replace(microsecond=0)
    return Selection(candidates, scores.serving.version, scores.threshold, moment, source, len(probabilities),
                     int(flagged.sum()), int(chosen.sum()), None if segment is None else segment.text,
                     options.top)


def plan_members(candidates: Sequence[Candidate], *, campaign_id: int, seed: int, share: float) -> list[NewMember]:
    """The members of a campaign: each candidate's rank (input order), arm and draw (pure)."""
    arms, draws = assign([c.client_id for c in candidates], [c.risk_band for c in candidates],
                         key=campaign_key(campaign_id, seed), share=share)
    return [NewMember(c.client_id, arm, c.risk_band, c.probability, rank, draw, c.reasons)
            for rank, (c, arm, draw) in enumerate(zip(candidates, arms, draws, strict=True), start=1)]


def expected_counts(candidates: Sequence[Candidate], share: float) -> tuple[int, int]:
    """(treated, held out) of a stratified assignment of these candidates (it does not depend
    on the draws: every band holds out round(share x size))."""
    from model.campaigns.assignment import held_out_count

    sizes: dict[str, int] = {}
    for candidate in candidates:
        sizes[candidate.risk_band] = sizes.get(candidate.risk_band, 0) + 1
    held = sum(held_out_count(size, share) for size in sizes.values())
    return len(candidates) - held, held


@dataclass
class CampaignCreated:
    """A stored campaign and what it can show."""

    campaign: Campaign
    selection: Selection
    bands: dict[str, dict[str, int]]
    plan: dict[str, Any]

    def to_dict(self) -> dict[str, Any]:
        campaign = self.campaign
        return {
            **campaign_summary(campaign),
            "active_clients": self.selection.active,
            "flagged_clients": self.selection.flagged,
            "in_segment": self.selection.in_segment,
            "bands": self.bands,
            "power": self.plan,
        }

    def to_text(self, next_steps: Sequence[str] = ()) -> str:
        campaign, selection = self.campaign, self.selection
        lines = [f"Campaign {campaign.id} \u201c{campaign.name}\u201d created from model {campaign.model_version}'s "
                 f"flagged clients (scores as of {campaign.as_of:%Y-%m-%d %H:%M} UTC; a member's outcome is whether "
                 f"it leaves within {campaign.horizon_days} days after that, due "
                 f"{campaign.as_of + timedelta(days=campaign.horizon_days):%Y-%m-%d})."]
        chosen = f"{selection.flagged:,} of {selection.active:,} active clients are flagged"
        if selection.segment:
            chosen += f"; {selection.in_segment:,} of them match the segment {selection.segment}"
        if selection.top is not None and selection.top < selection.in_segment:
            chosen += f"; the riskiest {selection.top:,} are taken"
        lines.append(chosen + ".")
        lines.append(f"Members: {campaign.treatment + campaign.holdout:,}. Treatment {campaign.treatment:,} (contact "
                     f"them), holdout {campaign.holdout:,} ({campaign.holdout_share:.0%}, do not contact: they show "
                     "what happens without a call).")
        for band, counts in self.bands.items():
            lines.append(f"  {band} risk: {counts[TREATMENT]:,} treated, {counts[HOLDOUT]:,} held out")
        lines.append(f"Power: {self.plan['statement']}")
        if self.plan.get("warning"):
            lines.append(f"Warning: {self.plan['warning']}")
        lines += list(next_steps)
        return "\n".join(lines)


def new_campaign(db: Database, scorer: Scorer, options: CampaignOptions, *, economics: Economics,
                 horizon_days: int, default_seed: int, actor: str = "system") -> CampaignCreated:
    """Create and store a campaign from the champion's flagged clients (see the module docstring)."""
    options = options.checked()
    selection = select_candidates(scorer, options)
    return store_campaign(db, selection, options, economics=economics, horizon_days=horizon_days,
                          default_seed=default_seed, actor=actor)


def store_campaign(db: Database, selection: Selection, options: CampaignOptions, *, economics: Economics,
                   horizon_days: int, default_seed: int, actor: str = "system") -> CampaignCreated:
    """Store a campaign of the selected candidates, assigned and with its power plan."""
    candidates = selection.candidates
    seed = int(options.seed if options.seed is not None else default_seed)
    treated, held = expected_counts(candidates, options.holdout)
    if not held or not treated:
        raise UserError(f"{len(candidates):,} client(s) with a {options.holdout:.0%} holdout leave "
                        f"{'nobody to hold out' if not held else 'nobody to contact'}: a campaign needs both groups; "
                        "take more clients (a wider segment, a larger top) or change the holdout share; nothing "
                        "was stored", members=len(candidates), holdout=options.holdout)
    baseline = float(np.mean([c.probability for c in candidates])) if candidates else 0.0
    plan = power_plan(treated=treated, holdout=held, baseline=baseline,
                      offer_success_rate=economics.offer_success_rate).as_dict()
    campaign = Campaign(
        name=options.name or "", created_by=actor[:64], as_of=selection.as_of, horizon_days=int(horizon_days),
        source=selection.source, last_batch_id=newest_batch_id(db), model_version=selection.model_version,
        threshold=float(selection.threshold), segment=selection.segment, top_n=selection.top,
        holdout_share=float(options.holdout), seed=seed, treatment=treated, holdout=held, plan=plan)

    def members_of(campaign_id: int) -> list[NewMember]:
        if not campaign.name:
            campaign.name = f"Campaign {campaign_id}"
        return plan_members(candidates, campaign_id=campaign_id, seed=seed, share=options.holdout)

    stored, rows = create_campaign(db, campaign, members_of)
    bands: dict[str, dict[str, int]] = {}
    for row in rows:
        bands.setdefault(row.risk_band, {TREATMENT: 0, HOLDOUT: 0})[row.arm] += 1
    ordered: dict[str, dict[str, int]] = {band: bands[band] for band in ("high", "medium", "low") if band in bands}
    return CampaignCreated(stored, selection, ordered, plan)


def campaign_summary(campaign: Campaign) -> dict[str, Any]:
    """The campaign as JSON values (``campaign list``, the head of every report)."""
    return {
        "campaign_id": campaign.id,
        "name": campaign.name,
        "created_at": f"{campaign.created_at:%Y-%m-%dT%H:%M:%S}",
        "created_by": campaign.created_by,
        "as_of": f"{campaign.as_of:%Y-%m-%dT%H:%M:%S}",
        "horizon_days": campaign.horizon_days,
        "outcomes_due": f"{campaign.as_of + timedelta(days=campaign.horizon_days):%Y-%m-%dT%H:%M:%S}",
        "source": campaign.source,
        "model_version": campaign.model_version,
        "threshold": campaign.threshold,
        "segment": campaign.segment,
        "top": campaign.top_n,
        "holdout_share": campaign.holdout_share,
        "seed": campaign.seed,
        "members": campaign.treatment + campaign.holdout,
        "treatment_clients": campaign.treatment,
        "holdout_clients": campaign.holdout,
    }


def campaigns_text(campaigns: Sequence[Campaign]) -> str:
    if not campaigns:
        return "No campaigns yet."
    lines = ["Campaigns, newest first:"]
    for campaign in campaigns:
        due = campaign.as_of + timedelta(days=campaign.horizon_days)
        lines.append(f"  {campaign.id}. \u201c{campaign.name}\u201d, {campaign.created_at:%Y-%m-%d}: "
                     f"{campaign.treatment:,} treated, {campaign.holdout:,} held out; model {campaign.model_version}; "
                     f"outcomes due {due:%Y-%m-%d}" + (f"; segment {campaign.segment}" if campaign.segment else ""))
    return "\n".join(lines)


def all_campaigns(db: Database) -> list[Campaign]:
    return list_campaigns(db)


# --------------------------------------------------------------------------------------------
# Report
# --------------------------------------------------------------------------------------------

def reader_for(db: Database, campaign: Campaign) -> OutcomeReader:
    """Where the campaign's outcomes come from: the event history for a campaign scored by an
    event model, later labelled client batches otherwise."""
    if campaign.source == EVENTS:
        return EventOutcomeReader(db)
    return FlatOutcomeReader(db, campaign.last_batch_id)


@dataclass
class CampaignReport:
    """A campaign's outcomes so far (``figures``: model/campaigns/analysis.py) and its chart data."""

    campaign: Campaign
    figures: dict[str, Any]
    timeline: dict[str, list[float]] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {**campaign_summary(self.campaign), **self.figures, "power_at_creation": self.campaign.plan,
                "timeline": self.timeline}

    def to_text(self) -> str:
        return report_text(self)

    def chart(self) -> bytes | None:
        """PNG of churn over time by group; None before any outcome is known."""
        if not self.figures["known"] or not self.timeline.get("days"):
            return None
        return churn_chart(self)


def campaign_report(db: Database, campaign_id: int, *, economics: Economics, reader: OutcomeReader | None = None,
                    timeline: bool = True) -> CampaignReport:
    """The campaign's figures from its members' outcomes as far as they are known."""
    campaign = get_campaign(db, campaign_id)
    assert campaign.id is not None
    roster = members(db, campaign.id)
    reader = reader or reader_for(db, campaign)
    ids = [member.client_id for member in roster]
    outcomes = reader.outcomes(ids, campaign.as_of, campaign.horizon_days)
    reached = contacted_members(db, campaign.id)
    people = [MemberOutcome(m.client_id, m.arm, m.risk_band, outcomes.get(m.client_id), m.id in reached)
              for m in roster]
    figures = analyse(people, economics, contact_log=bool(reached))
    report = CampaignReport(campaign, figures)
    if timeline and figures["known"]:
        known = [m for m in people if m.outcome is not None]
        days = reader.churn_days([m.client_id for m in known], campaign.as_of, campaign.horizon_days)
        report.timeline = churn_timeline(known, days, campaign.horizon_days)
    return report


def churn_timeline(known: Sequence[MemberOutcome], days: dict[str, float], horizon_days: int
                   ) -> dict[str, list[float]]:
    """Cumulative churn rate of each arm (among members with a known outcome) at each day a
    churn was seen, from 0 to the horizon."""
    points = sorted({0.0, *(min(max(d, 0.0), float(horizon_days)) for d in days.values()), float(horizon_days)})
    result: dict[str, list[float]] = {"days": [round(p, 3) for p in points]}
    for arm in (TREATMENT, HOLDOUT):
        group = [m for m in known if m.arm == arm]
        seen = sorted(min(max(days[m.client_id], 0.0), float(horizon_days)) for m in group
                      if m.outcome == 1 and m.client_id in days)
        final = sum(1 for m in group if m.outcome == 1)
        rates = []
        for point in points:
            churned = sum(1 for d in seen if d <= point)
            if point >= horizon_days:
                churned = final  # every known churner by the horizon, even one without a date
            rates.append(round(churned / len(group), 6) if group else 0.0)
        result[arm] = rates
    return result


def _pct(value: Any, digits: int = 1) -> str:
    return "n/a" if value is None else f"{100 * float(value):.{digits}f} %"


def _pts(value: Any) -> str:
    return "n/a" if value is None else f"{100 * float(value):.1f}"


def _money(value: Any) -> str:
    return "n/a" if value is None else f"{float(value):,.0f}"


def _count(value: Any) -> str:
    return "n/a" if value is None else f"{float(value):,.0f}"


def _arm_line(name: str, arm: dict[str, Any]) -> str:
    if not arm["clients"]:
        return f"{name}: nobody (too few clients in this band to hold any out)" if name == "holdout" else \
            f"{name}: nobody"
    if not arm["known"]:
        return f"{name}: no outcome known yet ({arm['clients']:,} clients)"
    return f"{name} {_pct(arm['rate'])} ({arm['churned']:,} of {arm['known']:,} left)"


def _uplift_line(figures: dict[str, Any]) -> str:
    uplift = figures["uplift"]
    if uplift["estimate"] is None:
        return "Uplift: not known yet."
    if figures["significant"]:
        verdict = ("significant: fewer clients left with contact" if uplift["estimate"] > 0 else
                   "significant: more clients left with contact")
    else:
        verdict = "not significant: the interval includes no effect"
    return (f"Uplift: {100 * uplift['estimate']:+.1f} points (95 % interval {100 * uplift['low']:+.1f} to "
            f"{100 * uplift['high']:+.1f}; positive means fewer clients left with contact) — {verdict}.")


def report_text(report: CampaignReport) -> str:
    """The report in words, for the CLI and the chat (no commands, no paths)."""
    campaign, figures = report.campaign, report.figures
    due = campaign.as_of + timedelta(days=campaign.horizon_days)
    lines = [f"Campaign {campaign.id} \u201c{campaign.name}\u201d: model {campaign.model_version}, scores as of "
             f"{campaign.as_of:%Y-%m-%d %H:%M} UTC, outcome = left within {campaign.horizon_days} days (due "
             f"{due:%Y-%m-%d})."]
    treatment, holdout = figures["treatment"], figures["holdout"]
    members_total = treatment["clients"] + holdout["clients"]
    if figures["pending"]:
        lines.append(f"Outcomes: {figures['known']:,} of {members_total:,} known, {figures['pending']:,} still pending.")
    else:
        lines.append(f"Outcomes: all {members_total:,} known.")
    if not figures["known"]:
        lines.append("Nothing to compare yet: outcomes arrive with a later labelled export or the event history "
                     f"once the horizon has passed ({due:%Y-%m-%d}).")
        lines.append(f"Power at creation: {campaign.plan.get('statement', 'n/a')}")
        return "\n".join(lines)
    lines.append(f"Churn: {_arm_line('treatment', treatment)} vs {_arm_line('holdout', holdout)}.")
    lines.append(_uplift_line(figures))
    saved = figures["saved"]
    if saved["estimate"] is not None:
        lines.append(f"Clients saved: {_count(saved['estimate'])} ({_count(saved['low'])} to {_count(saved['high'])}).")
    contacts = figures["contacts"]
    rate = contacts["rate"]
    lines.append(f"Contacts: {contacts['contacted']:,} of {contacts['treated']:,} treated clients "
                 f"({_pct(rate, 0)})" + (" — no contact logged yet, so all are counted as contacted for the cost"
                                        if contacts["source"] != "contact log" else ", from the contact log") + ".")
    roi, benefit = figures["roi"], figures["benefit"]
    if benefit["estimate"] is not None:
        money = (f"Cost {_money(figures['cost'])}, benefit {_money(benefit['estimate'])} ({_money(benefit['low'])} to "
                 f"{_money(benefit['high'])})")
        if roi["estimate"] is not None:
            money += f", ROI {roi['estimate']:.2f} ({roi['low']:.2f} to {roi['high']:.2f})"
        lines.append(money + ".")
    offer = figures["offer_success_rate"]
    if offer["measured"] is not None:
        measured = offer["measured"]
        lines.append(f"Offer success rate: measured {_pct(measured['estimate'], 0)} ({_pct(measured['low'], 0)} to "
                     f"{_pct(measured['high'], 0)}) of contacted would-be churners kept; the setting "
                     f"CHURNGUARD_OFFER_SUCCESS_RATE assumes {_pct(offer['setting'], 0)}."
                     + (f" Note: {offer['note']}." if offer.get("note") else ""))
    elif offer.get("note"):
        lines.append(f"Offer success rate: not measurable ({offer['note']}).")
    bands = figures.get("bands") or {}
    if bands:
        lines.append("By risk band:")
        for band, part in bands.items():
            uplift = part["uplift"]
            text = f"  {band}: {_arm_line('treatment', part['treatment'])}, {_arm_line('holdout', part['holdout'])}"
            if uplift["estimate"] is not None:
                text += (f"; uplift {_pts(uplift['estimate'])} points ({_pts(uplift['low'])} to {_pts(uplift['high'])})"
                         + (", significant" if part["significant"] else ""))
            lines.append(text)
    if figures["pending"]:
        lines.append("These figures use the known outcomes only; they will move as the pending ones arrive.")
    return "\n".join(lines)


def churn_chart(report: CampaignReport) -> bytes:
    """Cumulative churn by group over the days after the as-of date (a bare Figure, as the
    model's contribution chart, so concurrent handlers share no pyplot state)."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    timeline, figures, campaign = report.timeline, report.figures, report.campaign
    figure = Figure(figsize=(7, 4.2), dpi=100)
    FigureCanvasAgg(figure)
    axes = figure.add_subplot(1, 1, 1)
    for arm, colour in ((TREATMENT, "#2e86c1"), (HOLDOUT, "#c0392b")):
        group = figures[arm]
        axes.step(timeline["days"], [100 * r for r in timeline[arm]], where="post", color=colour, linewidth=2,
                  label=f"{arm} ({group['known']:,} known, {_pct(group['rate'])} left)")
    axes.axvline(campaign.horizon_days, color="#777777", linestyle=":", linewidth=1)
    axes.set_xlabel(f"days after {campaign.as_of:%Y-%m-%d} (horizon {campaign.horizon_days} days)")
    axes.set_ylabel("clients who left (%)")
    uplift = figures["uplift"]
    subtitle = "" if uplift["estimate"] is None else (
        f"uplift {_pts(uplift['estimate'])} pts ({_pts(uplift['low'])} to {_pts(uplift['high'])})")
    axes.set_title(f"Campaign {campaign.id}: churn by group" + (f" — {subtitle}" if subtitle else ""), fontsize=10)
    axes.set_ylim(bottom=0)
    axes.grid(alpha=0.3)
    axes.legend(loc="best", fontsize=8)
    figure.tight_layout()
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png")
    return buffer.getvalue()


def store_example(db: Database, rows: int = 500) -> str | None:
    """A segment made of this store's own columns and values, for help texts (the newest
    client records, or the event clients' attributes); None for an empty store."""
    import pandas as pd
    from sqlmodel import col, select

    from storage.events.tables import EventClient
    from storage.schema import remembered_schema
    from storage.tables import ClientRecord

    with db.read_session() as session:
        records = session.exec(select(ClientRecord.data).where(col(ClientRecord.is_latest).is_(True))
                               .order_by(col(ClientRecord.id).desc()).limit(rows)).all()
        schema = remembered_schema(session)
        if not records:
            records = session.exec(select(EventClient.attributes).order_by(col(EventClient.id).desc())
                                   .limit(rows)).all()
    if not records:
        return None
    frame = pd.DataFrame.from_records([dict(r or {}) for r in records])
    for column in frame.columns:
        numbers = pd.to_numeric(frame[column], errors="coerce")
        if numbers.notna().sum() == frame[column].notna().sum():
            frame[column] = numbers
    skip = [] if schema is None else [schema.id_column, schema.label_column, *schema.ignore_columns]
    return example_for(frame, skip=skip)


def economics_of(settings: object) -> Economics:
    """The retention team's numbers from ``churnguard.Settings`` (or any object with the fields)."""
    values = [float(getattr(settings, name)) for name in ("contact_cost", "retained_value", "offer_success_rate")]
    if not all(math.isfinite(v) for v in values):
        raise UserError("the contact cost, retained value and offer success rate settings must be numbers")
    return Economics(*values)


def campaign_or_refuse(db: Database, campaign_id: object) -> Campaign:
    """The campaign named by a user-typed id ("3", "#3"); a clear refusal otherwise."""
    text = str(campaign_id if campaign_id is not None else "").strip().lstrip("#")
    if not text.isdigit() or len(text) > 9:
        raise UserError(f"a campaign is named by its number, e.g. 3; got {str(campaign_id)[:40]!r}",
                        campaign_id=str(campaign_id)[:40])
    return get_campaign(db, int(text))


Progress = Callable[[str], None]

__all__ = [
    "CLIENTS",
    "DEFAULT_HOLDOUT",
    "EVENTS",
    "CampaignCreated",
    "CampaignOptions",
    "CampaignReport",
    "Candidate",
    "Selection",
    "all_campaigns",
    "campaign_or_refuse",
    "campaign_report",
    "campaign_summary",
    "campaigns_text",
    "churn_chart",
    "churn_timeline",
    "economics_of",
    "expected_counts",
    "new_campaign",
    "parse_share",
    "plan_members",
    "reader_for",
    "report_text",
    "select_candidates",
    "store_campaign",
    "store_example",
]
