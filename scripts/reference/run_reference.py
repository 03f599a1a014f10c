"""Run RCAEval's reference implementations on our case folders and store their rankings.

Runs INSIDE the reference environment built by ``build_env.sh`` (it imports
RCAEval, never llmrca)::

    /tmp/rcaeval-venv/bin/python scripts/reference/run_reference.py \
        --cases /tmp/llmrca-reference-cases --out tests/data/reference_rankings.json

Each case folder holds ``data.csv`` and ``inject_time.txt`` (and our
``case.json``, read only for the entry point that SLI-based methods need:
the gateway, never the ground truth). For every method the stored record is
the metric ranking (top ``--keep`` entries), the component ranking (first
occurrence of the component prefix before the first ``_``, RCAEval's rule),
the seconds taken, and the error when the call failed. RCAEval's ``rca``
decorator turns exceptions into the unranked column order; this script
detects its message and records such runs as errors, not rankings.
"""

from __future__ import annotations

import argparse
import contextlib
import importlib
import io
import json
import platform
import random
import signal
import sys
import time
import traceback
from importlib import metadata
from pathlib import Path

import numpy as np
import pandas as pd

#: our method name -> (RCAEval module, function); every reference method we compare against.
METHODS: dict[str, tuple[str, str]] = {
    "circa": ("RCAEval.e2e.circa", "circa"),
    "pc-pagerank": ("RCAEval.e2e.pc_pagerank", "pc_pagerank"),
    "pc-randomwalk": ("RCAEval.e2e.pc_randomwalk", "pc_randomwalk"),
    "fci-pagerank": ("RCAEval.e2e.fci_pagerank", "fci_pagerank"),
    "fci-randomwalk": ("RCAEval.e2e.pc_randomwalk", "fci_randomwalk"),
    "granger-pagerank": ("RCAEval.e2e.granger_pagerank", "granger_pagerank"),
    "granger-randomwalk": ("RCAEval.e2e.pc_randomwalk", "granger_randomwalk"),
    "lingam-pagerank": ("RCAEval.e2e.lingam_pagerank", "lingam_pagerank"),
    "lingam-randomwalk": ("RCAEval.e2e.pc_randomwalk", "lingam_randomwalk"),
    "rcd": ("RCAEval.e2e.rcd", "rcd"),
    "causalrca": ("RCAEval.e2e.causalrca", "causalrca"),
    "causalai": ("RCAEval.e2e.causalai", "causalai"),
    "microcause": ("RCAEval.e2e.microcause", "microcause"),
    "nsigma": ("RCAEval.e2e", "nsigma"),
    "baro": ("RCAEval.e2e.baro", "baro"),
    "e-diagnosis": ("RCAEval.e2e", "e_diagnosis"),
}

DATASET = "llmrca-synthetic"  # any non-None name: RCAEval's generic preprocessing (drop constant, memory in MB)


class CallTimeout(BaseException):
    """Raised by the alarm; a BaseException so RCAEval's ``except Exception`` cannot swallow it."""


def _alarm(signum, frame):
    raise CallTimeout()


def components(ranks: list[str]) -> list[str]:
    out: list[str] = []
    for r in ranks:
        c = str(r).split("_", 1)[0]
        if c not in out:
            out.append(c)
    return out


def run_one(method: str, folder: Path, timeout_s: int, keep: int, seed: int) -> dict:
    module, func = METHODS[method]
    data = pd.read_csv(folder / "data.csv")
    inject = float((folder / "inject_time.txt").read_text().strip())
    if inject.is_integer():
        inject = int(inject)
    meta = json.loads((folder / "case.json").read_text()) if (folder / "case.json").exists() else {}
    entry = (meta.get("topology") or {}).get("entry")
    kwargs = {"dataset": DATASET}
    if method in {"microcause", "granger-pagerank", "lingam-pagerank"} and entry:
        kwargs["sli"] = f"{entry}_latency-90"
    if method == "rcd":
        kwargs["seed"] = seed
    rec: dict = {"metrics": None, "components": None, "error": None, "seconds": None}
    err = io.StringIO()
    np.random.seed(seed)
    random.seed(seed)
    with contextlib.suppress(ImportError):
        import torch

        torch.manual_seed(seed)
    t0 = time.perf_counter()
    signal.signal(signal.SIGALRM, _alarm)
    signal.alarm(timeout_s)
    try:
        fn = getattr(importlib.import_module(module), func)
        with contextlib.redirect_stderr(err), contextlib.redirect_stdout(io.StringIO()):
            out = fn(data.copy(), inject_time=inject, **kwargs)
        ranks = [str(r) for r in out["ranks"]]
        if "returning the unranked column order" in err.getvalue():
            rec["error"] = "reference fell back to column order: " + err.getvalue().strip().splitlines()[-1][:300]
        else:
            rec["metrics"] = ranks[:keep]
            rec["components"] = components(ranks)
    except CallTimeout:
        rec["error"] = f"timeout after {timeout_s} s"
    except Exception as e:  # the reference's own failure, recorded with its reason
        tb = traceback.extract_tb(e.__traceback__)[-1]
        rec["error"] = f"{type(e).__name__}: {str(e)[:200]} ({Path(tb.filename).name}:{tb.lineno})"
    finally:
        signal.alarm(0)
    rec["seconds"] = round(time.perf_counter() - t0, 3)
    return rec


def _versions() -> dict:
    out = {"python": platform.python_version()}
    for pkg in ("RCAEval", "numpy", "pandas", "causal-learn", "scikit-learn", "statsmodels", "networkx", "lingam", "torch", "sfr-pyrca", "scikit-network"):
        try:
            out[pkg] = metadata.version(pkg)
        except metadata.PackageNotFoundError:
            out[pkg] = None
    return out


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--cases", type=Path, default=Path("/tmp/llmrca-reference-cases"))
    ap.add_argument("--out", type=Path, default=Path("tests/data/reference_rankings.json"))
    ap.add_argument("--methods", default=",".join(METHODS), help="comma-separated, our names")
    ap.add_argument("--timeout", type=int, default=120, help="seconds per (method, case)")
    ap.add_argument("--keep", type=int, default=5, help="metric ranks kept per case")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--update", action="store_true", help="merge into an existing output file")
    args = ap.parse_args()
    folders = sorted(p.parent for p in args.cases.glob("*/data.csv"))
    if not folders:
        print(f"error: no case folders with data.csv under {args.cases}; run make_cases.py first", file=sys.stderr)
        return 2
    result = json.loads(args.out.read_text()) if args.update and args.out.exists() else {"rankings": {}}
    result["versions"] = _versions()
    result["dataset_arg"] = DATASET
    result["seed"] = args.seed
    result["cases"] = [f.name for f in folders]
    for method in [m.strip() for m in args.methods.split(",") if m.strip()]:
        if method not in METHODS:
            print(f"error: unknown method {method!r}; known: {', '.join(METHODS)}", file=sys.stderr)
            return 2
        per_case = {}
        for f in folders:
            per_case[f.name] = run_one(method, f, args.timeout, args.keep, args.seed)
        result["rankings"][method] = per_case
        errs = sum(r["error"] is not None for r in per_case.values())
        secs = sorted(r["seconds"] for r in per_case.values())
        print(f"{method:20s} errors {errs}/{len(folders)}  median {secs[len(secs) // 2]:.2f} s", flush=True)
        for recs in result["rankings"].values():  # keep the file small, also for records of earlier runs
            for r in recs.values():
                if r["metrics"]:
                    r["metrics"] = r["metrics"][: args.keep]
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps(result, separators=(",", ":")).replace('},"', '},\n"') + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
