"""The paper's Fig. 8 on real processes: ``llmrca watch --execute`` against the local testbed.

What it does (needs root, cgroups, nginx, prometheus, stress-ng; ~25 minutes):

1. brings the local testbed up in its own run dir (``/tmp/llmrca-bench-watch``),
   scrape interval 2 s, and runs the load generator on its gateway
   (loopback only, 1 QPS Poisson, 64 prompt / 48 output tokens, bounded);
2. a **healthy run**: ``watch`` for ``--healthy`` seconds (default 600) with no
   fault; every alert is a false alarm; ``--kill-prometheus-at`` seconds into it
   (default 300) Prometheus is SIGKILLed and restarted 20 s later: the loop must
   log the outage and its end and keep running;
3. the **four faults** one after the other, each on a worker, while a second
   ``watch --execute`` (allow-list: the workers; rate limit one action per
   component per minute) alerts, localizes with ``llm-rca``, acts through the
   local actuator and watches the SLO come back into its band; a fault stays
   on until its incident ends (or ``--fault-s``) and is then removed;
4. per fault: injection -> alert -> decision -> action -> recovered, the
   verdict and the action's status; figures ``healthy/watch.png`` and
   ``faults/watch.png`` (signals, thresholds, injections, alert, decision,
   action, recovery), the audit logs, and ``summary.json``;
5. the testbed is torn down in ``finally`` (``llmrca testbed down --run-dir
   /tmp/llmrca-bench-watch`` sweeps anything left after a crash).

Usage::

    PYTHONPATH=src python benchmarks/watch_local.py [--out bench-watch] [--healthy 600] \
        [--faults cpu@ray-worker-2,gpu@ray-worker-3,network@ray-worker-1,memory@ray-worker-2]
"""

from __future__ import annotations

import argparse
import contextlib
import json
import time
from pathlib import Path

from llmrca.heal.fig8 import fault_figure, kill_prometheus, run_faults, start_watcher
from llmrca.heal.watch import WatchConfig
from llmrca.load import LoadRunner
from llmrca.testbed.local.stack import LocalTestbed, LocalTestbedConfig, down

RUN_DIR = "/tmp/llmrca-bench-watch"
WORKERS = ["ray-worker-1", "ray-worker-2", "ray-worker-3"]


def say(m: str) -> None:
    print(time.strftime("%H:%M:%S"), m, flush=True)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", default="bench-watch")
    ap.add_argument("--healthy", type=float, default=600.0, help="seconds of the healthy run (0: skip)")
    ap.add_argument("--faults", default="cpu@ray-worker-2,gpu@ray-worker-3,network@ray-worker-1,memory@ray-worker-2")
    ap.add_argument("--fault-s", type=float, default=300.0, help="longest a fault stays on")
    ap.add_argument("--qps", type=float, default=1.0)
    ap.add_argument("--kill-prometheus-at", type=float, default=300.0,
                    help="seconds into the healthy run at which Prometheus is SIGKILLed (restarted 20 s later; 0: never)")
    args = ap.parse_args()
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    faults = [(f.split("@")[0], f.split("@")[1], {}) for f in args.faults.split(",") if f]
    cfg = WatchConfig(execute=True)
    summary: dict = {"config": cfg.to_dict(), "qps": args.qps}
    down(RUN_DIR)
    t0 = time.time()
    tb = LocalTestbed.up(LocalTestbedConfig(run_dir=RUN_DIR, scrape_interval_s=2.0), progress=say)
    summary["testbed_up_s"] = round(time.time() - t0, 1)
    total = args.healthy + len(faults) * (args.fault_s + 300) + 300
    load = LoadRunner(tb.state.gateway_url, qps=args.qps, duration_s=total, arrival="poisson", prompt_tokens=64, output_tokens=48,
                      seed=0, timeout_s=60.0)
    load.start()
    try:
        say("warming up 60 s (Prometheus history for the baseline)")
        time.sleep(60)
        if args.healthy > 0:
            w, th = start_watcher(RUN_DIR, out / "healthy", cfg, allow=WORKERS, say=say)
            t_h = time.time()
            killed: dict = {}
            if 0 < args.kill_prometheus_at < args.healthy:
                time.sleep(args.kill_prometheus_at)
                killed = {"at_s": round(time.time() - t_h, 1), "down_s": round(kill_prometheus(tb, 20.0, say), 1)}
            time.sleep(max(0.0, args.healthy - (time.time() - t_h)))
            killed["loop_alive"] = th.is_alive()
            w.stop.set()
            th.join(60)
            steps = [json.loads(ln)["step"] for ln in (out / "healthy" / "audit.jsonl").read_text().splitlines()]
            killed |= {"unreachable_logged": "prometheus-unreachable" in steps, "back_logged": "prometheus-back" in steps}
            summary["healthy"] = {"seconds": args.healthy, "evaluations": w.report.evaluations, "false_alarms": len(w.report.incidents),
                                  "alerts": [i.to_dict() for i in w.report.incidents], "rules": len(w.rules), "prometheus_killed": killed}
            say(f"healthy run: {w.report.evaluations} evaluations of {len(w.rules)} rules, {len(w.report.incidents)} false alarm(s); "
                f"Prometheus killed: {killed}")
        w, th = start_watcher(RUN_DIR, out / "faults", cfg, allow=WORKERS, say=say)
        try:
            outcomes = run_faults(tb, w, faults, fault_s=args.fault_s, quiet_timeout_s=300.0, say=say)
        finally:
            w.stop.set()
            th.join(60)
        fault_figure(w, outcomes, out / "faults" / "watch.png")
        summary["faults"] = [o.to_dict() for o in outcomes]
        print()
        for o in outcomes:
            print(o.line())
    finally:
        with contextlib.suppress(Exception):
            rep = load.stop(timeout=10)
            summary["load"] = {k: v for k, v in rep.summary().items() if not isinstance(v, (list, dict))} if hasattr(rep, "summary") else {}
        tb.down()
        (out / "summary.json").write_text(json.dumps(summary, indent=1, default=str) + "\n")
        say(f"wrote {out}/summary.json")


if __name__ == "__main__":
    main()
