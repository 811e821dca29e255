"""Latency benchmark: single-client scoring from storage, and batch scoring throughput.

1. Single client: a store holding Telco (to train on) plus 100k more clients; ``Scorer.
   score_client`` — database lookup, history rule, probability and the top-3 explanation — is
   timed over 2000 calls on random ids.  Target p99 <= 5 ms (the brief allows 1 s).
2. Batch: 1M clients (Telco rows resampled) scored through ``ChurnModel.predict_proba_frame``
   in chunks, in a separate process so its peak RSS is its own.  Targets >= 250k rows/s and
   peak RSS <= 2 GB.  The stored path (``Scorer.score_all`` over the 100k store, predictions
   written) is reported too.

    python bench/latency.py                  # full size
    python bench/latency.py --clients 20000 --batch-rows 200000 --calls 500   # smoke run

Prints a table and writes bench/results/latency.json.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from churnguard import SAMPLE_DATA, Settings  # noqa: E402
from model.artifact import ChurnModel  # noqa: E402
from model.service import open_registry, open_scorer, train_and_register  # noqa: E402
from storage.db import Database  # noqa: E402
from storage.ingest import ingest_file, ingest_frame  # noqa: E402
from storage.readers import Limits, read_table  # noqa: E402
from storage.schema import Schema  # noqa: E402

RESULTS = ROOT / "bench" / "results"
SCHEMA = Schema("customerID", "Churn", "Yes")


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def synthetic_clients(n: int, seed: int) -> pd.DataFrame:
    """Telco rows resampled under new ids, without the label: a large unlabelled scoring batch."""
    telco = read_table(SAMPLE_DATA, limits=Limits(), keep_text=("customerID", "Churn")).frame
    rng = np.random.default_rng(seed)
    frame = telco.iloc[rng.integers(0, len(telco), n)].drop(columns=["Churn"]).reset_index(drop=True)
    frame["customerID"] = [f"B{i:07d}" for i in range(n)]
    return frame


def single_client(home: Path, clients: int, calls: int, seed: int) -> dict[str, Any]:
    settings = Settings(home=home, tuning_seconds=5.0)  # type: ignore[call-arg]
    db = Database(settings.database_url).create_schema()
    ingest_file(db, SAMPLE_DATA, schema=SCHEMA)
    started = time.perf_counter()
    result = train_and_register(db, settings, seed=seed, actor="bench")
    train_seconds = time.perf_counter() - started
    started = time.perf_counter()
    ingest_frame(db, synthetic_clients(clients, seed), schema=SCHEMA, limits=Limits(max_rows=10_000_000),
                 source_name="bench-clients")
    ingest_seconds = time.perf_counter() - started
    registry = open_registry(db, settings)
    scorer = open_scorer(db, settings, registry)
    rng = np.random.default_rng(seed)
    ids = [f"B{i:07d}" for i in rng.integers(0, clients, calls)]
    for cid in ids[:50]:  # warm-up: model load, caches, SQLite page cache
        scorer.score_client(cid)
    timings = np.empty(calls)
    statuses: dict[str, int] = {}
    for i, cid in enumerate(ids):
        t0 = time.perf_counter_ns()
        answer = scorer.score_client(cid)
        timings[i] = (time.perf_counter_ns() - t0) / 1e6
        statuses[answer.status] = statuses.get(answer.status, 0) + 1
    started = time.perf_counter()
    run = scorer.score_all()
    score_all_seconds = time.perf_counter() - started
    scored = int(run.to_dict().get("scored", 0) or 0)
    db.dispose()
    return {
        "model_version": result.version,
        "train_seconds": train_seconds,
        "stored_clients": clients + 7043,
        "ingest_seconds": ingest_seconds,
        "calls": calls,
        "statuses": statuses,
        "p50_ms": float(np.percentile(timings, 50)),
        "p99_ms": float(np.percentile(timings, 99)),
        "max_ms": float(timings.max()),
        "score_all_rows": scored,
        "score_all_seconds": score_all_seconds,
        "score_all_rows_per_s": scored / score_all_seconds if score_all_seconds else 0.0,
        "model_dir": str(result.info.artifact_dir),
    }


def batch_child(model_dir: str, rows: int, seed: int) -> None:
    """Runs in its own process: peak RSS then belongs to batch scoring alone."""
    model = ChurnModel.load(Path(model_dir))
    frame = synthetic_clients(rows, seed)
    built_rss = peak_rss_mb()
    chunk = 100_000
    started = time.perf_counter()
    flagged = 0
    for start in range(0, rows, chunk):
        probabilities = model.predict_proba_frame(frame.iloc[start:start + chunk])
        flagged += int((probabilities >= model.threshold_).sum())
    seconds = time.perf_counter() - started
    print(json.dumps({"rows": rows, "seconds": seconds, "rows_per_s": rows / seconds, "flagged": flagged,
                      "rss_after_building_frame_mb": built_rss, "peak_rss_mb": peak_rss_mb()}))


def batch(model_dir: str, rows: int, seed: int) -> dict[str, Any]:
    out = subprocess.run([sys.executable, __file__, "--child", model_dir, "--batch-rows", str(rows),
                          "--seed", str(seed)], check=True, capture_output=True, text=True, env=os.environ)
    result: dict[str, Any] = json.loads(out.stdout.strip().splitlines()[-1])
    return result


def table(single: dict[str, Any], many: dict[str, Any]) -> str:
    rows = [
        ("single client p50 (ms)", f"{single['p50_ms']:.3f}", ""),
        ("single client p99 (ms)", f"{single['p99_ms']:.3f}", "<= 5"),
        ("single client max (ms)", f"{single['max_ms']:.3f}", ""),
        ("stored clients", f"{single['stored_clients']:,}", ""),
        ("batch rows/s (model)", f"{many['rows_per_s']:,.0f}", ">= 250,000"),
        ("batch peak RSS (MB)", f"{many['peak_rss_mb']:,.0f}", "<= 2048"),
        ("batch rows", f"{many['rows']:,}", ""),
        ("score-all rows/s (stored, predictions written)", f"{single['score_all_rows_per_s']:,.0f}", ""),
    ]
    width = max(len(r[0]) for r in rows)
    lines = [f"{'measure':<{width}}  {'value':>12}  target", "-" * (width + 26)]
    lines += [f"{name:<{width}}  {value:>12}  {target}" for name, value, target in rows]
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--clients", type=int, default=100_000)
    parser.add_argument("--calls", type=int, default=2000)
    parser.add_argument("--batch-rows", type=int, default=1_000_000)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", type=Path, default=RESULTS / "latency.json")
    parser.add_argument("--child", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        batch_child(args.child, args.batch_rows, args.seed)
        return
    with tempfile.TemporaryDirectory(prefix="churnguard-latency-") as tmp:
        single = single_client(Path(tmp) / "home", args.clients, args.calls, args.seed)
        many = batch(single["model_dir"], args.batch_rows, args.seed)
    single["p99_ok"] = single["p99_ms"] <= 5.0
    many["rows_per_s_ok"] = many["rows_per_s"] >= 250_000
    many["peak_rss_ok"] = many["peak_rss_mb"] <= 2048
    print(table(single, many))
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps({"single_client": single, "batch": many}, indent=2))
    print(f"\nwrote {args.out}")


if __name__ == "__main__":
    main()
