"""Robustness of llm-rca across settings it was not tuned on.

Runs one simulator campaign per setting (default: the paper profile, seed
12345 — a seed never used while developing the method), scores llm-rca on
each, and prints AC@1 per fault type and fault-type accuracy::

    PYTHONPATH=src python benchmarks/robustness_llm.py --out /tmp/llm-robust [--profile paper] [--seed 12345] [--jobs 2]

Settings: the paper's (3 workers, 5 QPS, paper fault intensity); 2 and 8
workers; 2 and 10 QPS; half intensity (8 CPU stressors, 4 GB leak, 300 ms
delay, 200 W cap); double intensity (32 stressors, 16 GB, 2000 ms, 150 W —
the A100's minimum limit, so the GPU fault cannot be doubled); and the
paper setting scored on the basic metric set only.  Campaign folders that
already exist are reused, so a re-run only scores.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).parent))

from llm_eval import score_dataset, summarize

HALF = {"cpu": {"workers": 8}, "memory": {"size_gb": 4.0}, "network": {"latency_ms": 300.0, "jitter_ms": 30.0}, "gpu": {"power_limit_w": 200.0}}
DOUBLE = {"cpu": {"workers": 32}, "memory": {"size_gb": 16.0}, "network": {"latency_ms": 2000.0, "jitter_ms": 200.0}, "gpu": {"power_limit_w": 150.0}}

#: name -> (campaign kwargs, metric set)
SETTINGS: dict[str, tuple[dict[str, Any], str]] = {
    "paper (3 workers, 5 QPS)": ({}, "extended"),
    "2 workers": ({"workers": 2}, "extended"),
    "8 workers": ({"workers": 8}, "extended"),
    "QPS 2": ({"qps": 2.0}, "extended"),
    "QPS 10": ({"qps": 10.0}, "extended"),
    "half intensity": ({"fault_params": HALF}, "extended"),
    "double intensity": ({"fault_params": DOUBLE}, "extended"),
    "basic metrics only": ({}, "basic"),
}


def _folder(out: Path, kwargs: dict[str, Any], seed: int, profile: str) -> Path:
    key = "-".join(f"{k}{v}" for k, v in sorted(kwargs.items()) if k != "fault_params")
    if "fault_params" in kwargs:
        key += "-half" if kwargs["fault_params"] is HALF else "-double"
    return out / f"{profile}-s{seed}{'-' + key if key else ''}"


def _campaign(args: tuple[Path, dict[str, Any], int, str]) -> str:
    from llmrca.campaign import run_campaign

    folder, kwargs, seed, profile = args
    if (folder / "dataset.json").exists():
        return str(folder)
    run_campaign(backend="sim", profile=profile, seed=seed, out=folder, progress=False, **kwargs)
    return str(folder)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--out", default="/tmp/llm-robust", help="folder for the campaign datasets")
    ap.add_argument("--profile", default="paper", help="campaign profile (paper: 120 cases, quick: 12)")
    ap.add_argument("--seed", type=int, default=12345, help="campaign seed (default: one never used for tuning)")
    ap.add_argument("--jobs", type=int, default=2, help="campaigns run in parallel")
    ap.add_argument("--only", default="", help="comma-separated setting names to run (default: all)")
    ap.add_argument("--json", default="", help="also write the table as JSON here")
    a = ap.parse_args()
    out = Path(a.out)
    out.mkdir(parents=True, exist_ok=True)
    chosen = {k: v for k, v in SETTINGS.items() if not a.only or k in a.only.split(",")}
    folders = {name: _folder(out, kw, a.seed, a.profile) for name, (kw, _ms) in chosen.items()}
    todo = {}
    for name, (kw, _ms) in chosen.items():
        todo.setdefault(str(folders[name]), (folders[name], kw, a.seed, a.profile))
    t0 = time.time()
    with ProcessPoolExecutor(max_workers=max(1, a.jobs)) as ex:
        list(ex.map(_campaign, todo.values()))
    print(f"campaigns ready in {time.time() - t0:.0f} s", file=sys.stderr)
    rows = []
    for name, (_kw, ms) in chosen.items():
        scored = score_dataset(folders[name], ms)
        s = summarize(scored)
        misses = [f'{r["fault"]}@{r["target"][0]}->{r["top"]}/{r["type"]}' for r in scored if not (r["hit1"] and r["type_ok"])]
        rows.append({"setting": name, "metric_set": ms, **s, "median_ms": sorted(r["ms"] for r in scored)[len(scored) // 2], "misses": misses})
    hdr = "| setting | set | n | AC@1 cpu | AC@1 memory | AC@1 network | AC@1 gpu | AC@1 all | type acc | type cpu | type mem | type net | type gpu | ms/case |"
    print(hdr)
    print("|" + "|".join("---" for _ in range(hdr.count("|") - 1)) + "|")
    for r in rows:
        print(
            f"| {r['setting']} | {r['metric_set']} | {int(r['n'])} | {r['ac1_cpu']:.2f} | {r['ac1_memory']:.2f} | {r['ac1_network']:.2f} | {r['ac1_gpu']:.2f} | "
            f"{r['ac1']:.2f} | {r['type_acc']:.2f} | {r['type_cpu']:.2f} | {r['type_memory']:.2f} | {r['type_network']:.2f} | {r['type_gpu']:.2f} | {r['median_ms']:.0f} |"
        )
    for r in rows:
        if r["misses"]:
            print(f"misses in {r['setting']}: {', '.join(r['misses'][:12])}{' ...' if len(r['misses']) > 12 else ''}")
    if a.json:
        Path(a.json).write_text(json.dumps(rows, indent=2))


if __name__ == "__main__":
    main()
