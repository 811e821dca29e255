"""A .csv.gz is refused while it is decompressed, as soon as it passes the limit, before memory
grows: a one-megabyte archive that inflates to half a gigabyte must not take half a gigabyte.

Memory is measured in a fresh interpreter (the peak resident set size, ``ru_maxrss``, before
and after the read), so other tests' allocations cannot hide or fake a growth.  No timing.
"""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap

from tests.conftest import REPO

SCRIPT = textwrap.dedent("""
    import gzip, json, resource, sys
    from storage.errors import IngestRejected
    from storage.readers import Limits, parse_bytes

    inflated_mb, limit_mb = int(sys.argv[1]), float(sys.argv[2])
    member = gzip.compress(b"id,spend,Churn\\n" + b"1,5,Yes\\n" * (2 << 20), compresslevel=9)  # 16 MB of CSV
    bomb = member * (inflated_mb // 16)  # gzip members one after another: one valid archive
    del member
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    try:
        parse_bytes(bomb, source_name="bomb.csv.gz", limits=Limits(max_file_mb=limit_mb))
        outcome = {"problem": None, "message": ""}
    except IngestRejected as error:
        outcome = {"problem": error.details["problem"], "message": str(error)}
    after = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    print(json.dumps({**outcome, "compressed_mb": len(bomb) / 2**20, "growth_mb": (after - before) / 1024}))
""")


def measure(inflated_mb: int, limit_mb: float) -> dict[str, object]:
    done = subprocess.run([sys.executable, "-c", SCRIPT, str(inflated_mb), str(limit_mb)], cwd=REPO,
                          capture_output=True, text=True, timeout=300, env={"PYTHONPATH": str(REPO)}, check=True)
    result: dict[str, object] = json.loads(done.stdout)
    return result


def test_a_gzip_bomb_is_refused_with_memory_staying_flat():
    result = measure(inflated_mb=512, limit_mb=200)

    assert result["problem"] == "too_big"
    assert "decompresses to more than the limit of 200 MB (CHURNGUARD_MAX_FILE_MB)" in str(result["message"])
    assert float(result["compressed_mb"]) < 5  # a small upload...
    assert float(result["growth_mb"]) < 40, result  # ...that never inflated past a few chunks in memory
