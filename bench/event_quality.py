"""Event-model quality: does the recall guarantee hold on clients the model never saw?

For each seed, simulator-shaped raw tables (account, subscription, event, event_type, as the
churn simulator of *Fighting Churn with Data* writes them; tests/storage/events/
simulator_tables.py) are generated, ingested through the same function as
``churnguard ingest --kind K --mapping fightchurn.toml``, and ``train_and_register`` runs with
the default settings (event source, monthly observation dates, windows 7/30/90, split by
client).  Reported per seed: test recall and precision on the unseen test clients, PR-AUC
against the logistic baseline, and the gate's verdict.

Target (issue 6): recall >= 0.90 on the test clients in at least 9 of 10 seeds.

    python bench/event_quality.py                           # 10 seeds x 3,000 initial accounts
    python bench/event_quality.py --seeds 2 --accounts 600  # smoke run

Prints a table and writes bench/results/event_quality.json.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from churnguard import Settings  # noqa: E402
from model.service import train_and_register  # noqa: E402
from storage.db import Database  # noqa: E402
from storage.events.ingest import ingest_events  # noqa: E402
from storage.events.mapping import load_mapping_file  # noqa: E402
from storage.events.sample import SAMPLE_DIR  # noqa: E402
from tests.storage.events.simulator_tables import write_simulator_tables  # noqa: E402

TARGET = 0.90
MAPPING = SAMPLE_DIR / "fightchurn.toml"


def one_seed(seed: int, accounts: int, tuning_seconds: float, workdir: Path) -> dict[str, Any]:
    folder = workdir / f"seed{seed}"
    started = time.perf_counter()
    files = write_simulator_tables(folder / "raw", initial=accounts, seed=seed)
    db = Database(f"sqlite:///{(folder / 'store.db').as_posix()}").create_schema()
    try:
        for path, kind in ((files.account, "clients"), (files.subscription, "subscriptions"),
                           (files.event_type, "event_types"), (files.event, "usage")):
            ingest_events(db, path, kind=kind, mapping=load_mapping_file(MAPPING, kind))
        settings = Settings(home=folder / "home", database_url=db.url, training_source="events",
                            tuning_seconds=tuning_seconds, seed=seed)
        result = train_and_register(db, settings)
    finally:
        db.dispose()
    report = result.report
    test = report["metrics"]["test"]
    split = report["split"]
    return {
        "seed": seed, "accounts": files.accounts, "events": files.events,
        "test_rows": split["test"]["rows"], "test_clients": split["clients"]["test"],
        "test_churners": split["test"]["positives"],
        "recall": test["lightgbm"]["recall"], "precision": test["lightgbm"]["precision"],
        "pr_auc": test["lightgbm"]["pr_auc"], "logistic_pr_auc": test["logistic"]["pr_auc"],
        "logistic_recall": test["logistic"]["recall"], "status": result.status,
        "seconds": round(time.perf_counter() - started, 1),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seeds", type=int, default=10)
    parser.add_argument("--accounts", type=int, default=3000, help="initial accounts of each simulation")
    parser.add_argument("--tuning-seconds", type=float, default=20.0)
    parser.add_argument("--out", type=Path, default=REPO / "bench" / "results" / "event_quality.json")
    args = parser.parse_args(argv)
    rows = []
    with tempfile.TemporaryDirectory(prefix="churnguard-event-quality-") as workdir:
        for seed in range(1, args.seeds + 1):
            row = one_seed(seed, args.accounts, args.tuning_seconds, Path(workdir))
            rows.append(row)
            print(f"seed {seed}: recall {row['recall']:.3f} on {row['test_clients']} unseen clients, "
                  f"PR-AUC {row['pr_auc']:.3f} vs logistic {row['logistic_pr_auc']:.3f}, {row['status']} "
                  f"({row['seconds']} s)", flush=True)
    met = sum(row["recall"] >= TARGET for row in rows)
    champions = sum(row["status"] == "champion" for row in rows)
    print()
    print(f"{'seed':>4} {'clients':>8} {'churners':>8} {'recall':>7} {'precision':>9} {'PR-AUC':>7} {'logistic':>8}  status")
    for row in rows:
        print(f"{row['seed']:>4} {row['test_clients']:>8} {row['test_churners']:>8} {row['recall']:>7.3f} "
              f"{row['precision']:>9.3f} {row['pr_auc']:>7.3f} {row['logistic_pr_auc']:>8.3f}  {row['status']}")
    verdict = "PASS" if met >= round(0.9 * len(rows)) else "FAIL"
    print(f"\n{verdict}  recall >= {TARGET:.2f} on unseen clients in {met}/{len(rows)} seeds "
          f"(target >= {round(0.9 * len(rows))}); gate passed in {champions}/{len(rows)}")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps({"target": TARGET, "seeds_meeting_target": met, "champions": champions,
                                    "runs": rows}, indent=2))
    print(f"written to {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
