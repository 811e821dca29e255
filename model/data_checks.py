"""What the training data may be hiding, said before anyone trusts the model it produced.

Three things used to pass silently:

* **Leaking columns.**  Ingest warns about a column that gives the label away
  (``storage.validation.leak_warnings``: BankChurners' two ``Naive_Bayes_Classifier_*``
  columns are another model's output, trained on the label), and the warning is stored
  with the batch.  Training then used the column anyway and registered a "perfect" champion
  (ROC-AUC 1.000, threshold 1.000) that fails on live clients, whose churn is not known
  yet.  A flagged column is now left out of training unless the deployment keeps it
  (``CHURNGUARD_KEEP_LEAKING_COLUMNS``), and the report says which and how to keep it.
* **Usage event types without columns.**  Event features give columns to the most
  frequent ``CHURNGUARD_MAX_EVENT_TYPES`` types only; the ones left out are named.
* **A score too good to be true.**  A test ROC-AUC of ``SUSPICIOUS_ROC_AUC`` or more is
  called suspicious in the card, the training reply and ``train --json``.  The level is
  0.999, not 0.99: BankChurners without its leaking columns honestly reaches 0.994-0.997
  (three seeds), and a warning on every honest retrain would teach people to ignore it;
  with one leaking column kept it reaches 1.000.

These are warnings, not refusals: the acceptance gate still decides.  They go into the
training report as ``warnings`` (plain sentences) and ``data_checks`` (the facts).
"""

from __future__ import annotations

from collections.abc import Collection, Mapping
from dataclasses import dataclass, field
from typing import Any

import pandas as pd
from sqlmodel import col, select

from storage.clients import CLIENTS
from storage.db import Database
from storage.tables import Batch
from storage.validation import LEAK_PREFIX

SUSPICIOUS_ROC_AUC = 0.999
LEAK_REASON = "may leak the label (flagged at ingest)"
_SHOWN_TYPES = 10


@dataclass
class LeakExclusion:
    """Columns flagged at ingest as leaking the label: left out of training, or kept."""

    excluded: dict[str, str] = field(default_factory=dict)  # column -> why it was flagged
    kept: dict[str, str] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        return {"excluded": dict(self.excluded), "kept": dict(self.kept)}


def flagged_leaks(db: Database) -> dict[str, str]:
    """Every column a stored client batch was warned about as leaking the label, with the
    reason (the newest batch's words).  All batches count: a record may carry a column
    forward from an older batch than its own."""
    with db.read_session() as session:
        batches = session.exec(select(Batch).where(Batch.kind == CLIENTS).order_by(col(Batch.id))).all()
    flagged: dict[str, str] = {}
    for batch in batches:
        for warning in batch.warnings or []:
            column, message = warning.get("column"), str(warning.get("message", ""))
            if column and message.startswith(LEAK_PREFIX):
                flagged[str(column)] = message[len(LEAK_PREFIX):].split("; ")[0]  # the reasons alone
    return flagged


def exclude_leaks(frame: pd.DataFrame, flagged: Mapping[str, str], *, keep: Collection[str] = (),
                  ignored: Collection[str] = ()) -> tuple[pd.DataFrame, LeakExclusion]:
    """The training frame without the flagged columns the deployment did not choose to keep.
    Columns already ignored by the schema are not mentioned: they never were features."""
    present = {column: why for column, why in flagged.items() if column in frame.columns and column not in ignored}
    leaks = LeakExclusion(excluded={c: w for c, w in present.items() if c not in keep},
                          kept={c: w for c, w in present.items() if c in keep})
    if not leaks.excluded:
        return frame, leaks
    attrs = dict(frame.attrs)
    out = frame.drop(columns=list(leaks.excluded))
    out.attrs.update(attrs)
    return out, leaks


def review(report: dict[str, Any], *, leaks: LeakExclusion | None = None,
           spec: Mapping[str, Any] | None = None, max_event_types: int | None = None) -> None:
    """Add ``data_checks`` and ``warnings`` to a training report (in place), and list the
    left-out columns among the report's dropped columns."""
    warnings: list[str] = []
    checks: dict[str, Any] = {}
    if leaks is not None:
        checks["leaking_columns"] = leaks.as_dict()
        if leaks.excluded:
            names = ", ".join(leaks.excluded)
            reasons = "; ".join(dict.fromkeys(leaks.excluded.values()))
            it, them = ("it", "it") if len(leaks.excluded) == 1 else ("they", "them")
            warnings.append(
                f"left out of training, flagged at ingest as leaking the label: {names} ({reasons}). A column "
                "known only once a client has churned makes a model look perfect on history and useless on live "
                f"clients. If {it} {'is' if it == 'it' else 'are'} known before churn, keep {them} with "
                f"CHURNGUARD_KEEP_LEAKING_COLUMNS={','.join(leaks.excluded)}; if not, add {them} to "
                "CHURNGUARD_IGNORE_COLUMNS")
            dropped = report.setdefault("processing", {}).setdefault("dropped_columns", {})
            for column in leaks.excluded:
                dropped[column] = LEAK_REASON
        if leaks.kept:
            warnings.append("kept although flagged at ingest as leaking the label (CHURNGUARD_KEEP_LEAKING_COLUMNS): "
                            + ", ".join(leaks.kept))
    if spec is not None:
        kept_types = list(spec.get("event_types", []))
        dropped_types = list(spec.get("dropped_types", []))
        checks["event_types"] = {"used": len(kept_types), "left_out": dropped_types, "cap": max_event_types}
        if dropped_types:
            shown = ", ".join(dropped_types[:_SHOWN_TYPES]) + (
                f" and {len(dropped_types) - _SHOWN_TYPES} more" if len(dropped_types) > _SHOWN_TYPES else "")
            warnings.append(
                f"{len(dropped_types)} of {len(kept_types) + len(dropped_types)} usage event types have no feature "
                f"columns, only the {len(kept_types)} most frequent (CHURNGUARD_MAX_EVENT_TYPES"
                + (f"={max_event_types}" if max_event_types is not None else "")
                + f"): left out {shown}. Rare events such as cancellations can be the most telling; raise the "
                "setting to use them (they still count in the all-event totals)")
    suspicious = suspicious_score(report)
    checks["suspicious_score"] = suspicious is not None
    if suspicious is not None:
        warnings.append(suspicious)
    report["data_checks"] = checks
    report["warnings"] = warnings


def suspicious_score(report: Mapping[str, Any]) -> str | None:
    """The warning for a near-perfect test ROC-AUC, naming the features the model leans on."""
    test = ((report.get("metrics") or {}).get("test") or {}).get("lightgbm") or {}
    auc = test.get("roc_auc")
    if auc is None or float(auc) < SUSPICIOUS_ROC_AUC:
        return None
    top = list((report.get("feature_importances") or {}).keys())[:3]
    leaning = f" It leans most on {', '.join(top)}." if top else ""
    return (f"suspiciously good: test ROC-AUC {float(auc):.4f} (at least {SUSPICIOUS_ROC_AUC}); churn is rarely "
            f"this predictable, so a feature probably records the outcome itself.{leaning} Check that every "
            "feature is known before a client churns before relying on this model")


__all__ = ["LEAK_REASON", "SUSPICIOUS_ROC_AUC", "LeakExclusion", "exclude_leaks", "flagged_leaks", "review",
           "suspicious_score"]
