"""Overhead and timing error of the load generator, against the stub server on 127.0.0.1.

1. Timing error: server first chunk after TTFT_S, then one every ITL_S; the
   client's measured TTFT/ITL minus the configured values.
2. Capacity: QPS steps against a server with zero delay; a step is sustained
   when the arrival rate is within 5 % of the asked rate, nothing is dropped
   or fails, and the 99th percentile send lag stays under 50 ms.  Client CPU
   per request is process time (the server runs in another process).

Both processes share this machine's cores, so capacity is a lower bound for
the generator alone.  Usage: PYTHONPATH=src python benchmarks/load_overhead.py [--quick]
"""

from __future__ import annotations

import os
import sys
import time

import numpy as np

from llmrca.load import run_load
from llmrca.load.stub_server import StubBehaviour, StubServer

TTFT_S, ITL_S = 0.100, 0.020


def timing_error(quick: bool) -> None:
    with StubServer(StubBehaviour(ttft_s=TTFT_S, itl_s=ITL_S)) as s:
        for qps, tokens in ((5, 64), (20, 64)) if not quick else ((5, 32),):
            r = run_load(s.url, qps=qps, duration_s=4 if quick else 8, output_tokens=tokens, prompt_tokens=512)
            ok = r.records[r.records["status"] == "ok"]
            dt = ok["ttft_s"].to_numpy() - TTFT_S
            di = r.itl_s - ITL_S
            print(
                f"qps {qps:>3} x {tokens} tok: TTFT err median {np.median(dt) * 1e3:6.2f} ms  p99 {np.percentile(dt, 99) * 1e3:6.2f} ms | "
                f"ITL err median {np.median(di) * 1e3:6.2f} ms  p99 {np.percentile(di, 99) * 1e3:6.2f} ms  mean {np.mean(di) * 1e3:6.3f} ms "
                f"| n={len(ok)}"
            )


def capacity(quick: bool) -> None:
    steps = (50, 100, 200, 400) if quick else (50, 100, 200, 300, 400, 600, 800)
    print(
        f"{'tokens':>6} {'qps':>5} {'arrival/s':>9} {'done/s':>7} {'chunks/s':>8} {'lag p99 ms':>10} {'drop':>5} {'err':>4} {'client cpu ms/req':>17}  ok"
    )
    with StubServer(StubBehaviour(ttft_s=0.0, itl_s=0.0)) as s:
        for tokens, qs in ((16, steps), (256, (10, 20, 30, 50))):
            for q in qs:
                cpu0 = time.process_time()
                r = run_load(s.url, qps=q, duration_s=3, output_tokens=tokens, prompt_tokens=64, timeout_s=10, drain_s=5)
                cpu = time.process_time() - cpu0
                m = r.summary
                n = max(1, m["n_sent"])
                sustained = (
                    abs(m["achieved_qps"] - q) < 0.05 * q
                    and m["n_dropped"] == 0
                    and m["n_error"] == 0
                    and m["n_cancelled"] == 0
                    and m["lag_s"]["p99"] < 0.05
                )
                chunks = r.records["output_chunks"].sum() / m["wall_s"]
                print(
                    f"{tokens:>6} {q:>5} {m['achieved_qps']:>9.1f} {m['throughput_rps']:>7.1f} {chunks:>8.0f} {m['lag_s']['p99'] * 1e3:>10.1f} "
                    f"{m['n_dropped']:>5} {m['n_error'] + m['n_cancelled']:>4} {cpu / n * 1e3:>17.2f}  {'yes' if sustained else 'NO'}"
                )
                if not sustained:
                    break


def main() -> None:
    quick = "--quick" in sys.argv
    print(f"load generator overhead ({os.cpu_count()} cores, load average {os.getloadavg()[0]:.2f})")
    print(f"-- timing error vs server delays TTFT {TTFT_S * 1e3:.0f} ms, ITL {ITL_S * 1e3:.0f} ms")
    timing_error(quick)
    print("-- capacity against a zero-delay server (3 s per step)")
    capacity(quick)


if __name__ == "__main__":
    main()
