"""Differential check: our methods (in reference mode where they have one) against RCAEval 1.8.1.

The reference rankings were produced by ``scripts/reference/run_reference.py``
in a separate environment (see docs/reference-check.md) on the cases of
``scripts/reference/make_cases.py``, which this test rebuilds from the same
seeds. CIRCA and PC-PageRank must agree exactly (top-1 on every case; CIRCA
also on the stored metric ranking); for every other method the top-1 and
top-3 agreement is printed and a measured lower bound asserted.
"""

from __future__ import annotations

import dataclasses
import importlib.util
import json
import sys
from pathlib import Path

import pytest

from llmrca.methods import registry

ROOT = Path(__file__).resolve().parents[1]
REF = json.loads((ROOT / "tests" / "data" / "reference_rankings.json").read_text())
sys.path.insert(0, str(ROOT / "scripts" / "reference"))
from make_cases import CASES, build  # noqa: E402

#: Methods that must agree exactly with the reference in reference mode (checked on every case).
EXACT = {"circa", "pc-pagerank", "nsigma", "baro"}
#: Cases checked for the other methods (the first ones in name order), to keep the test short.
N_OTHER = 4
#: Top-1 agreement lower bounds (fraction of the cases where the reference gave a ranking), under
#: what was measured (docs/reference-check.md has the table). Methods not listed: 0.
LOWER_BOUND_TOP1: dict[str, float] = {
    # measured top-1 agreement over all 12 cases: 1.00 for each of these except fci-pagerank (0.92);
    # on the N_OTHER cases checked here the bound allows one disagreement
    "pc-randomwalk": 0.75,
    "fci-pagerank": 0.75,
    "granger-pagerank": 0.75,
    "granger-randomwalk": 0.75,
    "lingam-pagerank": 0.75,
    "lingam-randomwalk": 0.75,
    "nsigma": 0.75,
    "baro": 0.75,
    "e-diagnosis": 0.75,
}


def _options(name: str, cls: type) -> dict:
    """``reference_mode`` set to the reference implementation the method reproduces (none: the paper's algorithm)."""
    fields = {f.name for f in dataclasses.fields(cls.config_cls)}
    return {"reference_mode": cls.config_cls.legacy_reference} if "reference_mode" in fields else {}


@pytest.fixture(scope="module")
def cases():
    return {name: build(name, root, fault, seed).without_truth() for name, root, fault, seed in CASES}


@pytest.mark.parametrize("method", sorted(REF["rankings"]))
def test_agreement_with_reference(method: str, cases) -> None:
    if method not in registry.REGISTRY:
        pytest.skip(f"{method} is not registered on this branch")
    ok, why = registry.available(method)
    if not ok:
        pytest.skip(f"{method} unavailable here: {why}")
    ref = REF["rankings"][method]
    usable = {k: v for k, v in sorted(ref.items()) if v["components"]}
    if not usable:
        errs = sorted({v["error"] for v in ref.values()})
        pytest.skip(f"the reference {method} gave no ranking on any case: {errs[0]}")
    if method not in EXACT:
        usable = dict(list(usable.items())[:N_OTHER])
    cls = registry.method_class(method)
    opts = _options(method, cls)
    top1 = top3 = 0
    metric_exact = 0
    for name, rec in usable.items():
        ours = cls(opts).rank(cases[name])
        top1 += ours.components[0] == rec["components"][0]
        top3 += set(ours.components[:3]) == set(rec["components"][:3])
        if ours.metrics is not None and rec["metrics"]:
            metric_exact += [m for m, _ in ours.metrics[: len(rec["metrics"])]] == rec["metrics"]
    n = len(usable)
    print(f"\n{method:20s} mode={'reference' if opts else 'paper'} cases={n}/{len(ref)} "
          f"top1={top1 / n:.2f} top3-set={top3 / n:.2f} metric-top{len(next(iter(usable.values()))['metrics'])}-exact={metric_exact / n:.2f}")
    if method in EXACT:
        assert opts, f"{method} has no reference_mode option"
        assert top1 == n, f"{method}: top-1 agrees on {top1}/{n} cases only"
        if method in ("circa", "nsigma", "baro"):
            assert metric_exact == n, f"{method}: metric ranking agrees on {metric_exact}/{n} cases only"
    else:
        assert top1 / n >= LOWER_BOUND_TOP1.get(method, 0.0)


def test_reference_file_records_versions_and_cases() -> None:
    assert REF["versions"]["RCAEval"] == "1.8.1"
    assert sorted(REF["cases"]) == sorted(name for name, *_ in CASES)
    assert importlib.util.find_spec("llmrca") is not None
