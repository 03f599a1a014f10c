"""Reading + normalising a dataset: seconds per case, and the share normalisation adds.

Reads every case of a dataset (default: a 120-case sim campaign, made once
into ``--dataset`` if it does not exist) with :func:`llmrca.dataset.read_case`
with and without the normalisation step, ``--reps`` times each (interleaved),
and prints the median seconds per case and the share of the normalised read
that normalisation adds.  ``--foreign`` also times a copy of the dataset
rewritten as a foreign export that needs repairs (time in epoch ms, a saved
pandas index column, an all-NaN column, logs with a ns ``timestamp`` and
traces with ``startTimeMillis``).

    PYTHONPATH=src python benchmarks/bench_dataset.py [--dataset /tmp/ds120] [--reps 5] [--foreign]
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd

from llmrca.dataset.io import find_case_dirs, read_case


def _time_reads(dirs: list[Path], normalise: bool) -> float:
    t0 = time.perf_counter()
    for d in dirs:
        read_case(d, normalise=normalise, validate=False)
    return (time.perf_counter() - t0) / len(dirs)


def _make_foreign(src: Path, dst: Path) -> None:
    """Rewrite each case as a plain tree with ms time, a saved index, an all-NaN column, RE2-style logs/traces."""
    for d in find_case_dirs(src):
        out = dst / d.relative_to(src)
        out.mkdir(parents=True)
        df = pd.read_csv(d / "data.csv")
        df["time"] = (df["time"] * 1000).round().astype("int64")
        df["ray-head_DCGM_FI_DEV_FB_USED"] = np.nan
        df.to_csv(out / "data.csv")  # with the index column
        inject = float((d / "inject_time.txt").read_text())
        (out / "inject_time.txt").write_text(f"{int(inject * 1000)}\n")
        if (d / "logs.csv").exists():
            lg = pd.read_csv(d / "logs.csv")
            lg["timestamp"] = (lg["time"] * 1e9).astype("int64")
            lg["time"] = pd.to_datetime(lg["time"], unit="s", utc=True).dt.strftime("%Y-%m-%dT%H:%M:%S.%fZ")
            lg.to_csv(out / "logs.csv", index=False)
        if (d / "traces.csv").exists():
            tr = pd.read_csv(d / "traces.csv")
            tr["startTimeMillis"] = (tr.pop("startTime") / 1000).astype("int64")
            tr.to_csv(out / "traces.csv", index=False)


def _measure(label: str, dirs: list[Path], reps: int) -> None:
    raw, norm = [], []
    for _ in range(reps):
        raw.append(_time_reads(dirs, normalise=False))
        norm.append(_time_reads(dirs, normalise=True))
    r, n = statistics.median(raw), statistics.median(norm)
    share = max(n - r, 0.0) / n
    print(f"{label}: {len(dirs)} cases; read+normalise {n * 1000:.1f} ms/case, read only {r * 1000:.1f} ms/case; normalisation adds {share:.0%} ({(n - r) * 1000:.1f} ms/case)")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--dataset", type=Path, default=Path("/tmp/ds120"))
    ap.add_argument("--reps", type=int, default=5)
    ap.add_argument("--foreign", action="store_true", help="also time a foreign export of the same cases (repairs needed)")
    args = ap.parse_args()
    if not args.dataset.exists():
        print(f"making a 120-case sim campaign in {args.dataset} ...", file=sys.stderr)
        subprocess.run(
            [sys.executable, "-m", "llmrca", "campaign", "--backend", "sim", "--profile", "paper", "--out", str(args.dataset), "--quiet"],
            check=True,
        )
    dirs = find_case_dirs(args.dataset)
    _time_reads(dirs[:5], True)  # warm imports and caches
    _measure(f"ours ({args.dataset})", dirs, args.reps)
    if args.foreign:
        tmp = Path(tempfile.mkdtemp(prefix="llmrca-bench-foreign-"))
        try:
            _make_foreign(args.dataset, tmp / "ds")
            _measure("foreign export (ms time, index column, all-NaN column, RE2 logs/traces)", find_case_dirs(tmp / "ds"), args.reps)
        finally:
            shutil.rmtree(tmp)


if __name__ == "__main__":
    main()
