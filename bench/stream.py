"""Monthly-stream benchmark (issue 10): does the recall promise hold on the next month?

A retention team exports its CRM once a month: one file per month-end, one row per active
client, with that month's features and whether the client left during the following month.
This script makes such a stream from simulator-shaped raw tables
(tests/storage/events/monthly_stream.py) and runs it through ChurnGuard the way a user does,
through the command line in subprocesses:

1. ``churnguard ingest`` months 1..k (one batch each), then ``churnguard train``;
2. a copy of that store gets a random resample of the training months' rows in its inbox
   (one row per client, no label) and ``churnguard jobs run ingest``: its drift verdict says
   whether "nothing changed" raises an alert;
3. months k+1.. go into the inbox one at a time, each followed by ``churnguard jobs run ingest``,
   which scores the file on arrival with the champion, then runs drift, performance and the
   retrain follow-ups.

Per month it reports the champion's realised recall as ChurnGuard's performance job measured
it (its stored "performance" report) with the 95 % interval, the recall the model promised
(``validation.predicted_recall`` from the model's report.json when it exists, else the card's
test recall; the column says which), the flagged share, the drift verdict, the champion
before and after, and what the retrain's gate decided.  The predictions stored at arrival are
also checked against the stream's own truth: recall, ROC-AUC and flagged share recounted here.

Targets (issue 10): realised recall averages >= 0.90 over the fed months; the predicted recall
lies in each month's 95 % interval in most months; the champion changes only when the gate
passes; the resample raises no drift alert.

``CHURNGUARD_AS_OF_COLUMN`` is set to the stream's date column (``snapshot_date``); a
ChurnGuard that does not know the setting ignores it and takes the date for a feature.
``--ignore-date`` also lists it in ``CHURNGUARD_IGNORE_COLUMNS``, to see what remains once the
model cannot read the calendar off that column.

    python bench/stream.py                 # 1,500 accounts, 6 + 6 months, default tuning (6-9 min on 2 cores)
    python bench/stream.py --quick         # 400 accounts, 3 + 2 months, 2 s tuning (about a minute)
    python bench/stream.py --ignore-date   # the date column is not a feature

Prints a table and writes bench/results/stream.json.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from itertools import pairwise
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from tests.storage.events.monthly_stream import (  # noqa: E402
    MonthFile,
    MonthlyStream,
    read_month,
    resample_of,
    write_monthly_stream,
)

TARGET = 0.90
CLI = REPO / "churnguard.py"
RESULTS = REPO / "bench" / "results"
# Where a report.json may hold the recall the model promises for the next period, in order of
# preference; the card's test recall is the fallback (what today's report has).
PREDICTED_RECALL_KEYS = ("validation.predicted_recall.estimate",)
ROC_AUC_KEYS = ("validation.roc_auc", "metrics.test.lightgbm.roc_auc")
CARD_RECALL_KEY = "metrics.test.lightgbm.recall"
FLAGGED_EVERYONE = 0.8  # flagging this share of the clients or more makes any recall look good


# ------------------------------------------------------------------------------ running the CLI
@dataclass
class Home:
    """One ChurnGuard home (SQLite store, models, inbox) and the environment its commands get."""

    path: Path
    env: dict[str, str]

    @property
    def inbox(self) -> Path:
        return self.path / "inbox"

    @property
    def database_url(self) -> str:
        return f"sqlite:///{(self.path / 'churnguard.db').as_posix()}"


def make_env(home: Path, stream: MonthlyStream, *, tuning_seconds: float, seed: int, ignore_date: bool,
             extra: Mapping[str, str] | None = None) -> dict[str, str]:
    """The caller's environment without any ChurnGuard or Telegram setting, plus the stream's."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("CHURNGUARD_", "TELEGRAM_"))}
    env.update({
        "CHURNGUARD_HOME": str(home),
        "CHURNGUARD_ID_COLUMN": stream.id_column,
        "CHURNGUARD_LABEL_COLUMN": stream.label_column,
        "CHURNGUARD_POSITIVE_LABEL": stream.positive_label,
        "CHURNGUARD_AS_OF_COLUMN": stream.date_column,
        "CHURNGUARD_TUNING_SECONDS": str(tuning_seconds),
        "CHURNGUARD_SEED": str(seed),
        "CHURNGUARD_LOG_LEVEL": "WARNING",
    })
    if ignore_date:
        env["CHURNGUARD_IGNORE_COLUMNS"] = stream.date_column
    env.update(extra or {})
    return env


def churnguard(home: Home, *args: str) -> dict[str, Any]:
    """Run ``churnguard ARGS --json`` as a user would; its JSON answer, or an error with stderr."""
    command = [sys.executable, str(CLI), *args, "--json"]
    done = subprocess.run(command, env=home.env, cwd=home.path.parent, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise RuntimeError(f"churnguard {' '.join(args)} exited {done.returncode}:\n{done.stderr[-2000:]}")
    answer: dict[str, Any] = json.loads(done.stdout)
    return answer


def drop_in_inbox(home: Home, source: Path) -> Path:
    """Copy a file into the inbox under a temporary name and rename it: never read half-written."""
    home.inbox.mkdir(parents=True, exist_ok=True)
    partial = home.inbox / f".{source.name}.part"
    shutil.copyfile(source, partial)
    target = home.inbox / source.name
    os.replace(partial, target)
    return target


# ------------------------------------------------------------------------------ reading results
def dig(data: Any, dotted: str) -> Any:
    """``data["a"]["b"]`` for ``"a.b"``; None when any part is missing."""
    for part in dotted.split("."):
        if not isinstance(data, Mapping) or part not in data:
            return None
        data = data[part]
    return data


def first_number(report: Mapping[str, Any], keys: Iterable[str]) -> tuple[float | None, str | None]:
    """The first of ``keys`` that holds a finite number in ``report``, and which key it was."""
    for key in keys:
        value = dig(report, key)
        if isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value):
            return float(value), key
    return None, None


def predicted_recall(report: Mapping[str, Any]) -> tuple[float | None, str | None]:
    """The recall a model promises for the next period: the out-of-time prediction when its
    report has one, else the card's test recall."""
    value, key = first_number(report, PREDICTED_RECALL_KEYS)
    if value is not None:
        return value, key
    return first_number(report, (CARD_RECALL_KEY,))


def model_report(home: Home, version: str | None) -> dict[str, Any]:
    if version is None:
        return {}
    path = home.path / "models" / version / "report.json"
    try:
        report: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return report


def champion_of(home: Home) -> str | None:
    for row in churnguard(home, "models").get("versions", []):
        if row.get("champion"):
            return str(row["version"])
    return None


def reports_since(home: Home, kind: str, after_id: int) -> list[Any]:
    """Stored monitoring reports of ``kind`` newer than ``after_id``, oldest first."""
    from sqlmodel import col, select

    from storage.db import Database
    from storage.tables import Report

    db = Database(home.database_url)
    try:
        with db.session() as session:
            query = select(Report).where(Report.kind == kind, col(Report.id) > after_id).order_by(col(Report.id))
            rows = list(session.exec(query).all())
            for row in rows:
                session.expunge(row)
            return rows
    finally:
        db.dispose()


def newest_report_id(home: Home) -> int:
    from sqlalchemy import func
    from sqlmodel import select

    from storage.db import Database
    from storage.tables import Report

    db = Database(home.database_url)
    try:
        with db.session() as session:
            return int(session.exec(select(func.max(Report.id))).one() or 0)
    finally:
        db.dispose()


def pick(rows: Sequence[Any], batch_id: int | None) -> Any:
    """The report about ``batch_id`` when one names it, else the newest one."""
    named = [row for row in rows if batch_id is not None and row.batch_id == batch_id]
    return (named or list(rows) or [None])[-1]


def arrival_scores(home: Home, batch_id: int) -> dict[str, tuple[float, bool, str]]:
    """client id -> (probability, flagged, model version) of the first prediction made for each
    record of ``batch_id`` (the score on arrival, before its labels were used)."""
    from sqlmodel import col, select

    from storage.db import Database
    from storage.tables import ClientRecord, Prediction

    db = Database(home.database_url)
    try:
        with db.session() as session:
            query = (select(ClientRecord.client_id, Prediction.probability, Prediction.flagged,
                            Prediction.model_version)
                     .join(Prediction, col(Prediction.record_id) == col(ClientRecord.id))
                     .where(ClientRecord.batch_id == batch_id).order_by(col(Prediction.id)))
            found: dict[str, tuple[float, bool, str]] = {}
            for client_id, probability, flagged, version in session.exec(query).all():
                found.setdefault(str(client_id), (float(probability), bool(flagged), str(version)))
            return found
    finally:
        db.dispose()


def recount(month: MonthFile, scores: Mapping[str, tuple[float, bool, str]], positive: str,
            id_column: str, label_column: str) -> dict[str, Any]:
    """Recall, flagged share and ROC-AUC of the arrival scores against the stream's own truth."""
    from sklearn.metrics import roc_auc_score

    frame = read_month(month)
    if label_column not in frame.columns or not scores:
        return {"clients_scored": len(scores)}
    truth = dict(zip(frame[id_column], frame[label_column] == positive, strict=True))
    ids = [cid for cid in scores if cid in truth]
    labels = [bool(truth[cid]) for cid in ids]
    flagged = [scores[cid][1] for cid in ids]
    churners = sum(labels)
    caught = sum(f and y for f, y in zip(flagged, labels, strict=True))
    both = 0 < churners < len(ids)
    return {
        "clients_scored": len(ids), "churners": churners, "caught": caught,
        "recall": caught / churners if churners else None,
        "flagged_share": sum(flagged) / len(ids) if ids else None,
        "roc_auc": float(roc_auc_score(labels, [scores[cid][0] for cid in ids])) if both else None,
    }


def drift_summary(report: Any) -> dict[str, Any]:
    if report is None:
        return {"verdict": None}
    body = report.body
    features = sorted((f for f in body.get("features") or [] if isinstance(f.get("psi"), int | float)),
                      key=lambda f: -float(f["psi"]))
    return {
        "verdict": body.get("verdict"), "drifted_share": body.get("drifted_share"),
        "drifted": body.get("drifted") or [],
        "top_psi": [{"feature": f["feature"], "psi": round(float(f["psi"]), 3), "status": f.get("status")}
                    for f in features[:3]],
        "model_version": report.model_version,
    }


def card_claims(home: Home, version: str | None) -> dict[str, Any]:
    report = model_report(home, version)
    predicted, source = predicted_recall(report)
    roc_auc, roc_source = first_number(report, ROC_AUC_KEYS)
    return {
        "version": version, "predicted_recall": predicted, "predicted_recall_source": source,
        "test_recall": first_number(report, (CARD_RECALL_KEY,))[0], "roc_auc": roc_auc, "roc_auc_source": roc_source,
        "validation_kind": dig(report, "validation.kind"), "signal": report.get("signal"),
    }


# ------------------------------------------------------------------------------ the run
def feed_month(home: Home, stream: MonthlyStream, month: MonthFile) -> dict[str, Any]:
    """One month through the inbox and ``jobs run ingest``; what ChurnGuard measured and decided."""
    before_champion = champion_of(home)
    last_report = newest_report_id(home)
    drop_in_inbox(home, month.path)
    started = time.perf_counter()
    answer = churnguard(home, "jobs", "run", "ingest")
    seconds = time.perf_counter() - started
    runs = answer.get("runs", [])
    batch_ids = [b for run in runs if run.get("job") == "ingest" for b in dig(run, "details.new_batch_ids") or []]
    batch_id = int(batch_ids[0]) if batch_ids else None
    files = [f for run in runs if run.get("job") == "ingest" for f in dig(run, "details.files") or []]
    performance = pick(reports_since(home, "performance", last_report), batch_id)
    drift = pick(reports_since(home, "drift", last_report), batch_id)
    realised = (performance.body.get("realised") or {}) if performance is not None else {}
    scorer = performance.model_version if performance is not None else before_champion
    retrains = []
    for run in runs:
        if run.get("job") != "retrain":
            continue
        result = dig(run, "details.result") or {}
        retrains.append({"outcome": run.get("outcome"), "summary": run.get("summary"),
                         "version": result.get("version"), "status": result.get("status"),
                         "promoted": result.get("promoted"), "reasons": result.get("reasons") or [],
                         "trigger": dig(run, "details.trigger")})
    for retrain in retrains:  # the gate's own verdict, from the model's report
        retrain["gate_passed"] = dig(model_report(home, retrain["version"]), "gate.passed")
    after_champion = champion_of(home)
    n_scored = realised.get("n_scored") or 0
    return {
        "month": month.number, "as_of": month.as_of.isoformat(), "file": month.path.name, "batch_id": batch_id,
        "ingest": [f.get("status") for f in files], "clients": month.clients, "churners": month.churners,
        "scored_by": scorer, "card": card_claims(home, scorer),
        "realised": {key: realised.get(key) for key in ("recall", "recall_low", "recall_high", "n_churners",
                                                        "true_positives", "n_flagged", "n_scored", "precision",
                                                        "pr_auc", "status")},
        "flagged_share": (realised.get("n_flagged") or 0) / n_scored if n_scored else None,
        "performance_source": performance.body.get("predictions") if performance is not None else None,
        "recount": recount(month, arrival_scores(home, batch_id), stream.positive_label, stream.id_column,
                           stream.label_column) if batch_id is not None else {},
        "drift": drift_summary(drift), "champion_before": before_champion, "champion_after": after_champion,
        "retrains": retrains, "alerts": [f"{a.get('severity')} {a.get('kind')}" for run in runs
                                         for a in run.get("alerts") or []],
        "seconds": round(seconds, 1),
    }


def resample_check(home: Home, stream: MonthlyStream, training: Sequence[MonthFile], workdir: Path,
                   seed: int) -> dict[str, Any]:
    """A copy of the freshly trained store receives a resample of the training months (no label,
    one row per client, as many rows as an average month): the drift verdict on it."""
    copy = Home(workdir / "resample-home", dict(home.env))
    shutil.copytree(home.path, copy.path)
    copy.env["CHURNGUARD_HOME"] = str(copy.path)
    copy.env["CHURNGUARD_RETRAIN_ON"] = ""  # the verdict is what counts; no retrain on a copy
    rows = round(sum(m.clients for m in training) / len(training))
    path = resample_of(training, workdir / "resample_of_training_months.csv", rows=rows, seed=seed)
    last = newest_report_id(copy)
    drop_in_inbox(copy, path)
    answer = churnguard(copy, "jobs", "run", "ingest")
    batch_ids = [b for run in answer.get("runs", []) if run.get("job") == "ingest"
                 for b in dig(run, "details.new_batch_ids") or []]
    drift = pick(reports_since(copy, "drift", last), int(batch_ids[0]) if batch_ids else None)
    alerts = [f"{a.get('severity')} {a.get('kind')}" for run in answer.get("runs", []) for a in run.get("alerts") or []]
    return {"rows": rows, "file": path.name, **drift_summary(drift), "alerts": alerts}


def run_stream(workdir: Path, *, accounts: int, train_months: int, feed_months: int, warmup_months: int,
               seed: int, tuning_seconds: float, ignore_date: bool,
               say: Any = print) -> dict[str, Any]:
    """The whole benchmark in ``workdir``; returns what bench/results/stream.json holds."""
    timings: dict[str, float] = {}
    clock = time.perf_counter()
    stream = write_monthly_stream(workdir / "stream", seed=seed, accounts=accounts,
                                  months=train_months + feed_months, warmup_months=warmup_months)
    timings["generate"] = time.perf_counter() - clock
    say(f"stream: {len(stream.months)} month-end files, {stream.tables.accounts} accounts, "
        f"{stream.tables.events:,} events ({timings['generate']:.1f} s)")
    home = Home(workdir / "home", {})
    home.env = make_env(home.path, stream, tuning_seconds=tuning_seconds, seed=seed, ignore_date=ignore_date)
    training, fed = stream.months[:train_months], stream.months[train_months:]

    clock = time.perf_counter()
    for month in training:
        stored = churnguard(home, "ingest", str(month.path))
        say(f"ingested {month.path.name}: batch #{stored.get('batch_id')}, {stored.get('rows')} rows")
    timings["ingest_training_months"] = time.perf_counter() - clock
    clock = time.perf_counter()
    trained = churnguard(home, "train")
    timings["train"] = time.perf_counter() - clock
    first = card_claims(home, str(trained.get("version")))
    say(f"trained {trained.get('version')} ({trained.get('status')}): card test recall {first['test_recall']}, "
        f"ROC-AUC {first['roc_auc']} ({timings['train']:.0f} s)")

    clock = time.perf_counter()
    resample = resample_check(home, stream, training, workdir, seed)
    timings["resample"] = time.perf_counter() - clock
    say(f"resample of the training months ({resample['rows']} rows): drift verdict {resample['verdict']}")

    months = []
    clock = time.perf_counter()
    for month in fed:
        row = feed_month(home, stream, month)
        months.append(row)
        say(line_of(row))
    timings["feed_months"] = time.perf_counter() - clock
    timings = {k: round(v, 1) for k, v in timings.items()}
    timings["total"] = round(sum(timings.values()), 1)
    return {
        "settings": {"accounts": accounts, "train_months": train_months, "feed_months": feed_months,
                     "warmup_months": warmup_months, "seed": seed, "tuning_seconds": tuning_seconds,
                     "ignore_date": ignore_date, "as_of_column": stream.date_column, "target": TARGET},
        "stream": stream.truth(),
        "training": {"version": trained.get("version"), "status": trained.get("status"), "card": first,
                     "train_rows": dig(trained, "splits.train.rows")},
        "resample": resample,
        "months": months,
        "summary": summarise(months, resample, first_champion=str(trained.get("version"))),
        "timings_seconds": timings,
    }


def summarise(months: Sequence[Mapping[str, Any]], resample: Mapping[str, Any], *,
              first_champion: str | None) -> dict[str, Any]:
    """Issue 10's acceptance figures over the fed months."""
    recalls = [m["realised"]["recall"] for m in months if m["realised"].get("recall") is not None]
    inside = []
    for m in months:
        low, high = m["realised"].get("recall_low"), m["realised"].get("recall_high")
        predicted = m["card"].get("predicted_recall")
        if None not in (low, high, predicted):
            inside.append(low <= predicted <= high)
    champions = [first_champion] + [m["champion_after"] for m in months]
    changes = sum(a != b for a, b in pairwise(champions))
    retrains = [r for m in months for r in m["retrains"]]
    promoted = [r for r in retrains if r.get("promoted")]
    sources = sorted({str(m["card"].get("predicted_recall_source")) for m in months})
    average = sum(recalls) / len(recalls) if recalls else None
    shares = [m["flagged_share"] for m in months if m.get("flagged_share") is not None]
    # ChurnGuard's performance job and the recount from the stored arrival scores must agree
    agree = [abs(m["realised"]["recall"] - m["recount"]["recall"]) < 1e-9 for m in months
             if m["realised"].get("recall") is not None and m["recount"].get("recall") is not None]
    return {
        "average_realised_recall": average,
        "months_measured": len(recalls),
        "months_meeting_target": sum(r >= TARGET for r in recalls),
        "average_flagged_share": sum(shares) / len(shares) if shares else None,
        "performance_job_agrees_with_recount": all(agree) if agree else None,
        "predicted_inside_interval": sum(inside), "months_with_interval": len(inside),
        "predicted_recall_source": sources,
        "champion_changes": changes, "champions": champions,
        "retrains": len(retrains), "promotions": len(promoted),
        "gate_passed_for_every_promotion": all(r.get("gate_passed") is True for r in promoted),
        "gate_results": [r.get("gate_passed") for r in retrains],
        "resample_verdict": resample.get("verdict"),
        "checks": {
            "average_recall_at_least_target": average is not None and average >= TARGET,
            "predicted_inside_interval_in_most_months": bool(inside) and sum(inside) > len(inside) / 2,
            "champion_changes_only_through_the_gate": all(r.get("gate_passed") is True for r in promoted),
            "no_drift_on_resample": resample.get("verdict") not in ("drift", None),
        },
    }


# ------------------------------------------------------------------------------ printing
def _f(value: Any, digits: int = 2) -> str:
    return "-" if value is None else f"{value:.{digits}f}"


def line_of(row: Mapping[str, Any]) -> str:
    realised = row["realised"]
    retrain = "; ".join(f"{r['version']} {r['status']}" for r in row["retrains"]) or "no retrain"
    return (f"month {row['month']} ({row['as_of']}): recall {_f(realised.get('recall'))} "
            f"[{_f(realised.get('recall_low'))}, {_f(realised.get('recall_high'))}] by {row['scored_by']}, "
            f"flagged {_f(row['flagged_share'])}, drift {row['drift'].get('verdict')}, {retrain} ({row['seconds']} s)")


def table(result: Mapping[str, Any]) -> str:
    header = (f"{'month':>5} {'as of':>10} {'clients':>7} {'churn':>5} {'recall':>6} {'95% CI':>11} "
              f"{'predicted':>9} {'card AUC':>8} {'real AUC':>8} {'flagged':>7} {'drift':>9} "
              f"{'scored by':>9} {'champion':>8}  retrain (gate)")
    lines = [header]
    for m in result["months"]:
        r, card = m["realised"], m["card"]
        retrain = ", ".join(f"{x['version']} {x['status']} ({'pass' if x.get('gate_passed') else 'fail'})"
                            for x in m["retrains"]) or "-"
        lines.append(
            f"{m['month']:>5} {m['as_of']:>10} {m['clients']:>7} {m['churners']:>5} {_f(r.get('recall')):>6} "
            f"{_f(r.get('recall_low')) + '-' + _f(r.get('recall_high')):>11} {_f(card.get('predicted_recall')):>9} "
            f"{_f(card.get('roc_auc')):>8} {_f(m['recount'].get('roc_auc')):>8} {_f(m['flagged_share']):>7} "
            f"{m['drift'].get('verdict')!s:>9} {m['scored_by']!s:>9} {m['champion_after']!s:>8}  {retrain}")
    return "\n".join(lines)


def verdicts(summary: Mapping[str, Any]) -> str:
    checks = summary["checks"]
    mark = {True: "PASS", False: "FAIL"}
    share = summary.get("average_flagged_share")
    notes = []
    if share is not None and share >= FLAGGED_EVERYONE:
        notes.append(f"NOTE  the champion flagged {share:.0%} of the clients on average: its recall says little")
    if summary.get("performance_job_agrees_with_recount") is False:
        notes.append("NOTE  the performance job's recall differs from the recount of the stored arrival scores")
    return "\n".join([
        *notes,
        f"{mark[checks['average_recall_at_least_target']]}  average realised recall "
        f"{_f(summary['average_realised_recall'], 3)} over {summary['months_measured']} months (target >= {TARGET:.2f}; "
        f"{summary['months_meeting_target']} months at or above it), flagging "
        f"{_f(summary['average_flagged_share'])} of the clients on average",
        f"{mark[checks['predicted_inside_interval_in_most_months']]}  predicted recall inside the realised 95 % "
        f"interval in {summary['predicted_inside_interval']}/{summary['months_with_interval']} months "
        f"(predicted from: {', '.join(summary['predicted_recall_source'])})",
        f"{mark[checks['champion_changes_only_through_the_gate']]}  champion changed {summary['champion_changes']} "
        f"times ({' -> '.join(map(str, summary['champions']))}); {summary['promotions']} of {summary['retrains']} "
        f"retrains promoted, gate results {summary['gate_results']}",
        f"{mark[checks['no_drift_on_resample']]}  drift verdict on a resample of the training months: "
        f"{summary['resample_verdict']}",
    ])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--accounts", type=int, default=1500, help="initial accounts of the simulation")
    parser.add_argument("--train-months", type=int, default=6, help="months ingested before the first training")
    parser.add_argument("--feed-months", type=int, default=6, help="months fed one at a time through the inbox")
    parser.add_argument("--warmup-months", type=int, default=2, help="simulated months before the first export")
    parser.add_argument("--seed", type=int, default=7, help="simulation, resample and training seed")
    parser.add_argument("--tuning-seconds", type=float, default=20.0, help="CHURNGUARD_TUNING_SECONDS")
    parser.add_argument("--ignore-date", action="store_true",
                        help="also list the date column in CHURNGUARD_IGNORE_COLUMNS")
    parser.add_argument("--quick", action="store_true",
                        help="smoke run: 400 accounts, 3 + 2 months, 2 s tuning (overrides those options)")
    parser.add_argument("--keep", type=Path, default=None, metavar="DIR",
                        help="work in DIR and keep the stream and the store (default: a temporary folder)")
    parser.add_argument("--out", type=Path, default=RESULTS / "stream.json")
    args = parser.parse_args(argv)
    if args.quick:
        args.accounts, args.train_months, args.feed_months, args.tuning_seconds = 400, 3, 2, 2.0
    if args.accounts < 50 or args.train_months < 1 or args.feed_months < 1 or args.warmup_months < 0:
        parser.error("need --accounts >= 50, --train-months >= 1, --feed-months >= 1, --warmup-months >= 0")
    options = {"accounts": args.accounts, "train_months": args.train_months, "feed_months": args.feed_months,
               "warmup_months": args.warmup_months, "seed": args.seed, "tuning_seconds": args.tuning_seconds,
               "ignore_date": args.ignore_date}
    if args.keep is not None:
        if args.keep.exists() and any(args.keep.iterdir()):
            parser.error(f"--keep {args.keep} is not empty")
        args.keep.mkdir(parents=True, exist_ok=True)
        result = run_stream(args.keep, **options)
    else:
        with tempfile.TemporaryDirectory(prefix="churnguard-stream-") as workdir:
            result = run_stream(Path(workdir), **options)
    print()
    print(table(result))
    print()
    print(verdicts(result["summary"]))
    print(f"timings (s): {result['timings_seconds']}")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2, default=str))
    print(f"written to {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
