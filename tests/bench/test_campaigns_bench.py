"""bench/campaigns.py in a small run: the JSON it writes, and its verdicts for a fixed seed."""

from __future__ import annotations

import importlib.util
import json
import sys
from pathlib import Path

from tests.conftest import REPO


def load_bench():
    spec = importlib.util.spec_from_file_location("bench_campaigns", REPO / "bench" / "campaigns.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up while the class is built
    spec.loader.exec_module(module)
    return module


def test_a_small_run_writes_every_verdict_and_the_store_agrees_with_the_core(tmp_path: Path, capsys):
    bench = load_bench()
    output = tmp_path / "campaigns.json"

    assert bench.main(["--campaigns", "40", "--end-to-end", "2", "--seed", "7", "--output", str(output)]) == 0

    result = json.loads(output.read_text())
    printed = capsys.readouterr().out
    assert "coverage" in printed and "stated power at creation vs detection rate" in printed
    assert result["settings"]["campaigns_each"] == 40 and len(result["runs"]) == 80
    assert {"coverage", "false_significance", "power", "end_to_end", "passed"} <= set(result)
    # A smoke run of 40 + 40 campaigns: the targets themselves are the full bench's (200 + 200);
    # here broken intervals or power would show as far-off figures.
    assert result["coverage"]["value"] >= 0.85 and result["false_significance"]["value"] <= 0.15
    assert abs(result["power"]["gap"]) <= 0.15
    assert all(150 <= run["members"] <= 2500 for run in result["runs"])
    stored = result["end_to_end"]["campaigns"]
    assert len(stored) == 2 and all(row["matches_in_memory"] and row["pending"] == 0 for row in stored)
    assert all(row["held_out"] > 0 for row in stored)
    for run in result["runs"]:
        assert run["low"] <= run["estimate"] <= run["high"] and 0 <= run["stated_power"] <= 1
