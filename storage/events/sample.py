"""A reproducible, realistic CRM event sample for the tests and the demo.

A few hundred B2B-software clients over three years (2023-01-01 to 2026-01-01).  Each
client has a latent engagement that drifts month by month; usage events (login, report,
export with a size in MB, invite) follow it, dissatisfied clients open more support
tickets, engaged ones buy extras.  At each monthly renewal a client churns with a
probability that rises when engagement falls and tickets pile up, so behaviour in the
months before a churn differs from a loyal client's, as it does in real CRMs.

The files use their own column names (``customer_id``, ``occurred_at``, ...), declared in
``mapping.toml``, so that the demo exercises the column mapping.  Only about four in five
churners carry a ``cancelled_on`` date; the others churn by their last subscription
ending, the other rule ChurnGuard applies.

Regenerate the shipped copy with ``python -m storage.events.sample storage/sample_data/events``.
"""

from __future__ import annotations

import argparse
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

SAMPLE_DIR = Path(__file__).resolve().parent.parent / "sample_data" / "events"
SAMPLE_SEED = 20240601
SAMPLE_CLIENTS = 300
START = pd.Timestamp("2023-01-01")
END = pd.Timestamp("2026-01-01")

KIND_FILES = {
    "clients": "clients.csv",
    "subscriptions": "subscriptions.csv",
    "purchases": "purchases.csv",
    "tickets": "tickets.csv",
    "usage": "usage.csv",
}

MAPPING_TOML = """\
# Column mapping of the ChurnGuard event sample: canonical field = "column in the file".
[clients]
client_id = "customer_id"
signup_date = "signed_up"
churn_date = "cancelled_on"

[subscriptions]
client_id = "customer_id"
start = "started"
end = "ended"
plan = "plan"
monthly_amount = "mrr"

[purchases]
client_id = "customer_id"
timestamp = "purchased_at"
amount = "amount"
product = "category"

[tickets]
client_id = "customer_id"
opened_at = "opened"
closed_at = "closed"
category = "topic"
satisfaction = "csat"

[usage]
client_id = "customer_id"
timestamp = "occurred_at"
event_type = "event"
value = "value"
"""

PLANS = {"basic": 19.0, "standard": 49.0, "premium": 99.0}
ADDON = ("extra_seats", 15.0)
# Events per day at engagement 1.
USAGE_RATES = {"login": 0.08, "report": 0.03, "export": 0.012, "invite": 0.004}
TOPICS = ("billing", "bug", "how-to", "outage")
CATEGORIES = ("training", "storage_pack", "consulting")


@dataclass
class _Client:
    client_id: str
    signup: pd.Timestamp
    region: str
    channel: str
    company_size: int
    birth_date: str


def _seconds(rng: np.random.Generator, n: int) -> np.ndarray:
    # Office hours mostly: 7:00-20:00 UTC.
    return rng.integers(7 * 3600, 20 * 3600, size=n)


def generate(clients: int = SAMPLE_CLIENTS, seed: int = SAMPLE_SEED) -> dict[str, pd.DataFrame]:
    """The five tables as DataFrames (text timestamps, the sample's own column names)."""
    rng = np.random.default_rng(seed)
    days_total = (END - START).days
    rows: dict[str, list[dict[str, object]]] = {kind: [] for kind in KIND_FILES if kind != "usage"}
    usage: list[tuple[str, str, np.ndarray, np.ndarray]] = []
    for number in range(1, clients + 1):
        # A third of the base exists from the first month; the rest joins over two years.
        offset = int(rng.integers(0, 28)) if rng.random() < 0.35 else int(rng.integers(28, days_total - 365))
        birth = START - pd.Timedelta(days=int(rng.integers(22 * 365, 65 * 365)))
        client = _Client(
            client_id=f"C{number:05d}",
            signup=START + pd.Timedelta(days=offset),
            region=str(rng.choice(["north", "south", "east", "west"], p=[0.3, 0.3, 0.25, 0.15])),
            channel=str(rng.choice(["web", "partner", "sales"], p=[0.5, 0.3, 0.2])),
            company_size=int(np.clip(rng.lognormal(3.0, 1.0), 1, 2000)),
            birth_date=f"{birth:%Y-%m-%d}",
        )
        _simulate(client, rng, rows, usage)
    frames = {kind: pd.DataFrame(items) for kind, items in rows.items()}
    sizes = [len(seconds) for _, _, seconds, _ in usage]
    stamps = START + pd.to_timedelta(np.concatenate([seconds for _, _, seconds, _ in usage]), unit="s")
    frames["usage"] = pd.DataFrame({
        "customer_id": np.repeat([cid for cid, _, _, _ in usage], sizes),
        "occurred_at": stamps.strftime("%Y-%m-%d %H:%M:%S"),
        "event": np.repeat([event for _, event, _, _ in usage], sizes),
        "value": np.concatenate([values for _, _, _, values in usage]),
    })
    frames["usage"] = frames["usage"].sort_values(["customer_id", "occurred_at"], kind="stable")
    frames["purchases"] = frames["purchases"].sort_values(["customer_id", "purchased_at"], kind="stable")
    frames["tickets"] = frames["tickets"].sort_values(["customer_id", "opened"], kind="stable")
    return {kind: frame.reset_index(drop=True) for kind, frame in frames.items()}


def _simulate(client: _Client, rng: np.random.Generator, rows: dict[str, list[dict[str, object]]],
              usage: list[tuple[str, str, np.ndarray, np.ndarray]]) -> None:
    engagement = float(rng.lognormal(0.0, 0.35))
    drift = float(rng.normal(-0.01, 0.05))  # some clients slowly lose interest
    satisfaction = base_satisfaction = float(rng.normal(0.3, 0.8))
    size_factor = 1.0 + np.log1p(client.company_size) / 4
    plan = "premium" if engagement * size_factor > 2.2 else ("standard" if engagement * size_factor > 1.3 else "basic")
    spell_start = client.signup
    addon_start: pd.Timestamp | None = None
    history: list[float] = [engagement]
    churn: pd.Timestamp | None = None
    month = 0
    while True:
        period_start = client.signup + pd.DateOffset(months=month)
        period_end = client.signup + pd.DateOffset(months=month + 1)
        if period_start >= END:
            break
        stop = min(period_end, END)
        days = (stop - period_start).days
        # Usage follows engagement; a soured client also uses the product less.
        for event, rate in USAGE_RATES.items():
            counts = rng.poisson(rate * engagement * size_factor, size=days)
            total = int(counts.sum())
            if not total:
                continue
            day_index = np.repeat(np.arange(days), counts)
            secs = _seconds(rng, total)
            values = np.round(rng.lognormal(1.5, 0.8, size=total), 2) if event == "export" else np.full(total, np.nan)
            start_seconds = int((period_start - START) // pd.Timedelta(seconds=1))
            usage.append((client.client_id, event, start_seconds + day_index * 86_400 + secs, values))
        unhappy = 1 / (1 + np.exp(2.0 * satisfaction))
        tickets = int(rng.poisson(0.15 + 1.2 * unhappy))
        for _ in range(tickets):
            opened = period_start + pd.Timedelta(days=int(rng.integers(0, days)), seconds=int(_seconds(rng, 1)[0]))
            closed = opened + pd.Timedelta(hours=float(rng.exponential(60)))
            topic = str(rng.choice(TOPICS, p=[0.3, 0.35, 0.25, 0.1]))
            csat = int(np.clip(round(4 + satisfaction + rng.normal(0, 0.8)), 1, 5)) if rng.random() < 0.6 else None
            rows["tickets"].append({"customer_id": client.client_id, "opened": f"{opened:%Y-%m-%d %H:%M:%S}",
                                    "closed": f"{closed:%Y-%m-%d %H:%M:%S}" if closed < END else None,
                                    "topic": topic, "csat": csat})
            satisfaction -= 0.1 if topic in ("bug", "outage") else 0.03
        if rng.random() < 0.04 * engagement:
            day = period_start + pd.Timedelta(days=int(rng.integers(0, days)), seconds=int(_seconds(rng, 1)[0]))
            category = str(rng.choice(CATEGORIES))
            amount = round(float(rng.lognormal(4.5 if category == "consulting" else 3.3, 0.4)), 2)
            rows["purchases"].append({"customer_id": client.client_id, "purchased_at": f"{day:%Y-%m-%d %H:%M:%S}",
                                      "amount": amount, "category": category})
        if period_end >= END:
            break
        # Renewal: churn risk rises as engagement falls, tickets pile up and satisfaction sours.
        trend = np.log(engagement / history[-3]) if len(history) >= 3 else 0.0
        logit = -4.6 - 3.0 * trend + 0.35 * tickets - 0.7 * satisfaction - 0.9 * np.log(engagement)
        if plan == "basic":
            logit += 0.3
        if rng.random() < 1 / (1 + np.exp(-logit)):
            churn = period_end
            break
        # Plan changes follow engagement; each change closes a subscription spell.
        wanted = "premium" if engagement * size_factor > 2.6 else ("standard" if engagement * size_factor > 1.3
                                                                   else "basic")
        if wanted != plan and rng.random() < 0.3:
            _subscription(rows, client, spell_start, period_end, plan, PLANS[plan])
            plan, spell_start = wanted, period_end
        if addon_start is None and engagement > 1.4 and rng.random() < 0.05:
            addon_start = period_end
        engagement = float(np.clip(engagement * np.exp(rng.normal(drift, 0.18)), 0.05, 6.0))
        satisfaction = 0.92 * satisfaction + 0.08 * base_satisfaction + float(rng.normal(0.0, 0.15))
        history.append(engagement)
        month += 1
    _subscription(rows, client, spell_start, churn, plan, PLANS[plan])
    if addon_start is not None:
        _subscription(rows, client, addon_start, churn, ADDON[0], ADDON[1])
    cancelled = f"{churn:%Y-%m-%d}" if churn is not None and rng.random() < 0.8 else None
    rows["clients"].append({"customer_id": client.client_id, "signed_up": f"{client.signup:%Y-%m-%d}",
                            "cancelled_on": cancelled, "region": client.region, "channel": client.channel,
                            "company_size": client.company_size, "birth_date": client.birth_date})


def _subscription(rows: dict[str, list[dict[str, object]]], client: _Client, start: pd.Timestamp,
                  end: pd.Timestamp | None, plan: str, mrr: float) -> None:
    rows["subscriptions"].append({"customer_id": client.client_id, "started": f"{start:%Y-%m-%d}",
                                  "ended": None if end is None else f"{end:%Y-%m-%d}", "plan": plan, "mrr": mrr})


def write_sample(out_dir: Path, *, clients: int = SAMPLE_CLIENTS, seed: int = SAMPLE_SEED) -> dict[str, Path]:
    """Write the five CSV files and ``mapping.toml`` to ``out_dir``; same arguments, same bytes."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    paths: dict[str, Path] = {}
    for kind, frame in generate(clients, seed).items():
        path = out_dir / KIND_FILES[kind]
        frame.to_csv(path, index=False, lineterminator="\n")
        paths[kind] = path
    mapping = out_dir / "mapping.toml"
    mapping.write_text(MAPPING_TOML, encoding="utf-8")
    paths["mapping"] = mapping
    return paths


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Write the ChurnGuard CRM event sample.")
    parser.add_argument("out_dir", type=Path, nargs="?", default=SAMPLE_DIR)
    parser.add_argument("--clients", type=int, default=SAMPLE_CLIENTS)
    parser.add_argument("--seed", type=int, default=SAMPLE_SEED)
    args = parser.parse_args(argv)
    for kind, path in write_sample(args.out_dir, clients=args.clients, seed=args.seed).items():
        print(f"{kind}: {path} ({path.stat().st_size / 1024:.0f} KB)")
    return 0


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(main())


__all__ = ["KIND_FILES", "MAPPING_TOML", "SAMPLE_CLIENTS", "SAMPLE_DIR", "SAMPLE_SEED", "generate", "main",
           "write_sample"]
