"""Raw tables shaped like those of the churn simulator of *Fighting Churn with Data*.

The simulator (fight-churn's ``churnsim``) writes four PostgreSQL tables; exported with
``\\copy TABLE to FILE csv header`` they look like this, and so do the files written here:

* ``account.csv``: ``id,channel,date_of_birth,country`` (ids from 0, no signup date,
  country sometimes NULL = an empty field);
* ``subscription.csv``: ``id,account_id,product,start_date,end_date,mrr,quantity,units,
  bill_period_months,discount``: one row per monthly term, renewals back to back (the next
  start is the previous end); add-ons are extra rows over the same term, with a quantity
  and units; the last term of an account still running when the simulation ends ends
  after it;
* ``event.csv``: ``account_id,event_time,event_type_id,user_id,event_value``, grouped by
  account (the simulator copies one customer at a time), times to the second with a few
  fractional ones (``2020-01-03 14:22:05.25``, as PostgreSQL prints timestamp(6)), some
  exactly at midnight (the edges of day-aligned windows), user_id sometimes NULL and
  event_value NULL except for ad views;
* ``event_type.csv``: ``event_type_id,event_type_name``.

How it behaves (so that a model has something to learn): each account has an engagement
that drifts from month to month; usage follows it, while dislikes and unfriends grow as
it falls.  At each monthly renewal an account churns with a probability that rises as
its last month's likes and posts fall and its dislikes rise: 10-15 % of the accounts a month (a
gradient boosting model reaches a ROC-AUC near 0.8 on 28-day counts of 300 accounts).
New accounts join every month (``growth``).  Everything comes from one seeded generator:
the same arguments write the same bytes.
"""

from __future__ import annotations

import csv
import math
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from pathlib import Path

import numpy as np
import pandas as pd
from dateutil.relativedelta import relativedelta

EVENT_TYPES = ("post", "newfriend", "like", "adview", "dislike", "unfriend", "message", "reply")
# Monthly events of an account of engagement 1.0; dislikes and unfriends grow as engagement falls.
_RATES = np.array([5.0, 1.0, 16.0, 12.0, 2.0, 0.5, 6.0, 3.0])
_UNHAPPY = np.array([False, False, False, False, True, True, False, False])
_VALUED = np.array([False, False, False, True, False, False, False, False])  # adview: seconds watched
_PLANS = (("basic", 9.99), ("standard", 19.99), ("premium", 39.99))
_CHANNELS = ("appstore1", "appstore2", "web")
_COUNTRIES = ("US", "DE", "BR", "IN", "FR")
_EPOCH = datetime(1970, 1, 1)


@dataclass(frozen=True)
class SimulatorFiles:
    folder: Path
    account: Path
    subscription: Path
    event: Path
    event_type: Path
    start: date
    end: date
    accounts: int
    events: int


def write_simulator_tables(folder: Path, *, initial: int = 300, growth: float = 0.1, start: date = date(2020, 1, 1),
                           months: int = 5, activity: float = 1.0, seed: int = 20) -> SimulatorFiles:
    """Write the four raw tables into ``folder``; ``activity`` scales every event rate."""
    rng = np.random.default_rng(seed)
    end = start + relativedelta(months=months)
    folder.mkdir(parents=True, exist_ok=True)
    paths = {name: folder / f"{name}.csv" for name in ("account", "subscription", "event", "event_type")}
    account_rows: list[list[object]] = []
    subscription_rows: list[list[object]] = []
    next_account = 0
    next_subscription = 1
    events = 0
    active = 0
    parts: list[np.ndarray] = []
    for month in range(months):
        month_start = start + relativedelta(months=month)
        joining = initial if month == 0 else round(active * growth)
        for _ in range(joining):
            account = next_account
            next_account += 1
            days = (month_start + relativedelta(months=1) - month_start).days
            joined = month_start + timedelta(days=int(rng.integers(0, days)))
            birth = date(1950, 1, 1) + timedelta(days=int(rng.integers(0, 365 * 55)))
            country = "" if rng.random() < 0.1 else str(rng.choice(_COUNTRIES))
            account_rows.append([account, str(rng.choice(_CHANNELS)), birth.isoformat(), country])
            plan, price = _PLANS[int(rng.integers(0, len(_PLANS)))]
            discount = float(rng.choice([0.0, 0.0, 0.1, 0.25]))
            mrr = round(price * (1 - discount), 2)
            addon = rng.random() < 0.2
            users = int(rng.integers(1, 5))
            engagement = float(rng.lognormal(0.0, 0.6))
            term = 0
            churned = False
            while not churned:
                term_start = joined + relativedelta(months=term)
                term_end = joined + relativedelta(months=term + 1)
                subscription_rows.append([next_subscription, account, plan, term_start.isoformat(),
                                          term_end.isoformat(), mrr, "", "", 1, discount])
                next_subscription += 1
                if addon:
                    subscription_rows.append([next_subscription, account, "extra_storage",
                                              term_start.isoformat(), term_end.isoformat(), 4.99, 10.0, "GB", 1,
                                              0.0])
                    next_subscription += 1
                counts = _month_events(parts, rng, account, term_start, term_end, engagement, users,
                                       activity)
                events += int(counts.sum())
                if term_end > end:
                    break  # the simulation ends during this term: it runs on
                # Churn at renewal: more likely with few likes/posts and many dislikes last month.
                liked = (counts[0] + counts[2]) / max(activity, 1e-9)
                unhappy = counts[4] / max(activity, 1e-9)
                score = 2.5 - 2.0 * math.log1p(liked) + 1.0 * math.log1p(unhappy)
                churned = rng.random() < 1 / (1 + math.exp(-score))
                engagement *= float(rng.lognormal(-0.03, 0.2))
                term += 1
        active = _active_at(subscription_rows, start + relativedelta(months=month + 1))
    _write_events(paths["event"], parts)
    with open(paths["account"], "w", newline="", encoding="utf-8") as handle:
        out = csv.writer(handle, lineterminator="\n")
        out.writerow(["id", "channel", "date_of_birth", "country"])
        out.writerows(account_rows)
    with open(paths["subscription"], "w", newline="", encoding="utf-8") as handle:
        out = csv.writer(handle, lineterminator="\n")
        out.writerow(["id", "account_id", "product", "start_date", "end_date", "mrr", "quantity", "units",
                      "bill_period_months", "discount"])
        out.writerows(subscription_rows)
    with open(paths["event_type"], "w", newline="", encoding="utf-8") as handle:
        out = csv.writer(handle, lineterminator="\n")
        out.writerow(["event_type_id", "event_type_name"])
        out.writerows([[i, name] for i, name in enumerate(EVENT_TYPES)])
    return SimulatorFiles(folder, paths["account"], paths["subscription"], paths["event"], paths["event_type"],
                          start, end, next_account, events)


def _active_at(subscriptions: list[list[object]], moment: date) -> int:
    day = moment.isoformat()
    return len({row[1] for row in subscriptions if str(row[3]) <= day < str(row[4])})


def _month_events(out: list[np.ndarray], rng: np.random.Generator, account: int, begin: date, end: date,
                  engagement: float, users: int, activity: float) -> np.ndarray:
    """Draw one account's events of one month into ``out``; returns the count per event type."""
    rates = _RATES * activity * np.where(_UNHAPPY, 1.0 / max(engagement, 0.2), engagement)
    counts = rng.poisson(rates)
    total = int(counts.sum())
    if not total:
        return counts
    days = int((end - begin).days)
    start = int((datetime.combine(begin, datetime.min.time()) - _EPOCH).total_seconds())
    offsets = rng.integers(0, days * 86_400, total)
    midnight = rng.random(total) < 0.01  # exactly midnight: events on the windows' edges
    offsets[midnight] = rng.integers(0, days, int(midnight.sum())) * 86_400
    micros = np.where(rng.random(total) < 0.05, rng.integers(1, 1_000_000, total), 0)
    types = np.repeat(np.arange(len(counts)), counts)
    users_ = np.where(rng.random(total) < 0.1, -1, rng.integers(0, users, total))
    values = np.where(_VALUED[types], np.round(rng.lognormal(3.0, 0.5, total), 2), np.nan)
    out.append(np.stack([np.full(total, account), start + offsets, micros, types, users_]).T)
    out.append(values.reshape(-1, 1))
    return counts


def _write_events(path: Path, parts: list[np.ndarray]) -> None:
    """Format every event at once, as ``\\copy event to FILE csv header`` prints them."""
    numbers = np.concatenate(parts[0::2]) if parts else np.zeros((0, 5), dtype=np.int64)
    values = np.concatenate(parts[1::2])[:, 0] if parts else np.zeros(0)
    times = pd.Series(np.datetime_as_string(numbers[:, 1].astype("datetime64[s]"), unit="s")).str.replace("T", " ")
    micros = numbers[:, 2]
    fractional = micros > 0
    times[fractional] = times[fractional] + pd.Series(micros[fractional]).map(
        lambda m: f".{m:06d}".rstrip("0")).to_numpy()
    users = pd.array(numbers[:, 4], dtype="Int64")
    frame = pd.DataFrame({"account_id": numbers[:, 0], "event_time": times, "event_type_id": numbers[:, 3],
                          "user_id": pd.array(users).astype("Int64"), "event_value": values})
    frame.loc[frame["user_id"] < 0, "user_id"] = pd.NA
    frame.to_csv(path, index=False, na_rep="", lineterminator="\n")


__all__ = ["EVENT_TYPES", "SimulatorFiles", "write_simulator_tables"]
