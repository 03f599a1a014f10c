"""Golden output of the simulator: the same seed gives the same case, to the byte.

A few small seeded cases (one per fault type, plus the three remediations of
the heal loop) are simulated and written with :func:`llmrca.dataset.io.write_case`;
digests of every metric-set frame, the logs, the traces, the raw model output
(per-scrape series, per-request arrays, events), the fault record with its
achieved values, and the bytes of every file written are compared with
``tests/data/sim_golden.json``.

The expected file was produced by the code before the simulator's faults
became objects; refactors must keep it.  A change that is meant to alter the
output regenerates it (``PYTHONPATH=src python tests/sim/test_golden.py --regen``)
in a commit of its own that says why.
"""

from __future__ import annotations

import hashlib
import json
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

from llmrca.dataset.io import read_case, write_case
from llmrca.model import FaultSpec
from llmrca.testbed.base import Timeline
from llmrca.testbed.sim.backend import SimBackend
from llmrca.testbed.sim.config import SimConfig

GOLDEN = Path(__file__).resolve().parents[1] / "data" / "sim_golden.json"
START = 1_767_225_600.0
SHORT = dict(normal_s=60.0, fault_s=30.0, tail_s=10.0, warmup_s=10.0)

#: name -> (fault type, target, params, seed, remedy as (action, seconds after injection[, pod]) or None)
CASES: dict[str, tuple[str, str, dict[str, Any], int, tuple | None]] = {
    "cpu": ("cpu", "ray-worker-2", {}, 11, None),
    "memory": ("memory", "ray-worker-1", {}, 12, None),
    "network": ("network", "ray-worker-3", {}, 13, None),
    "gpu": ("gpu", "ray-head", {}, 14, None),
    "cpu-restart": ("cpu", "ray-worker-2", {"workers": 8}, 15, ("restart", 10.0)),
    "gpu-reset": ("gpu", "ray-worker-1", {"power_limit_w": 180.0}, 16, ("reset-power-limit", 12.0)),
    "network-drain": ("network", "ray-worker-3", {"latency_ms": 500.0}, 17, ("drain", 8.0, "ray-worker-3")),
}


def _h(b: bytes) -> str:
    return hashlib.sha256(b).hexdigest()[:24]


def _array_digest(a: np.ndarray) -> str:
    a = np.asarray(a)
    if a.dtype == object:
        return _h("\x1f".join(map(repr, a.ravel().tolist())).encode())
    return _h(str(a.dtype).encode() + str(a.shape).encode() + np.ascontiguousarray(a).tobytes())


def frame_digest(df: pd.DataFrame | None) -> str | None:
    """Digest of a frame's columns, dtypes and exact values."""
    if df is None:
        return None
    parts = [json.dumps([str(c) for c in df.columns]), json.dumps([str(t) for t in df.dtypes])]
    parts += [_array_digest(df[c].to_numpy()) for c in df.columns]
    return _h("|".join(parts).encode())


def _run(name: str, tmp: Path) -> dict[str, Any]:
    ftype, target, params, seed, remedy = CASES[name]
    be = SimBackend(SimConfig(n_workers=3))
    tl = Timeline(**SHORT)
    spec = FaultSpec(ftype, target, params, duration_s=tl.fault_s)
    inject = START + tl.normal_s
    rem = None if remedy is None else (remedy[0], inject + remedy[1], *remedy[2:])
    res = be.simulate(spec, seed=seed, protocol=tl, start_time=START, remedy=rem)
    case = be.run_case(spec, seed=seed, protocol=tl, start_time=START, remedy=rem)
    folder = write_case(case, tmp / name)
    back = read_case(folder)
    return {
        "raw": {
            **{f"pod.{k}": _array_digest(v) for k, v in sorted(res.pod.items())},
            **{f"rep.{k}": _array_digest(v) for k, v in sorted(res.rep.items())},
            **{f"req.{k}": _array_digest(v) for k, v in sorted(res.requests.items())},
            "scrape_t": _array_digest(res.scrape_t),
            "scrape_lost": _array_digest(res.scrape_lost),
            "itl": _array_digest(np.stack([res.itl_tokens, res.itl_step_s, res.stall_tokens, res.stall_s])),
            "router": _array_digest(np.stack([res.router_requests, res.router_queued, res.gateway_requests, res.gateway_5xx])),
            "events": _h(repr(res.events).encode()),
        },
        "frames": {k: frame_digest(v) for k, v in sorted(case.metric_sets.items())},
        "logs": frame_digest(case.logs),
        "traces": frame_digest(case.traces),
        "fault": json.loads(json.dumps(case.fault.to_dict())),
        "meta": json.loads(json.dumps(case.meta)),
        "files": {p.name: _h(p.read_bytes()) for p in sorted(folder.iterdir())},
        # what a reader gets back from the files (values, not bytes)
        "read_back": {k: frame_digest(v) for k, v in sorted(back.metric_sets.items())},
    }


def generate(tmp: Path) -> dict[str, Any]:
    return {name: _run(name, tmp) for name in CASES}


@pytest.fixture(scope="module")
def produced(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    return generate(tmp_path_factory.mktemp("golden"))


@pytest.mark.parametrize("name", list(CASES))
def test_case_matches_golden(produced: dict[str, Any], name: str) -> None:
    want = json.loads(GOLDEN.read_text())[name]
    got = produced[name]
    for part in ("fault", "meta", "frames", "logs", "traces", "raw", "files", "read_back"):
        if isinstance(want[part], dict):
            diff = sorted(k for k in set(want[part]) | set(got[part]) if want[part].get(k) != got[part].get(k))
            assert not diff, f"{name}: {part} differs at {diff}"
        else:
            assert got[part] == want[part], f"{name}: {part} differs"


def test_golden_cases_exercise_every_fault() -> None:
    want = json.loads(GOLDEN.read_text())
    assert {c["fault"]["type"] for c in want.values()} == {"cpu", "memory", "network", "gpu"}
    # the memory leak really reached the OOM killer, the power cap was read back
    assert want["memory"]["fault"]["achieved"]["oom_killed"] is True
    assert want["gpu"]["fault"]["achieved"]["power_limit_w_read_back"] == 150.0


if __name__ == "__main__" and "--regen" in sys.argv:
    import tempfile

    with tempfile.TemporaryDirectory() as d:
        GOLDEN.write_text(json.dumps(generate(Path(d)), indent=1, sort_keys=True) + "\n")
    print(f"wrote {GOLDEN}")
