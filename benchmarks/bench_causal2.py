"""Median seconds per case of CIRCA, RCD, CausalAI and CausalRCA at 6 and 60 components.

Cases come from the shared linear structural system
:func:`llmrca.methods.graph.sem.sem_case` (8 metrics per component, 72
samples at 5 s, fault at sample 60), as in ``bench_causal.py``: 6 components
(the paper's deployment, 48 columns) and 60 components (480 columns). Each
(method, size) runs in its own process group with a wall-clock limit, so a
method that does not scale shows as a timeout instead of stalling the run.

    python benchmarks/bench_causal2.py                       # 3 cases per size, 300 s limit
    python benchmarks/bench_causal2.py --cases 1 --sizes 6 --methods circa,rcd

Prints per method and size: median and max seconds per case and AC@1.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import statistics
import subprocess
import sys
import time
import warnings
from pathlib import Path

SRC = Path(__file__).resolve().parents[1] / "src"
sys.path.insert(0, str(SRC))

METHODS = ["circa", "rcd", "causalai", "causalrca"]
def _child(method: str, size: int, n: int) -> None:
    """Run in a child process: time each case, print one JSON line."""
    from llmrca.methods.graph.sem import sem_case, sem_cases
    from llmrca.methods.registry import get_method

    warnings.filterwarnings("ignore")
    get_method(method).rank(sem_case(n_components=6, seed=0).without_truth())  # untimed warm-up (imports)
    secs, hits, errors = [], 0, []
    for case in sem_cases(size, n):
        t0 = time.perf_counter()
        try:
            r = get_method(method).rank(case.without_truth())
            hits += int(r.top(1) == sorted(case.root_causes))
        except Exception as e:  # reported in the table, not hidden
            errors.append(f"{type(e).__name__}: {str(e)[:80]}")
        secs.append(time.perf_counter() - t0)
        print(json.dumps({"secs": secs, "hits": hits, "errors": errors}), flush=True)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--cases", type=int, default=3)
    ap.add_argument("--sizes", default="6,60")
    ap.add_argument("--methods", default=",".join(METHODS))
    ap.add_argument("--limit", type=float, default=300.0, help="wall-clock seconds per (method, size)")
    ap.add_argument("--child", nargs=3, metavar=("METHOD", "SIZE", "N"), help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child:
        _child(args.child[0], int(args.child[1]), int(args.child[2]))
        return
    sizes = [int(s) for s in args.sizes.split(",")]
    print(f"cases per size: {args.cases}; 8 metrics x 72 samples (5 s) per component; limit {args.limit:.0f} s per method and size")
    head = f"{'method':<10}" + "".join(f" | {f'{s} comp median s':>17} {'max s':>6} {'AC@1':>5}" for s in sizes)
    print(head)
    print("-" * len(head))
    env = {**os.environ, "PYTHONPATH": str(SRC)}
    for method in args.methods.split(","):
        row = f"{method:<10}"
        for s in sizes:
            proc = subprocess.Popen(
                [sys.executable, __file__, "--child", method, str(s), str(args.cases)],
                stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True, env=env, start_new_session=True,
            )
            try:
                out, _ = proc.communicate(timeout=args.limit)
                timed_out = False
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                out, _ = proc.communicate()
                timed_out = True
            lines = [ln for ln in out.splitlines() if ln.startswith("{")]
            res = json.loads(lines[-1]) if lines else {"secs": [], "hits": 0, "errors": []}
            secs = res["secs"]
            if secs:
                row += f" | {statistics.median(secs):>17.2f} {max(secs):>6.2f} {res['hits']:>2}/{len(secs):<2}"
            else:
                row += f" | {'-':>17} {'-':>6} {'-':>5}"
            if timed_out:
                row += f" (timeout after {len(secs)}/{args.cases} cases)"
            if res["errors"]:
                row += f" ({res['errors'][0]})"
        print(row, flush=True)


if __name__ == "__main__":
    main()
