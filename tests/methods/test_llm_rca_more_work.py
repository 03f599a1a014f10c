"""A replica that simply gets more work (the router shifts load onto it) runs busier and hotter: that is load,
not a GPU fault — also on a slow deployment whose whole decode rate sits near the absolute floor."""

from __future__ import annotations

import numpy as np
import pandas as pd

from llmrca.methods.llm import LlmRca
from llmrca.model import Case

T0 = 1_767_225_600.0


def _case(extra_tokens: float) -> Case:
    rng = np.random.default_rng(4)
    t = T0 + 2.0 * np.arange(180)  # 300 s normal, 60 s window at 2-s steps
    after = t >= T0 + 300.0
    cols: dict[str, np.ndarray] = {"time": t}
    for w in ("ray-worker-1", "ray-worker-2", "ray-worker-3"):
        busy = w == "ray-worker-2"
        tokens = 3.7 + rng.normal(0, 0.2, t.size) + np.where(after & busy, extra_tokens, 0.0)
        util = np.clip(2 + rng.normal(0, 0.5, t.size) + np.where(after & busy, 60.0 * (extra_tokens > 0), 0.0), 0, 100)
        cols[f"{w}_cpu"] = 0.02 + rng.normal(0, 0.001, t.size)
        cols[f"{w}_vllm:generation_tokens_total:rate"] = tokens
        cols[f"{w}_gpu"] = util
        cols[f"{w}_DCGM_FI_DEV_GPU_TEMP"] = 40 + 0.5 * util + rng.normal(0, 0.3, t.size)  # temperature follows power
        cols[f"{w}_DCGM_FI_DEV_POWER_USAGE"] = 60 + 2 * util
        cols[f"{w}_DCGM_FI_DEV_POWER_MGMT_LIMIT"] = np.full(t.size, 300.0)
        cols[f"{w}_DCGM_FI_DEV_CLOCK_THROTTLE_REASONS"] = np.zeros(t.size)
    return Case(metrics=pd.DataFrame(cols), inject_time=T0 + 300.0, name="more-work")


def test_a_replica_given_more_work_is_no_gpu_or_thermal_culprit() -> None:
    r = LlmRca().rank(_case(extra_tokens=2.6))  # 3.7 -> 6.3 tokens/s: below the 5 tokens/s floor, +70 % of its rate
    hyp = r.explanation["hypotheses"].get("ray-worker-2", {})
    assert hyp.get("gpu-thermal", 0.0) == 0.0 and hyp.get("gpu", 0.0) < 1.0, hyp


def test_a_hotter_gpu_at_the_same_work_still_counts() -> None:
    case = _case(extra_tokens=0.0)
    df = case.metrics.copy()
    hot = df["time"] >= T0 + 300.0
    df.loc[hot, "ray-worker-2_DCGM_FI_DEV_GPU_TEMP"] += 35.0  # hotter with no more work: a cooling problem
    r = LlmRca().rank(Case(metrics=df, inject_time=case.inject_time, name="hot"))
    assert r.explanation["hypotheses"]["ray-worker-2"].get("gpu-thermal", 0.0) >= 1.0
