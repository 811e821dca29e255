"""Where a trained challenger goes: champion at once, or a candidate that runs in shadow first.

``CHURNGUARD_PROMOTION`` is the policy.  ``gate`` (the default) lets a challenger that passes
the acceptance gate replace the champion at once.  ``shadow`` keeps it as a ``candidate``:
with ``CHURNGUARD_SHADOW=on`` it scores every arriving client beside the champion, shown to
nobody, and the performance job promotes or retires it once outcomes of clients neither model
trained on say so (model/monitoring/shadow.py holds the rule, jobs/shadow.py acts on it).

The first model of a store is champion at once under either policy: there is nothing to run
beside.  One candidate shadows at a time, the newest; a newer one *supersedes* the older ones,
which are rejected with that reason (audited), so ``churnguard models`` never shows a pile of
candidates nobody judges.  ``churnguard promote VERSION`` still overrides everything.

Every training path asks :func:`promotes_at_once` (the retrain job, ``churnguard train``), so
the policy cannot be bypassed by training another way.
"""

from __future__ import annotations

from typing import Any

from model.registry import CANDIDATE, Registry

PROMOTION_GATE, PROMOTION_SHADOW = "gate", "shadow"


def shadow_promotion(settings: Any) -> bool:
    """True when challengers must win in shadow before they are promoted (``CHURNGUARD_PROMOTION=shadow``)."""
    return str(getattr(settings, "promotion", PROMOTION_GATE)) == PROMOTION_SHADOW


def shadow_enabled(settings: Any) -> bool:
    """True when the newest candidate scores arriving clients beside the champion (``CHURNGUARD_SHADOW=on``)."""
    return bool(getattr(settings, "shadow", False))


def promotes_at_once(settings: Any, registry: Registry[Any]) -> bool:
    """Whether a challenger that passes the gate becomes champion now: always under ``gate``, and
    under ``shadow`` only when there is no champion to run beside."""
    return not shadow_promotion(settings) or registry.champion() is None


def supersede(registry: Registry[Any], newest: str, *, actor: str) -> list[str]:
    """Reject the candidates older than ``newest`` (a candidate itself): only the newest runs in shadow."""
    newest_info = registry.get(newest)
    if newest_info.status != CANDIDATE:
        return []
    superseded = []
    for info in registry.list_versions():  # oldest first
        if info.version == newest_info.version:
            break
        if info.status == CANDIDATE:
            registry.reject(info.version, actor,
                            f"superseded by {newest_info.version} before its shadow comparison decided")
            superseded.append(info.version)
    return superseded


__all__ = ["PROMOTION_GATE", "PROMOTION_SHADOW", "promotes_at_once", "shadow_enabled", "shadow_promotion",
           "supersede"]
