"""The evaluator's forked workers run OpenMP code even when its own process ran some before forking.

GNU OpenMP is not fork-safe: a worker forked from a process that ran a parallel region (scikit-learn's
BIRCH predicts with an OpenMP nearest-centre search) used to wait forever in its first one, so every run
timed out (``reproduce --as-paper`` hung this way after probing the reference modes in-process).
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from llmrca.dataset.io import write_case
from llmrca.evaluate.runner import run_evaluation
from llmrca.synthetic import make_case


def test_workers_run_birch_after_the_parent_did(tmp_path: Path) -> None:
    from sklearn.cluster import Birch

    ds = tmp_path / "ds"
    for i, root in enumerate(("ray-worker-1", "ray-worker-2"), 1):
        write_case(make_case(root=root, fault="network", seed=i, with_logs=False, with_traces=False), ds / f"{root}_network" / "1")
    # an OpenMP parallel region in this (the evaluator's) process before it forks its workers
    Birch(n_clusters=None, threshold=0.045).fit_predict(np.random.default_rng(0).normal(size=(300, 1)))
    run_evaluation(ds, ["microrca", "microscope"], tmp_path / "ev", jobs=2, timeout_s=60.0, progress=False,
                   method_configs={"microrca": {"reference_mode": "rcaeval"}})
    recs = [json.loads(line) for line in (tmp_path / "ev" / "results.jsonl").read_text().splitlines()]
    assert len(recs) == 4
    assert [r["status"] for r in recs] == ["ok"] * 4, [(r["method"], r["status"], r["error"]) for r in recs]
