"""Spans of every request as an eBPF tracer records them: gateway -> Serve proxy (-> replica) (µs timestamps).

The proxy's call to the replica is a Ray actor call (gRPC over HTTP/2 on a
channel opened when the actor started): an eBPF tracer attached to a running
cluster lacks the channel's connection preface and HPACK state and cannot
parse it, and the call bypasses the mesh (paper §4.2, §5.5).  By default
(``SimConfig.trace_actor_calls = "missing"``) a trace therefore holds the
gateway's and the proxy's spans only; ``"linked"`` adds the replica span.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from llmrca.dataset.io import TRACE_COLUMNS
from llmrca.telemetry import GATEWAY, HEAD
from llmrca.testbed.sim.engine import DONE, FAILED, SimResult


def build_traces(res: SimResult, rng: np.random.Generator) -> pd.DataFrame:
    """Spans of the requests that arrived and finished in the recorded window (µs integers), sorted by start.

    Columns are :data:`~llmrca.dataset.io.TRACE_COLUMNS`; ``rng`` draws the trace-id salt.
    """
    rq = res.requests
    hop = res.cfg.hop_latency_s
    fin = ((rq["status"] == DONE) | (rq["status"] == FAILED)) & (rq["arrival"] >= res.record_start) & (rq["t_done"] < res.t_end)
    idx = np.flatnonzero(fin)
    n = idx.size
    arr = rq["arrival"][idx]
    end = rq["t_done"][idx]
    rep = rq["replica"][idx]
    ready = rq["t_ready"][idx]
    dly = rq["delay"][idx]
    code = np.where(rq["status"][idx] == DONE, 200, rq["code"][idx]).astype(int)
    salt = int(rng.integers(1 << 30))
    tid = np.array([f"{salt:08x}{i:08x}" for i in idx.tolist()], dtype=object)
    us = 1e6
    gw_start = np.rint(arr * us).astype(np.int64)
    gw_dur = np.rint((end + hop - arr) * us).astype(np.int64)
    hd_start = np.rint((arr + hop) * us).astype(np.int64)
    hd_dur = np.rint((end - arr) * us).astype(np.int64)
    routed = rep >= 0
    rp_start = np.rint((ready - dly) * us).astype(np.int64)  # eBPF sees the send; netem delays delivery
    rp_dur = np.rint((end - (ready - dly)) * us).astype(np.int64)
    comps = np.asarray(res.components, dtype=object)
    # the Serve proxy that accepted the request (the head's when one proxy relays every request)
    ing = rq["ingress"][idx]
    by_pod = res.cfg.ingress == "every-pod" and res.cfg.trace_service_names == "pod"
    proxy = np.where(ing >= 0, comps[np.maximum(ing, 0)], HEAD) if by_pod else HEAD
    parts = [
        pd.DataFrame({"traceID": tid, "spanID": tid + "-g", "parentSpanID": "", "serviceName": GATEWAY, "methodName": "POST",
                      "operationName": "/v1/chat/completions", "duration": gw_dur, "statusCode": code, "startTime": gw_start}),
        pd.DataFrame({"traceID": tid, "spanID": tid + "-h", "parentSpanID": tid + "-g", "serviceName": proxy, "methodName": "POST",
                      "operationName": "proxy_request", "duration": hd_dur, "statusCode": code, "startTime": hd_start}),
    ]
    if n and routed.any() and res.cfg.trace_actor_calls == "linked":
        s = routed
        parts.append(
            pd.DataFrame({"traceID": tid[s], "spanID": tid[s] + "-r", "parentSpanID": tid[s] + "-h",
                          "serviceName": comps[rep[s]], "methodName": "POST", "operationName": "LLMServer.__call__",
                          "duration": rp_dur[s], "statusCode": code[s], "startTime": rp_start[s]})
        )
    df = pd.concat(parts, ignore_index=True)
    return df.sort_values(["startTime", "spanID"], kind="stable").reset_index(drop=True)[TRACE_COLUMNS]
