"""Command-line handlers: ``churnguard jobs list|run``, ``churnguard drift``, ``churnguard alerts``.

``jobs run`` stores alerts but sends none: a shell has no bot.  The running service's
outbox delivers them to subscribed chats within a minute, so feeding the inbox from cron
or a script still reaches people.
"""

from __future__ import annotations

import argparse
import logging
import sys
from typing import TYPE_CHECKING, Any

from jobs.alerts import alert_dict, recent_alerts
from jobs.owed import owed_jobs
from jobs.reports import PERFORMANCE, latest_report, reports
from jobs.runner import JobRunner
from jobs.scheduler import schedule_table, setting_of
from storage.db import Database
from storage.errors import UserError

if TYPE_CHECKING:
    from churnguard import Settings

MAX_ALERTS = 1000
RUN_WAIT_SECONDS = 900.0  # `jobs run` waits this long for a running instance (e.g. the service's)


def _db(settings: Settings) -> Database:
    return Database(settings.database_url).create_schema()


def _emit(args: argparse.Namespace, payload: dict[str, Any], text: str) -> None:
    from churnguard import emit

    emit(args, payload, text)


def _when(value: Any) -> str:
    return "-" if value is None else f"{value:%Y-%m-%d %H:%M}"


def jobs(args: argparse.Namespace, settings: Settings) -> int:
    if args.jobs_command == "list":
        return jobs_list(args, settings)
    return jobs_run(args, settings)


def jobs_list(args: argparse.Namespace, settings: Settings) -> int:
    with _db(settings) as db:
        views = schedule_table(db, settings)
        owed = owed_jobs(db)
    lines = ["Job          Schedule (UTC)    Next run          Last run          Outcome"]
    for view in views:
        last = view.last_run
        outcome = "-" if last is None else last.outcome + (f": {last.error}" if last.error else "")
        cron = view.cron if view.enabled else f"off ({setting_of(view.job)})"
        lines.append(
            f"{view.job:<12} {cron:<17} {_when(view.next_run):<17} "
            f"{_when(None if last is None else last.started_at):<17} {outcome}"
        )
        if view.missed is not None:
            lines.append(f"{'':12} missed the slot at {_when(view.missed)}; the service runs it once on start")
        if last is not None and last.outcome == "cancelled":
            lines.append(f"{'':12} cancelled because the service stopped; nothing it started was kept")
    if owed:
        lines.append("")
        lines.append("Follow-ups not run yet (a stopped service runs them once when it starts):")
        lines += [f"  {row.job:<12} {row.trigger:<12} owed since {_when(row.created_at)}"
                  + (f" (asked for by run #{row.origin_run_id})" if row.origin_run_id is not None else "")
                  for row in owed]
    _emit(args, {"jobs": [view.as_dict() for view in views], "owed": [row.as_dict() for row in owed]},
          "\n".join(lines))
    return 0


def jobs_run(args: argparse.Namespace, settings: Settings) -> int:
    logging.basicConfig(level=settings.log_level, format="%(levelname)s %(name)s: %(message)s", stream=sys.stderr)
    with _db(settings) as db:
        runner = JobRunner(settings, db, notifier=None)
        runner.check_name(args.name)
        reports = runner.run_sync(args.name, trigger="manual", wait_seconds=RUN_WAIT_SECONDS)
    lines = []
    for report in reports:
        lines.append(f"{report.job}: {report.outcome} — {report.summary}")
        for decision in report.alerts:
            state = f"alert #{decision.alert_id} stored" if decision.stored else "not sent again"
            lines.append(f"  {decision.draft.severity} {decision.draft.kind} alert ({state}): {decision.draft.title}"
                         + ("" if decision.stored else f" — {decision.reason}"))
    payload = {"job": args.name, "outcome": reports[0].outcome, "runs": [report.as_dict() for report in reports]}
    _emit(args, payload, "\n".join(lines))
    return 1 if reports[0].outcome == "failed" else 0


def drift(args: argparse.Namespace, settings: Settings) -> int:
    with _db(settings) as db:
        report = latest_report(db, "drift")
    if report is None:
        message = "No drift report yet: the drift job runs after new data arrives (churnguard jobs run drift)."
        _emit(args, {"report": None, "message": message}, message)
        return 0
    body = report.body
    header = (f"Drift report #{report.id} ({_when(report.created_at)} UTC, model {report.model_version or '-'}, "
              f"batch #{report.batch_id if report.batch_id is not None else '-'})")
    _emit(args, {"report": {"id": report.id, "created_at": report.created_at.isoformat(),
                            "model_version": report.model_version, "batch_id": report.batch_id, **body}},
          header + "\n" + str(body.get("text", "")))
    return 0


def alerts(args: argparse.Namespace, settings: Settings) -> int:
    n = args.n
    if not 1 <= n <= MAX_ALERTS:
        raise UserError(f"-n must be between 1 and {MAX_ALERTS}, got {n}", n=n)
    with _db(settings) as db:
        rows = recent_alerts(db, limit=n)
    items = [alert_dict(row) for row in rows]
    if not items:
        text = "No alerts yet."
    else:
        lines = []
        for item in items:
            sent = "sent" if item["sent_at"] else "not sent yet"
            lines.append(f"#{item['id']} {item['time'][:16]} {item['severity']:<8} {item['kind']:<15} "
                         f"{item['title']} ({sent})")
            lines.extend(f"    {line}" for line in str(item["message"]).splitlines())
        text = "\n".join(lines)
    _emit(args, {"alerts": items}, text)
    return 0


SHADOW_HISTORY = 20


def shadow(args: argparse.Namespace, settings: Settings) -> int:
    """``churnguard shadow``: the challenger running in shadow, its latest comparison with the
    champion on the same new clients (both models' realised recall, precision and PR-AUC, the
    paired tests) and the verdicts so far, from the stored performance reports."""
    from model.monitoring.shadow import ShadowComparison
    from model.service import open_registry

    with _db(settings) as db:
        registry = open_registry(db, settings)
        champion = registry.champion()
        candidate = registry.newest_candidate()
        found = [row for row in reports(db, PERFORMANCE, limit=500) if isinstance(row.body.get("shadow"), dict)]
    history = [_shadow_entry(row) for row in found[:SHADOW_HISTORY]]
    current = candidate.version if candidate is not None else None
    latest = history[0] if history else None
    mode = ("shadow: the comparison promotes or retires it" if settings.promotion == "shadow"
            else "gate: the comparison is advice, an admin promotes")
    lines = [f"Shadow challenger: {'on' if settings.shadow else 'off'} (CHURNGUARD_PROMOTION={mode})."]
    if candidate is None:
        lines.append(f"Champion {champion.version if champion else '-'}; no candidate runs in shadow. A retrain that "
                     "passes the gate becomes one with CHURNGUARD_PROMOTION=shadow, as does churnguard train "
                     "--candidate.")
    else:
        running = "runs in shadow" if settings.shadow else "would run in shadow with CHURNGUARD_SHADOW=on"
        lines.append(f"Champion {champion.version if champion else '-'}; candidate {candidate.version} (trained "
                     f"{candidate.created_at:%Y-%m-%d %H:%M} UTC) {running}.")
    if candidate is not None and (latest is None or latest["shadow_version"] != current):
        lines.append(f"No comparison of {candidate.version} yet: it comes when outcomes arrive for clients "
                     "neither model trained on (the performance job).")
    if latest is not None:
        lines.append("")
        lines.append(f"Latest comparison, {latest['shadow_version']} beside {latest['champion_version']} "
                     f"(report #{latest['report_id']}, {_when(latest['created_at'])} UTC, "
                     f"{latest['source_name'] or '-'}):")
        comparison = latest.get("comparison")
        lines.append(ShadowComparison.from_dict(comparison).to_text() if comparison else str(latest["text"]))
        if latest.get("action"):
            lines.append(f"Action: {latest['action']['taken']} — {latest['action']['note']}")
    earlier = [entry for entry in history if entry is not latest]
    if earlier:
        lines.append("")
        lines.append("Earlier comparisons, newest first:")
        lines += [f"  #{entry['report_id']} {_when(entry['created_at'])} {entry['source_name'] or '-'}: "
                  f"{entry['shadow_version']} beside {entry['champion_version']}: "
                  f"{entry['verdict'] or entry['status']}"
                  + (f" ({entry['action']['taken']})" if entry.get("action") and entry["action"]["taken"] != "none"
                     else "")
                  for entry in earlier]
    payload = {"enabled": settings.shadow, "promotion": settings.promotion,
               "champion": champion.version if champion else None, "shadow": current,
               "latest": latest, "history": history}
    _emit(args, payload, "\n".join(lines))
    return 0


def _shadow_entry(row: Any) -> dict[str, Any]:
    part = dict(row.body["shadow"])
    comparison = part.get("comparison")
    return {"report_id": row.id, "created_at": row.created_at, "batch_id": row.batch_id,
            "source_name": row.body.get("source_name"), "as_of": row.body.get("as_of"),
            "shadow_version": part.get("shadow_version"), "champion_version": part.get("champion_version"),
            "status": part.get("status"), "verdict": comparison.get("verdict") if isinstance(comparison, dict) else None,
            "action": part.get("action"), "text": part.get("text"), "comparison": comparison,
            "n_rows": part.get("n_rows"), "n_trained_on_shadow": part.get("n_trained_on_shadow"),
            "n_outcome_unknown": part.get("n_outcome_unknown")}
