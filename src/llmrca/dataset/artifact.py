"""The paper's artifact's raw result tree, read in place (exalsius/rca-llm, as its Ansible playbooks fetch it).

One experiment run of the artifact is a folder ::

    <experiment>-<fault>-stress-<target>/results/<run>-iteration-<n>/
        apply_result_chaos_anomaly_injection.json   the Chaos Mesh object applied (``result.metadata.creationTimestamp``)
        loki-logs.json                              the pods' logs (``export_logs.py``: time, pod, container, file, msg)
        deepflow-traces-request-list.csv            the eBPF request list (not read: its spans name pod IPs)
        rca-collector-results/                      ``export_rca_data.py``: data.csv (a saved pandas index, datetime
            data.csv, latency_aggregated_90.csv,    ``time``), the per-component p90 latency, the call graph
            latency_merged_90.csv, mpg.csv

The artifact's own preparation step (``prepare_llm_ref_stack_dataset`` in its RCAEval copy) turns each run into an
RCAEval case: ground truth from the experiment folder's name (``cpu-stress`` / ``memory-stress`` /
``network-stress`` / ``gpu-stress``, the target after it), the injection time from the applied object's creation
time, and ``latency_aggregated_90.csv`` merged into ``data.csv`` as ``<component>_latency-90`` columns.  This module
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
