"""The paper's artifact's raw result tree, read in place (exalsius/rca-llm, as its Ansible playbooks fetch it).

One experiment run of the artifact is a folder ::

    <experiment>-<fault>-stress-<target>/results/<run>-iteration-<n>/
        apply_result_chaos_anomaly_injection.json   the Chaos Mesh object applied (``result.metadata.creationTimestamp``)
        loki-logs.json                              the pods' logs (``export_logs.py``: time, pod, container, file, msg)
        deepflow-traces-request-list.csv            DeepFlow's eBPF request list (``export_traces.py``): one span per
                                                    observed request, the server named by its pod IP
        rca-collector-results/                      ``export_rca_data.py``: data.csv (a saved pandas index, datetime
            data.csv, latency_aggregated_90.csv,    ``time``), the per-component p90 latency, the call graph
            latency_merged_90.csv, mpg.csv

The artifact's own preparation step (``prepare_llm_ref_stack_dataset`` in its RCAEval copy) turns each run into an
RCAEval case: ground truth from the experiment folder's name (``cpu-stress`` / ``memory-stress`` /
``network-stress`` / ``gpu-stress``, the target after it), the injection time from the applied object's creation
time, ``latency_aggregated_90.csv`` merged into ``data.csv`` as ``<component>_latency-90`` columns, and the request
list turned into RCAEval's ``traces.csv`` (``_transform_traces``: a span's service is the component whose
``<component>_pod_ip`` in ``data.csv`` is the request's server IP).  This module
reads the same facts, so a ``rca-collector-results`` folder is a case as it stands (every use is noted), and
``llmrca dataset import`` of the fetched tree writes the prepared cases.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import pandas as pd

#: The folder of one run's exported metrics.
RUN_FOLDER = "rca-collector-results"
#: The applied Chaos Mesh object, beside :data:`RUN_FOLDER`.
INJECTION_JSON = "apply_result_chaos_anomaly_injection.json"
#: The pods' logs, beside :data:`RUN_FOLDER`.
LOGS_JSON = "loki-logs.json"
#: DeepFlow's request list, beside :data:`RUN_FOLDER`.
TRACES_CSV = "deepflow-traces-request-list.csv"
#: Its columns (DeepFlow's ``l7_flow_log`` as ``export_traces.py`` names them) -> RCAEval's trace columns, as the
#: artifact's preparation renames them; ``Response Delay`` is DeepFlow's ``response_duration`` in microseconds.
TRACE_RENAME: dict[str, str] = {
    "Start Time": "time", "Trace ID": "traceID", "Span ID": "spanID", "Server IP": "serviceName", "Endpoint": "methodName",
    "Request Resource": "operationName", "Response Delay": "duration", "Response Code": "statusCode",
    "Parent Span ID": "parentSpanID",
}  # fmt: skip
#: The per-component p90 latency (the sum over the mesh edges a component is on), in :data:`RUN_FOLDER`.
LATENCY_CSV = "latency_aggregated_90.csv"
#: The experiment folder's fault words (the artifact's ``_extract_anomaly_type``) -> fault type.
STRESS_FAULTS: dict[str, str] = {"cpu-stress": "cpu", "memory-stress": "memory", "network-stress": "network", "gpu-stress": "gpu"}
_MAX_JSON_BYTES = 256 * 1024 * 1024


def is_run_folder(folder: Path) -> bool:
    """Is ``folder`` an artifact run's ``rca-collector-results`` folder (named so, beside the applied object)?"""
    return folder.name == RUN_FOLDER and (folder.parent / INJECTION_JSON).is_file()


def run_truth(folder: Path) -> tuple[str, str, str] | None:
    """``(experiment folder name, target, fault type)`` of an artifact run folder, read from
    ``<experiment>-<fault>-stress-<target>/results/<run>/rca-collector-results`` as the artifact's preparation
    reads it; None for another folder or an experiment name without a fault word."""
    if folder.name != RUN_FOLDER or folder.parent.parent.name != "results":
        return None
    item = folder.parent.parent.parent.name
    for word, fault in STRESS_FAULTS.items():
        if f"-{word}-" in item:
            target = item.split(f"-{word}-")[-1]
            return (item, target, fault) if target else None
    return None


def run_iteration(folder: Path) -> str | None:
    """The run's repetition (``<run>-iteration-<n>`` -> ``n``), or None."""
    m = re.search(r"-iteration-(\w+)$", folder.parent.name)
    return m.group(1) if m else None


def _read_json(path: Path, root: Path) -> object:
    from llmrca.dataset.safe_io import read_bytes_bounded

    return json.loads(read_bytes_bounded(path, _MAX_JSON_BYTES, path.name, root=root).decode("utf-8", errors="replace"))


def run_inject_time(folder: Path) -> tuple[float | None, str]:
    """``(epoch seconds, note)`` from ``../apply_result_chaos_anomaly_injection.json`` (``result.metadata.
    creationTimestamp``, RFC 3339; the object's creation is the injection, as the artifact's preparation takes it),
    or ``(None, why not)``."""
    from llmrca.dataset.normalise import to_seconds

    path = folder.parent / INJECTION_JSON
    try:
        stamp = _read_json(path, folder.parent)["result"]["metadata"]["creationTimestamp"]  # type: ignore[index]
    except (OSError, ValueError, KeyError, TypeError) as e:
        return None, f"{INJECTION_JSON} holds no result.metadata.creationTimestamp ({type(e).__name__})"
    secs, _, prob = to_seconds(str(stamp), INJECTION_JSON)
    if prob or secs is None:
        return None, f"{INJECTION_JSON}: creationTimestamp {stamp!r} is no RFC 3339 time"
    return secs, f"injection time {secs} from ../{INJECTION_JSON} (the Chaos Mesh object's creationTimestamp {stamp})"


def merge_run_latency(folder: Path, basic: pd.DataFrame, notes: list[str]) -> pd.DataFrame:
    """``basic`` with ``latency_aggregated_90.csv``'s columns added as ``<component>_latency-90`` (matched on
    ``time``, as the artifact's preparation merges them); ``basic`` unchanged when the file is absent or
    unreadable (noted), or when ``basic`` has latency columns already."""
    from llmrca.dataset.normalise import _column_seconds
    from llmrca.dataset.safe_io import MAX_CSV_BYTES, read_bytes_bounded

    path = folder / LATENCY_CSV
    if not path.is_file() or "time" not in basic or any(str(c).endswith("_latency-90") for c in basic.columns):
        return basic
    try:
        import io

        lat = pd.read_csv(io.BytesIO(read_bytes_bounded(path, MAX_CSV_BYTES, path.name, root=folder)))
    except (OSError, ValueError, pd.errors.ParserError) as e:
        notes.append(f"{LATENCY_CSV} was not read ({type(e).__name__}: {str(e)[:120]}); the case has no latency columns")
        return basic
    lat = lat.loc[:, [c for c in lat.columns if not str(c).startswith("Unnamed")]]  # a saved pandas index
    if "time" not in lat:
        notes.append(f"{LATENCY_CSV} has no 'time' column; the case has no latency columns")
        return basic
    secs, _ = _column_seconds(lat["time"])
    if secs is None:
        notes.append(f"{LATENCY_CSV}: its 'time' is neither epoch numbers nor date-times; the case has no latency columns")
        return basic
    cols = [c for c in lat.columns if c != "time" and "_" not in str(c)]
    add = pd.DataFrame({f"{c}_latency-90": pd.to_numeric(lat[c], errors="coerce").to_numpy(dtype=float) for c in cols})
    add["time"] = np.round(secs, 3)
    add = add.drop_duplicates("time", keep="last")
    merged = basic.assign(time=basic["time"].astype(float).round(3)).merge(add, on="time", how="left")
    merged["time"] = basic["time"].to_numpy()
    hit = int(merged[[f"{c}_latency-90" for c in cols]].notna().any(axis=1).sum()) if cols else 0
    notes.append(f"{LATENCY_CSV}: {len(cols)} component(s)' p90 latency added as <component>_latency-90, as the artifact's "
                 f"preparation merges it ({hit} of {len(basic)} rows matched by time)")
    return merged


def run_logs(folder: Path, notes: list[str]) -> pd.DataFrame | None:
    """``../loki-logs.json`` (a list of ``{time, pod, container, file, msg}``) as logs (time, container_name,
    message), as the artifact's preparation converts it; None when absent or unreadable (noted)."""
    path = folder.parent / LOGS_JSON
    if not path.is_file():
        return None
    try:
        rows = _read_json(path, folder.parent)
    except (OSError, ValueError) as e:
        notes.append(f"../{LOGS_JSON} was not read ({type(e).__name__}: {str(e)[:120]}); the case is used without logs")
        return None
    if not isinstance(rows, list):
        notes.append(f"../{LOGS_JSON} is not a list of log records; the case is used without logs")
        return None
    recs = [r for r in rows if isinstance(r, dict) and "time" in r]
    df = pd.DataFrame({
        "time": [r.get("time") for r in recs],
        "container_name": [r.get("container") or r.get("pod") for r in recs],
        "message": [r.get("msg", r.get("log", "")) for r in recs],
    })  # fmt: skip
    notes.append(f"logs read from ../{LOGS_JSON} ({len(df)} records; container_name from each record's container)")
    return df


def run_traces(folder: Path, notes: list[str]) -> pd.DataFrame | None:
    """``../deepflow-traces-request-list.csv`` as RCAEval traces (time, traceID, spanID, serviceName, methodName,
    operationName, duration in µs, statusCode, parentSpanID, startTime in µs), as the artifact's preparation
    converts it: each request's ``Server IP`` is mapped to the component whose ``<component>_pod_ip`` column in
    ``data.csv`` holds it, and requests without a trace id, an operation, a method or a known server are left
    out (counted in a note).  ``Start Time`` is an ISO time without offset (the exporter's local time, UTC in
    its container), read as UTC as the preparation does.  None when the file is absent, unreadable or maps no
    request (noted).

    Source: exalsius/rca-llm ``export_traces.py`` (the request list) and ``RCAEval/utility`` ``_transform_traces``.
    """
    import csv
    import io

    from llmrca.dataset.normalise import parse_datetimes
    from llmrca.dataset.safe_io import MAX_CSV_BYTES, read_bytes_bounded

    path = folder.parent / TRACES_CSV
    if not path.is_file():
        return None
    where = f"../{TRACES_CSV}"
    try:
        raw = read_bytes_bounded(path, MAX_CSV_BYTES, path.name, root=folder.parent).decode("utf-8", errors="replace")
        ips = _pod_ips(folder)
        bad: list[list[str]] = []
        req = pd.read_csv(io.StringIO(raw), dtype=str, keep_default_na=False, engine="python",
                          on_bad_lines=lambda line: bad.append(line) and None, quoting=csv.QUOTE_MINIMAL)  # fmt: skip
    except (OSError, ValueError, pd.errors.ParserError, pd.errors.EmptyDataError) as e:
        notes.append(f"{where} was not read ({type(e).__name__}: {str(e)[:120]}); the case is used without traces")
        return None
    if not ips:
        notes.append(f"{where} was not used: data.csv has no <component>_pod_ip columns to name its requests' servers "
                     "(the case is used without traces)")
        return None
    lacking = [c for c in ("Start Time", "Trace ID", "Span ID", "Server IP", "Response Delay") if c not in req.columns]
    if lacking:
        notes.append(f"{where} has no {lacking} column(s) (have {list(req.columns)[:8]}); the case is used without traces")
        return None
    renamed = req.rename(columns=TRACE_RENAME)
    df = renamed[[c for c in TRACE_RENAME.values() if c in renamed.columns]]
    df = df.assign(serviceName=df["serviceName"].str.strip().map(ips))
    keep = df["traceID"].str.strip().ne("") & df["serviceName"].notna()
    for c in ("operationName", "methodName"):
        if c in df:
            keep &= df[c].str.strip().ne("")
    secs, _, _ = parse_datetimes(df["time"])
    secs = pd.Series(secs, index=df.index, dtype=float)
    dur = pd.to_numeric(df["duration"], errors="coerce")
    keep &= secs.notna() & dur.notna()
    dropped = int((~keep).sum())
    df = df[keep].assign(duration=dur[keep], startTime=np.round(secs[keep] * 1e6), startTimeMillis=np.floor(secs[keep] * 1e3))
    if df.empty:
        notes.append(f"{where}: none of its {len(req)} request(s) has a trace id, an operation and a server IP of a pod in "
                     "data.csv (the case is used without traces)")
        return None
    skipped = f", {len(bad)} malformed line(s) skipped" if bad else ""
    notes.append(f"traces read from {where}: {len(df)} of {len(req)} request(s) as spans, the server IP named by data.csv's "
                 f"<component>_pod_ip ({dropped} without a trace id, an operation or a known server left out, as the "
                 f"artifact's preparation does{skipped}); times without offset read as UTC")
    return df.reset_index(drop=True)


def _pod_ips(folder: Path) -> dict[str, str]:
    """Pod IP -> component from ``data.csv``'s ``<component>_pod_ip`` columns (every IP a column holds: a pod
    restarted with a new IP keeps its component); an IP claimed by two components is left out."""
    import io

    from llmrca.dataset.safe_io import MAX_CSV_BYTES, read_bytes_bounded

    head = pd.read_csv(io.BytesIO(read_bytes_bounded(folder / "data.csv", MAX_CSV_BYTES, "data.csv", root=folder)), dtype=str,
                       keep_default_na=False)  # fmt: skip
    owners: dict[str, set[str]] = {}
    for col in head.columns:
        if str(col).endswith("_pod_ip"):
            comp = str(col)[: -len("_pod_ip")]
            for ip in head[col].str.strip().unique():
                if ip:
                    owners.setdefault(ip, set()).add(comp)
    return {ip: next(iter(c)) for ip, c in owners.items() if len(c) == 1}
