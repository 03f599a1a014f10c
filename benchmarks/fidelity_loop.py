"""A fast measuring loop for the simulator's agreement with the paper's Table 1 (issue 15).

Runs a small simulated campaign (the paper's four faults on ``--targets``
workers, ``--reps`` repetitions each), evaluates a set of methods on it and
prints Spearman's ρ against the paper (overall, per fault, per half of the
methods) and the per-(method, fault) cells next to the paper's.

The methods are split in two halves, fixed here so that tuning and reporting
keep them apart:

* ``TUNED``: the statistical, multi-source and two causal-inference methods
  whose scores were looked at while calibrating the simulator;
* ``HELD_OUT``: the graph, causal, topology and trace methods, looked at only
  on the final simulator.

Run::

    PYTHONPATH=src python benchmarks/fidelity_loop.py --seed 1 --reps 2 [--half tuned|held-out|all]
        [--set sim.KEY=VALUE ...] [--as-paper] [--keep DIR]

``--profile paper`` runs the paper's campaign (3 workers x 10 repetitions).
``python benchmarks/fidelity_loop.py [--half tuned] --report DIR`` prints ρ with bootstrap
intervals (overall and per half, default and as-paper) of a kept run.
"""

from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
import time
import warnings
from pathlib import Path

import pandas as pd

from llmrca.campaign import PROFILES, Profile, run_campaign, split_overrides
from llmrca.config import parse_overrides
from llmrca.evaluate import run_evaluation
from llmrca.model import FAULT_TYPES
from llmrca.report.fidelity import fidelity_of, paper_table

#: Methods looked at while calibrating (random is data-blind but kept as the floor).
TUNED: tuple[str, ...] = ("random", "nsigma", "baro", "e-diagnosis", "mm-baro", "pdiagnose", "circa", "rcd")
#: Methods not looked at while calibrating (the random-walk rows are left out of ρ anyway).
HELD_OUT: tuple[str, ...] = (
    "pc-pagerank", "fci-pagerank", "granger-pagerank", "lingam-pagerank", "causalrca", "causalai", "microcause",
    "microrca", "microscope", "monitorrank", "microrank", "tracerca",
)  # fmt: skip


def _rho_lines(fid, label: str) -> list[str]:
    out = []
    for scope in ("cpu", "memory", "network", "gpu", "all"):
        out.append(f"  {label:9s} {scope:8s} AC@1 ρ {fid.rho(scope, 'ac@1'):+.2f}   Avg@5 ρ {fid.rho(scope, 'avg@5'):+.2f}")
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--reps", type=int, default=2)
    ap.add_argument("--targets", type=int, default=3)
    ap.add_argument("--profile", default=None, help="a named campaign profile instead of --reps/--targets (e.g. paper)")
    ap.add_argument("--half", choices=("tuned", "held-out", "all"), default="tuned")
    ap.add_argument("--methods", default=None, help="comma-separated methods (overrides --half)")
    ap.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="sim.<option>=v or fault.<type>.<param>=v")
    ap.add_argument("--as-paper", action="store_true", help="reference modes, failed runs scored as random (reproduce --as-paper)")
    ap.add_argument("--keep", default=None, help="keep the dataset and evaluation in this folder (reused when it exists)")
    ap.add_argument("--jobs", type=int, default=2)
    ap.add_argument("--cells", action="store_true", help="print every (method, fault) cell")
    a = ap.parse_args()
    warnings.filterwarnings("ignore")

    if a.methods:
        methods = a.methods.split(",")
    else:
        methods = {"tuned": list(TUNED), "held-out": list(HELD_OUT), "all": [*TUNED, *HELD_OUT]}[a.half]
    overrides = parse_overrides(a.set)
    fault_params, sim_params = split_overrides(overrides)
    if a.profile:
        profile = a.profile
    else:
        profile = f"loop-{a.targets}x{a.reps}"
        PROFILES[profile] = Profile(profile, FAULT_TYPES, a.targets, a.reps, "fidelity loop")
    root = Path(a.keep) if a.keep else Path(tempfile.mkdtemp(prefix="fidloop-"))
    ds = root / "dataset"
    t0 = time.perf_counter()
    if not (ds / "dataset.json").exists():
        run_campaign("sim", profile, a.seed, ds, fault_params=fault_params or None, sim_params=sim_params or None, progress=False)
    t1 = time.perf_counter()
    modes: dict[str, str] = {}
    if a.as_paper:
        from llmrca.reproduce import reference_modes

        modes = reference_modes(methods)
    ev = root / ("eval-paper" if a.as_paper else "eval")
    run_evaluation(
        ds, methods, ev, jobs=a.jobs, progress=False, random_on_failure=a.as_paper,
        method_configs={m: {"reference_mode": v} for m, v in modes.items()} or None,
    )  # fmt: skip
    t2 = time.perf_counter()
    print(f"campaign {t1 - t0:.0f} s, evaluation {t2 - t1:.0f} s ({len(methods)} methods), data in {root}")
    fid = fidelity_of(ev, n_boot=0)
    lines = _rho_lines(fid, "all")
    for label, half in (("tuned", TUNED), ("held-out", HELD_OUT)):
        chosen = [m for m in methods if m in half]
        if len(chosen) >= 3:
            summ = pd.read_csv(ev / "summary.csv")
            from llmrca.report.fidelity import fidelity_from_summary

            lines += _rho_lines(fidelity_from_summary(summ, methods=chosen), label)
    print("\n".join(lines))
    paper = paper_table()["table"]
    summ = pd.read_csv(ev / "summary.csv")
    summ = summ[summ["fault"].isin(("cpu", "memory", "network", "gpu"))]
    print(f"\n{'method':18s} " + "  ".join(f"{f[:3]:>3s} ours/paper AC@1  Avg@5   " for f in ("cpu", "memory", "network", "gpu")))
    for m in methods:
        parts = []
        for f in ("cpu", "memory", "network", "gpu"):
            r = summ[(summ["method"] == m) & (summ["fault"] == f)]
            if not len(r) or m not in paper:
                parts.append(" " * 34)
                continue
            r = r.iloc[0]
            p = paper[m][f]
            parts.append(f"{r['ac@1']:.2f}/{p['ac@1']:.2f}  {r['avg@5']:.2f}/{p['avg@5']:.2f}         ")
        print(f"{m:18s} " + "".join(parts))
    if not a.keep:
        shutil.rmtree(root, ignore_errors=True)


def report(root: Path, n_boot: int = 1000, half: str = "all") -> None:
    """ρ with bootstrap intervals for a finished run in ``root`` (``eval/`` and, if present, ``eval-paper/``).

    The as-paper figures take the reference-mode runs from ``eval-paper/`` and
    every other method's runs from ``eval/`` (a method without a reference mode
    runs the same code with the same config in both modes; only its failures
    are scored differently: on the seeded random ranking, as the paper did).
    Also prints ``llm-rca``'s AC@1 per fault when it was evaluated.  ``half`` ("tuned" or "held-out") keeps
    only that half's methods (and ``llm-rca``), findings included, so that tuning never shows the other half.
    """
    from llmrca.evaluate.outputs import _latest_session, select_records
    from llmrca.evaluate.results import read_results, scored_frame
    from llmrca.report.fidelity import fidelity_from_scored

    def current(d: Path) -> list[dict]:
        """The latest session's runs (a method re-run with another config leaves its older records behind)."""
        return select_records(read_results(d / "results.jsonl"), _latest_session(d))

    default = current(root / "eval")
    modes = {"default": scored_frame(default)}
    if (root / "eval-paper" / "results.jsonl").exists():
        ref = current(root / "eval-paper")
        with_ref = {r["method"] for r in ref}
        modes["as-paper"] = scored_frame([*ref, *(r for r in default if r["method"] not in with_ref)], random_on_failure=True)
    if half != "all":
        keep = {*{"tuned": TUNED, "held-out": HELD_OUT}[half], "llm-rca"}
        modes = {k: v[v["method"].isin(keep)] for k, v in modes.items()}
    for mode, scored in modes.items():
        methods = sorted(set(scored["method"]))
        for label, half in (("all", None), ("tuned", TUNED), ("held-out", HELD_OUT)):
            chosen = methods if half is None else [m for m in methods if m in half]
            fid = fidelity_from_scored(scored, methods=chosen, n_boot=n_boot)
            for metric in ("ac@1", "avg@5"):
                row = fid.table[(fid.table["scope"] == "all") & (fid.table["metric"] == metric)].iloc[0]
                print(f"{mode:9s} {label:9s} {metric:6s} ρ {row['rho']:+.2f} [{row['lo']:+.2f}, {row['hi']:+.2f}]  (cells {int(row['n'])})")
        from llmrca.report.findings import findings, findings_lines

        print("\n".join(findings_lines(findings(scored))))
        llm = scored[scored["method"] == "llm-rca"]
        if len(llm) and mode == "default":
            print("llm-rca AC@1 per fault:", {f: round(float(g["ac@1"].mean()), 3) for f, g in llm.groupby("fault")})


if __name__ == "__main__":
    if "--report" in sys.argv:
        warnings.filterwarnings("ignore")
        only = sys.argv[sys.argv.index("--half") + 1] if "--half" in sys.argv else "all"
        report(Path(sys.argv[-1]), half=only)
    else:
        main()
