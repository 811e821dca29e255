"""Memory of the whole-contact-list export (/export, `churnguard export`): bounded by construction?

``Scorer.flagged_ranking`` ranks every active client (ids and probabilities only) and then
explains one ranked chunk at a time, which model/export.py writes straight into the CSV and
the XLSX (XlsxWriter in constant_memory mode).  So writing the documents should cost the same
few megabytes whatever the length of the list, while building the list as one DataFrame and
writing it with pandas grows with it.

Two stores (Telco to train on, plus ``--clients`` / 4 and ``--clients`` synthetic clients,
resampled Telco rows under new ids) share one model.  For each, every mode runs in its own
process.  The process opens the store and ranks (the first pass, which loads the client table
as /top does and is the same for every mode: its peak is reported as "ranking peak"), then
resets its peak-RSS mark (Linux: ``/proc/self/clear_refs``) and makes the documents; "export
MB" is the peak RSS of that phase above the RSS it started from:

* ``csv``, ``xlsx``, ``both``: the streamed export into one or both documents (the bot's case);
* ``pandas-csv``, ``pandas-xlsx``: the floor to beat, the usual way: the same rows (same
  chunks, same reasons) collected into one DataFrame, then ``to_csv`` / ``to_excel``
  (xlsxwriter in its default mode).

The streamed export passes when its export MB on the large store is within 1.5x (+ 20 MB) of
the small store's, i.e. it does not grow with the list, and below pandas' on the large store.

    python bench/export.py                      # 25k and 100k clients
    python bench/export.py --clients 20000      # smoke run (5k and 20k)

Prints a table and writes bench/results/export.json.
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

RESULTS = ROOT / "bench" / "results"
MODES = ("csv", "xlsx", "both", "pandas-csv", "pandas-xlsx")
STREAMED = ("csv", "xlsx", "both")


def _status(field: str) -> float | None:
    """A /proc/self/status figure in MB (Linux), None elsewhere."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith(f"{field}:"):
                return int(line.split()[1]) / 1024.0
    except OSError:
        pass
    return None


def peak_rss_mb() -> float:
    """This process's peak RSS.  VmHWM, not ``ru_maxrss``: Linux carries ``ru_maxrss`` across
    exec, so a child started by a parent holding a trained store would report the parent's size."""
    found = _status("VmHWM")
    return found if found is not None else resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def rss_mb() -> float:
    found = _status("VmRSS")
    return found if found is not None else peak_rss_mb()


def reset_peak() -> bool:
    """Start a new peak-RSS mark (Linux >= 4.0); False where that is not possible."""
    try:
        Path("/proc/self/clear_refs").write_text("5")
    except OSError:
        return False
    return True


def settings_for(home: Path) -> Any:
    from churnguard import Settings

    return Settings(_env_file=None, home=home, tuning_seconds=5.0)  # type: ignore[call-arg]


def build_stores(base: Path, clients: int, seed: int) -> dict[int, Path]:
    """Two homes with Telco plus ``clients // 4`` and ``clients`` synthetic clients, one model."""
    from bench.latency import SCHEMA, synthetic_clients
    from churnguard import SAMPLE_DATA
    from model.registry import NewVersion
    from model.service import open_registry, train_and_register
    from storage.db import Database
    from storage.ingest import ingest_file, ingest_frame
    from storage.readers import Limits

    homes: dict[int, Path] = {}
    trained: Any = None
    for size in (clients // 4, clients):
        home = base / f"home-{size}"
        settings = settings_for(home)
        db = Database(settings.database_url).create_schema()
        ingest_file(db, SAMPLE_DATA, schema=SCHEMA)
        ingest_frame(db, synthetic_clients(size, seed), schema=SCHEMA, limits=Limits(max_rows=10_000_000),
                     source_name="bench-clients")
        registry = open_registry(db, settings)
        if trained is None:
            trained = train_and_register(db, settings, seed=seed, actor="bench", registry=registry).info
            if trained.status != "champion":
                registry.promote(trained.version, actor="bench")
        else:
            source = trained.artifact_dir

            def write(directory: Path, _version: str, source: Path = source) -> None:
                for item in source.iterdir():
                    if item.name != "manifest.json":
                        shutil.copyfile(item, directory / item.name)

            registry.register(write, NewVersion(threshold=trained.threshold, seed=seed, train_rows=trained.train_rows),
                              promote=True, actor="bench")
        db.dispose()
        homes[size] = home
    return homes


def child(mode: str, home: Path, folder: Path) -> dict[str, Any]:
    """One mode in this process; returns its figures."""
    import pandas as pd

    from model.export import rows_of, when, write_list
    from model.service import open_registry, open_scorer
    from storage.db import Database

    settings = settings_for(home)
    db = Database(settings.database_url).create_schema()
    scorer = open_scorer(db, settings, open_registry(db, settings))
    scorer.registry.serving()  # the model is loaded before the clock starts
    ranked = scorer.flagged_ranking()  # the first pass: every mode pays the same
    ranking_peak = peak_rss_mb()
    gc.collect()
    start_rss = rss_mb()
    reset = reset_peak()
    started = time.perf_counter()
    if mode in STREAMED:
        targets = {"csv": [".csv"], "xlsx": [".xlsx"], "both": [".csv", ".xlsx"]}[mode]
        rows = write_list(ranked, [folder / f"list{suffix}" for suffix in targets]).rows
    else:
        collected: list[dict[str, Any]] = []
        for chunk in ranked.chunks:
            collected += [asdict(row) for row in rows_of(chunk, len(collected) + 1, when(ranked.as_of))]
        frame = pd.DataFrame(collected)
        frame[["reason_1", "reason_2", "reason_3"]] = pd.DataFrame(frame.pop("reasons").tolist())
        if mode == "pandas-csv":
            frame.to_csv(folder / "list.csv", index=False)
        else:
            frame.to_excel(folder / "list.xlsx", index=False, engine="xlsxwriter")
        rows = len(frame)
    seconds = time.perf_counter() - started
    phase_peak = peak_rss_mb()
    db.dispose()
    return {"mode": mode, "rows": rows, "active": ranked.active, "flagged": ranked.total, "seconds": seconds,
            "ranking_peak_mb": ranking_peak, "export_start_mb": start_rss,
            "export_peak_mb": phase_peak if reset else max(phase_peak - ranking_peak, 0.0) + start_rss,
            "export_mb": (phase_peak if reset else max(phase_peak, ranking_peak)) - start_rss,
            "peak_reset": reset}


def run_child(mode: str, home: Path) -> dict[str, Any]:
    with tempfile.TemporaryDirectory(prefix="churnguard-export-bench-") as folder:
        out = subprocess.run([sys.executable, __file__, "--child", mode, "--home", str(home), "--folder", folder],
                             check=True, capture_output=True, text=True, env=os.environ)
    result: dict[str, Any] = json.loads(out.stdout.strip().splitlines()[-1])
    return result


def table(results: list[dict[str, Any]]) -> str:
    header = (f"{'clients':>8}  {'mode':<12} {'rows':>8} {'seconds':>8} {'ranking peak MB':>16} "
              f"{'export MB':>10}")
    lines = [header, "-" * len(header)]
    for item in results:
        lines.append(f"{item['clients']:>8,}  {item['mode']:<12} {item['rows']:>8,} {item['seconds']:>8.1f} "
                     f"{item['ranking_peak_mb']:>16.0f} {item['export_mb']:>10.1f}")
    return "\n".join(lines)


def verdicts(results: list[dict[str, Any]], small: int, large: int) -> dict[str, Any]:
    extra = {(item["clients"], item["mode"]): item["export_mb"] for item in results}
    pandas_large = min(extra[(large, "pandas-csv")], extra[(large, "pandas-xlsx")])
    checks = {}
    for mode in STREAMED:
        flat = extra[(large, mode)] <= 1.5 * max(extra[(small, mode)], 0.0) + 20.0
        below = extra[(large, mode)] < pandas_large
        checks[mode] = {"export_small_mb": extra[(small, mode)], "export_large_mb": extra[(large, mode)],
                        "pandas_large_mb": pandas_large, "flat_in_list_length": flat, "below_pandas": below,
                        "ok": flat and below}
    return checks


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--clients", type=int, default=100_000, help="synthetic clients of the large store")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", type=Path, default=RESULTS / "export.json")
    parser.add_argument("--child", choices=MODES, help=argparse.SUPPRESS)
    parser.add_argument("--home", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--folder", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        print(json.dumps(child(args.child, args.home, args.folder)))
        return
    results: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory(prefix="churnguard-export-bench-") as tmp:
        started = time.perf_counter()
        homes = build_stores(Path(tmp), args.clients, args.seed)
        print(f"built the stores in {time.perf_counter() - started:.0f} s", file=sys.stderr)
        for size, home in homes.items():
            for mode in MODES:
                item = {"clients": size, **run_child(mode, home)}
                results.append(item)
                print(f"  {size:,} clients, {mode}: {item['export_mb']:.1f} MB to export {item['rows']:,} rows",
                      file=sys.stderr)
        # the stores' model folders are read-only: give write bits back before the folder goes
        for path in Path(tmp).rglob("*"):
            if path.is_dir():
                path.chmod(0o755)
    small, large = sorted(homes)
    checks = verdicts(results, small, large)
    print(table(results))
    print()
    for mode, check in checks.items():
        print(f"{mode:<5} export {check['export_small_mb']:.1f} MB at {small:,} clients, "
              f"{check['export_large_mb']:.1f} MB at {large:,}: {'flat' if check['flat_in_list_length'] else 'GROWS'}, "
              f"{'below' if check['below_pandas'] else 'NOT below'} pandas ({check['pandas_large_mb']:.1f} MB) -> "
              f"{'ok' if check['ok'] else 'FAIL'}")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps({"results": results, "checks": checks, "clients": [small, large]}, indent=2))
    print(f"\nwrote {args.out}")


if __name__ == "__main__":
    main()
