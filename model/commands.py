"""Command-line handlers of the model commands: train, report, models, promote, rollback,
score, top, export, score-all.

Each handler only opens the store, calls ``model.service`` / ``model.registry`` /
``model.scoring`` and prints through ``churnguard.emit``; the work lives in those modules so
the bot and the jobs do exactly the same thing.
"""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

from churnguard import Settings, emit
from model.challenger import promotes_at_once, shadow_enabled, supersede
from model.registry import CANDIDATE, REJECTED, VersionInfo
from model.service import REPORT_FILE, open_registry, open_scorer, train_and_register
from storage.db import Database
from storage.errors import NotFound, UserError
from storage.tables import AuditLog

ACTOR = "cli"


def _database(settings: Settings) -> Database:
    return Database(settings.database_url).create_schema()


def _audit(db: Database, action: str, detail: str, result: str = "ok") -> None:
    with db.session() as session:
        session.add(AuditLog(actor=ACTOR, action=action, detail=detail, result=result))


# ------------------------------------------------------------------------------------ train
def train(args: argparse.Namespace, settings: Settings) -> int:
    if getattr(args, "source", None):
        settings = settings.model_copy(update={"training_source": args.source})
    db = _database(settings)
    quiet = getattr(args, "json", False)

    def progress(message: str) -> None:
        if not quiet:
            print(f"... {message}", file=sys.stderr, flush=True)

    registry = open_registry(db, settings)
    # CHURNGUARD_PROMOTION=shadow holds for a hand-made model too; --candidate asks for it.
    promote = not getattr(args, "candidate", False) and promotes_at_once(settings, registry)
    try:
        result = train_and_register(db, settings, seed=args.seed, actor=ACTOR, progress=progress, promote=promote,
                                    registry=registry)
    except UserError as error:
        _audit(db, "train", str(error), result="refused")
        raise
    except Exception as error:
        _audit(db, "train", f"{type(error).__name__}: {error}", result="failed")
        raise
    payload = result.to_dict()
    payload["superseded"] = supersede(registry, result.version, actor=ACTOR) if result.status == CANDIDATE else []
    payload["shadow"] = result.status == CANDIDATE and shadow_enabled(settings)
    emit(args, payload, train_text(payload, result.report))
    return 0


def train_text(payload: dict[str, Any], report: dict[str, Any]) -> str:
    from model import card

    status = payload["status"]
    verdict = {"champion": "is the new champion", "rejected": "was rejected by the acceptance gate",
               "candidate": "passed the gate and is stored as a candidate"}.get(status, status)
    lines = [f"Model {payload['version']} {verdict} ({payload['training_seconds']} s).", card.summary_text(report),
             f"Model card: {payload['card']}"]
    if status == REJECTED:
        lines.append("The champion is unchanged; churnguard promote VERSION overrides the gate.")
    if status == CANDIDATE:
        if payload.get("shadow"):
            lines.append("It runs in shadow beside the champion from the next arriving file (churnguard shadow shows "
                         "the comparison); churnguard promote VERSION makes it the champion now.")
        else:
            lines.append("The champion is unchanged; churnguard promote VERSION makes it the champion "
                         "(CHURNGUARD_SHADOW=on runs it in shadow first).")
        if payload.get("superseded"):
            lines.append(f"It replaces the earlier candidate(s) {', '.join(payload['superseded'])}, now rejected.")
    return "\n".join(lines)


# ----------------------------------------------------------------------------------- report
def report(args: argparse.Namespace, settings: Settings) -> int:
    from model import card

    db = _database(settings)
    registry = open_registry(db, settings)
    if args.version:
        info = registry.get(args.version)
    else:
        champion = registry.champion()
        if champion is None:
            raise NotFound("no champion model yet: run churnguard train, or name a version (churnguard models)")
        info = champion
    problem = registry.check(info.version)
    body = _read_report(info)
    card_path = info.artifact_dir / card.CARD_FILE
    payload = {**info.to_dict(), "card": str(card_path), "report": body, "integrity": problem or "ok"}
    lines = [f"Model {info.version} ({info.status}, trained {info.created_at:%Y-%m-%d %H:%M} UTC)"]
    if body is not None:
        lines.append(card.summary_text(body))
    lines.append(f"Model card: {card_path}")
    if problem:
        lines.append(f"Warning: the artifacts of {info.version} are damaged: {problem}")
    emit(args, payload, "\n".join(lines))
    return 0


def _read_report(info: VersionInfo) -> dict[str, Any] | None:
    try:
        loaded = json.loads((info.artifact_dir / REPORT_FILE).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return loaded if isinstance(loaded, dict) else None


# ----------------------------------------------------------------------------------- models
def version_figures(info: VersionInfo) -> dict[str, float | None]:
    """Test recall, precision and PR-AUC of the model itself, from the stored report metrics."""
    metrics = info.metrics.get("metrics") or {}
    test = metrics.get("test") if isinstance(metrics, dict) else None
    if isinstance(test, dict) and isinstance(test.get("lightgbm"), dict):
        test = test["lightgbm"]
    test = test if isinstance(test, dict) else {}
    return {name: _number(test.get(name)) for name in ("recall", "precision", "pr_auc")}


def _number(value: object) -> float | None:
    return float(value) if isinstance(value, int | float) and not isinstance(value, bool) else None


def models(args: argparse.Namespace, settings: Settings) -> int:
    db = _database(settings)
    registry = open_registry(db, settings)
    versions = registry.list_versions()
    problems = {info.version: registry.check(info.version) for info in versions}
    rows = []
    for info in versions:
        row = {**info.to_dict(), "test": version_figures(info), "integrity": problems[info.version] or "ok"}
        row.pop("metrics", None)
        rows.append(row)
    champion = next((row["version"] for row in rows if row["champion"]), None)
    emit(args, {"versions": rows, "champion": champion}, models_text(versions, problems))
    return 0


def models_text(versions: list[VersionInfo], problems: dict[str, str | None]) -> str:
    if not versions:
        return "No models yet: run churnguard train."

    def cell(value: float | None) -> str:
        return "-" if value is None else f"{value:.3f}"

    header = f"  {'VERSION':<8} {'STATUS':<10} {'CREATED (UTC)':<17} {'THRESHOLD':>9} {'RECALL':>7} " \
             f"{'PRECISION':>9} {'PR-AUC':>7}  FILES"
    lines = [header]
    for info in versions:
        figures = version_figures(info)
        marker = "*" if info.is_champion else " "
        lines.append(
            f"{marker} {info.version:<8} {info.status:<10} {info.created_at:%Y-%m-%d %H:%M} "
            f"{info.threshold:>9.3f} {cell(figures['recall']):>7} {cell(figures['precision']):>9} "
            f"{cell(figures['pr_auc']):>7}  {'ok' if problems.get(info.version) is None else 'DAMAGED'}"
        )
    lines.append("* = champion (serves scores); figures are on each version's test split")
    lines += [f"{version}: {problem}" for version, problem in problems.items() if problem]
    return "\n".join(lines)


# ------------------------------------------------------------------------ promote / rollback
def promote(args: argparse.Namespace, settings: Settings) -> int:
    db = _database(settings)
    registry = open_registry(db, settings)
    try:
        switch = registry.promote(args.version, actor=ACTOR)
    except UserError as error:
        _audit(db, "promote", f"{args.version}: {error}", result="refused")
        raise
    text = f"{switch.version} is now the champion (was {switch.previous or 'none'})."
    if switch.note:
        text += f"\nNote: {switch.note}"
    emit(args, switch.to_dict(), text)
    return 0


def rollback(args: argparse.Namespace, settings: Settings) -> int:
    db = _database(settings)
    registry = open_registry(db, settings)
    try:
        switch = registry.rollback(actor=ACTOR)
    except UserError as error:
        _audit(db, "rollback", str(error), result="refused")
        raise
    text = f"Rolled back: {switch.version} is the champion again (was {switch.previous})."
    if switch.skipped:
        text += f"\nPassed over damaged version(s): {', '.join(switch.skipped)}."
    emit(args, switch.to_dict(), text)
    return 0


# ---------------------------------------------------------------------------------- scoring
def score(args: argparse.Namespace, settings: Settings) -> int:
    db = _database(settings)
    result = open_scorer(db, settings).score_client(args.client_id, as_of=getattr(args, "as_of", None))
    emit(args, result.to_dict(), result.to_text())
    return 0


def top(args: argparse.Namespace, settings: Settings) -> int:
    db = _database(settings)
    results = open_scorer(db, settings).top(args.n, as_of=getattr(args, "as_of", None))
    payload = {"clients": [result.to_dict() for result in results], "count": len(results)}
    if not results:
        text = "No active clients to list (none stored, or all too new to score or already churned)."
    else:
        when = f", features as of {results[0].as_of}" if results[0].as_of else ""
        lines = [f"Top {len(results)} active clients by churn risk (model {results[0].model_version}, "
                 f"threshold {results[0].threshold:.1%}{when}):"]
        for rank, result in enumerate(results, start=1):
            why = "; ".join(item["text"] for item in result.to_dict()["reasons"])
            lines.append(f"{rank:>3}. {result.client_id}  {result.probability:.1%}  {result.risk_band}  - {why}")
        lines += [f"Warning: {warning}" for warning in results[0].warnings]
        text = "\n".join(lines)
    emit(args, payload, text)
    return 0


def export(args: argparse.Namespace, settings: Settings) -> int:
    """``churnguard export --output FILE.csv|FILE.xlsx [--as-of D] [--json]``: every flagged client."""
    from model.export import FORMATS, write_list
    from storage.events.commands import check_output

    output = check_output(args.output, FORMATS)
    assert output is not None
    db = _database(settings)
    flagged = open_scorer(db, settings).flagged_ranking(as_of=getattr(args, "as_of", None))
    try:
        result = write_list(flagged, [output])
    except OSError as error:
        raise UserError(f"--output: cannot write {output}: {error.strerror or error}", output=str(output)) from None
    payload = {"output": str(output), "format": output.suffix.lower().lstrip("."), **result.to_dict()}
    payload.pop("files", None)
    payload["bytes"] = result.sizes[output.suffix.lower()]
    when = f", as of {payload['as_of']}" if payload["as_of"] else ""
    lines = [f"Wrote {result.rows:,} flagged client(s) of {result.active:,} active, riskiest first, to {output} "
             f"(model {result.model_version}, flagged at >= {result.threshold:.1%}{when})."]
    lines += [f"Warning: {warning}" for warning in result.warnings]
    emit(args, payload, "\n".join(lines))
    return 0


def score_all(args: argparse.Namespace, settings: Settings) -> int:
    db = _database(settings)
    run = open_scorer(db, settings).score_all(as_of=getattr(args, "as_of", None))
    emit(args, run.to_dict(), run.to_text())
    return 0


__all__ = ["export", "models", "promote", "report", "rollback", "score", "score_all", "top", "train"]
