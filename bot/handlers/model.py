"""/model: the champion in one message (version, threshold, test metrics against the
baselines, training data) followed by its model card charts as photos.

Everything is read from the version's immutable artifacts (its report and card charts), so
the bot shows exactly what ``churnguard report`` prints and nothing recomputed.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sqlmodel import col, select
from telegram import Update
from telegram.constants import ChatAction
from telegram.ext import ContextTypes

from bot.access import Role
from bot.messages import CAPTION_LIMIT, reply, show_activity, truncate
from bot.services import Command, Services, services
from model import card
from model.registry import VersionInfo
from model.service import REPORT_FILE
from storage.db import Database
from storage.tables import Batch, ChampionEvent, ModelVersion

NO_CHAMPION_TEXT = "No champion model yet. An admin can train one with /retrain (or /promote a trained version)."
METRIC_COLUMNS = (("recall", "recall"), ("precision", "precision"), ("pr_auc", "PR-AUC"), ("roc_auc", "ROC-AUC"),
                  ("flagged_share", "flagged"))
MAX_CHARTS = 8
CHART_TITLES = {
    "pr_curve": "Precision-recall curve on the test split, chosen threshold marked",
    "roc_curve": "ROC curve on the test split",
    "calibration": "Calibration: predicted vs observed churn",
    "confusion_matrix": "Confusion matrix on the test split",
    "importances": "Top feature importances",
}


@dataclass
class ModelAnswer:
    text: str
    charts: list[tuple[Path, str]] = field(default_factory=list)


def _number(value: Any) -> float | None:
    return float(value) if isinstance(value, int | float) and not isinstance(value, bool) else None


def _cell(value: Any, share: bool = False) -> str:
    number = _number(value)
    if number is None:
        return "-"
    return f"{number:.1%}" if share else f"{number:.3f}"


def test_metrics_lines(report: dict[str, Any]) -> list[str]:
    """One line per model (ours first, then the baselines) with the test-split figures."""
    metrics = report.get("metrics")
    test = metrics.get("test") if isinstance(metrics, dict) else None
    if not isinstance(test, dict) or not test:
        return []
    if all(isinstance(value, int | float | type(None)) for value in test.values()):
        test = {"lightgbm": test}
    ordered = sorted(test.items(), key=lambda item: (item[0] != "lightgbm", item[0]))
    lines = ["Test split (never used for fitting or tuning):"]
    for name, figures in ordered:
        if not isinstance(figures, dict):
            continue
        cells = ", ".join(f"{label} {_cell(figures.get(key), share=key == 'flagged_share')}"
                          for key, label in METRIC_COLUMNS)
        lines.append(f"  {name}: {cells}")
    return lines


def crowned(db: Database, version: str) -> ChampionEvent | None:
    """The switch that made ``version`` the champion (the newest one naming it)."""
    with db.read_session() as session:
        query = select(ChampionEvent).where(ChampionEvent.version == version).order_by(col(ChampionEvent.id).desc())
        return session.exec(query).first()


def training_batches(db: Database, version: str) -> list[Batch]:
    """The CRM batches a version was trained on, oldest first."""
    with db.read_session() as session:
        row = session.exec(select(ModelVersion).where(ModelVersion.version == version)).first()
        ids = [int(b) for b in (row.batch_ids if row is not None else [])]
        if not ids:
            return []
        return list(session.exec(select(Batch).where(col(Batch.id).in_(ids)).order_by(col(Batch.id))).all())


def training_data_lines(info: VersionInfo, report: dict[str, Any], batches: list[Batch]) -> list[str]:
    split = report.get("split")
    clients = split.get("clients") if isinstance(split, dict) else None
    if isinstance(clients, dict) and clients:
        # An event model: one row per client and observation date.
        line = (f"Trained on {info.train_rows} rows of event history: {sum(clients.values())} clients, one row "
                "per client and observation date")
    else:
        line = f"Trained on {info.train_rows} labelled clients"
    if batches:
        shown = ", ".join(f"#{batch.id} {batch.source_name} ({batch.row_count} rows, {batch.received_at:%Y-%m-%d})"
                          for batch in batches[:5])
        more = f" and {len(batches) - 5} more" if len(batches) > 5 else ""
        line += f" from batch(es) {shown}{more}"
    lines = [f"{line}; seed {info.seed}, {info.training_seconds:.0f} s of training."]
    found = report.get("validation")
    validation: dict[str, Any] = found if isinstance(found, dict) else {}
    if isinstance(split, dict):
        parts = [f"{name} {split[name]['rows']} ({split[name].get('positives', '?')} churners)"
                 for name in ("train", "validation", "test")
                 if isinstance(split.get(name), dict) and "rows" in split[name]]
        if parts and validation.get("kind") == "out_of_time":
            tested = ", ".join(str(d)[:10] for d in validation.get("test_dates") or [])
            lines.append(f"Validated out of time: tested on the newest period ({tested}), the threshold set on "
                         "later months scored by models of earlier months. Rows: " + ", ".join(parts) + ".")
        elif parts:
            how = "by client: no client on two sides" if isinstance(clients, dict) and clients else "stratified"
            lines.append(f"Split ({how}): " + ", ".join(parts) + ".")
    expected = validation.get("predicted_recall")
    predicted: dict[str, Any] = expected if isinstance(expected, dict) else {}
    if predicted and predicted.get("estimate") is not None and predicted.get("low") is not None:
        lines.append(f"Expected recall next period: {predicted['estimate']:.0%} "
                     f"({predicted['low']:.0%}–{predicted['high']:.0%}).")
    signal = report.get("signal")
    if isinstance(signal, dict) and signal.get("message"):
        lines.append(str(signal["message"])[0].upper() + str(signal["message"])[1:])
    return lines


def card_charts(directory: Path) -> list[tuple[Path, str]]:
    """The model card's charts in the card's order, each with a caption."""
    found = []
    for key, name in {**card.CHARTS, **card.TIME_CHARTS}.items():
        path = directory / name
        if path.is_file():
            found.append((path, CHART_TITLES.get(key, key.replace("_", " ").capitalize())))
    return found[:MAX_CHARTS]


def summary_lines(report: dict[str, Any], info: VersionInfo) -> list[str]:
    """The card's own summary (verdict, test metrics against the baselines, ROI) when the report
    has it; the stored metrics otherwise (an older or partial report)."""
    try:
        return card.summary_text(report).splitlines()
    except (KeyError, TypeError, ValueError):
        return test_metrics_lines(report or {"metrics": info.metrics.get("metrics")})


def read_report(info: VersionInfo) -> dict[str, Any]:
    try:
        loaded = json.loads((info.artifact_dir / REPORT_FILE).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return loaded if isinstance(loaded, dict) else {}


def model_answer(svc: Services) -> ModelAnswer:
    """In a worker thread: the champion's summary and its chart files."""
    registry = svc.registry
    info: VersionInfo | None = registry.champion() if registry is not None else None
    if info is None:
        return ModelAnswer(NO_CHAMPION_TEXT)
    report = read_report(info)
    event = crowned(svc.db, info.version)
    since = f"champion since {event.at:%Y-%m-%d %H:%M} UTC" if event is not None else "champion"
    was = f", replacing {event.previous_version}" if event is not None and event.previous_version else ""
    lines = [f"Champion model {info.version} ({since}{was}; trained {info.created_at:%Y-%m-%d %H:%M} UTC).",
             f"A client is flagged for contact when the churn probability is ≥ {info.threshold:.1%}."]
    lines += summary_lines(report, info)
    lines += training_data_lines(info, report, training_batches(svc.db, info.version))
    problem = registry.check(info.version)
    if problem:
        lines.append(f"Warning: this version's files are damaged ({problem}); an older version is serving.")
        return ModelAnswer("\n".join(lines))
    charts = card_charts(info.artifact_dir)
    if charts:
        lines.append(f"{len(charts)} model card chart(s) follow.")
    return ModelAnswer("\n".join(lines), charts)


async def model(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    svc = services(context)
    chat = update.effective_chat
    if chat is None:
        return
    answer = await svc.offload(model_answer, svc)
    await reply(update, context, answer.text, filename="model.txt")
    if not answer.charts:
        return
    await show_activity(context, chat.id, ChatAction.UPLOAD_PHOTO)
    payloads = await svc.offload(lambda: [(path.read_bytes(), path.name, title)
                                                for path, title in answer.charts])
    # One sendPhoto per chart rather than sendMediaGroup: the bot only relies on the core Bot
    # API methods, which every self-hosted server and emulator implements.
    for data, name, title in payloads:
        await context.bot.send_photo(chat.id, photo=data, filename=name, caption=truncate(title, CAPTION_LIMIT))


COMMANDS = (Command("model", "the champion model: threshold, test metrics, charts", Role.VIEWER, model),)

__all__ = ["COMMANDS", "NO_CHAMPION_TEXT", "card_charts", "model", "model_answer"]
