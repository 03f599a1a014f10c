"""Read and write cases in the RCAEval-compatible on-disk layout.

::

    <dataset>/dataset.json                       manifest (ours)
    <dataset>/<component>_<fault>/<rep>/
        data.csv            time + <component>_<metric> (the ``basic`` set)
        data_extended.csv   the ``extended`` set, when the case has one (ours)
        logs.csv            time, container_name, message
        traces.csv          traceID, spanID, parentSpanID, serviceName, methodName,
                            operationName, duration (µs), statusCode, startTime (µs)
        inject_time.txt     epoch seconds
        case.json           fault, root causes, window, topology, provenance (ours)

Plain RCAEval / rca-llm trees without ``case.json`` are read too: the ground
truth then comes from the folder name ``<component>_<fault>``.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

import pandas as pd

from llmrca.dataset.fastcsv import write_csv
from llmrca.model import Case, CaseValidationError, FaultRecord, Topology, normalize_fault_type, split_column

SCHEMA_VERSION = 1
METRIC_FILES = {"basic": "data.csv", "extended": "data_extended.csv"}
LOG_COLUMNS = ["time", "container_name", "message"]
TRACE_COLUMNS = [
    "traceID",
    "spanID",
    "parentSpanID",
    "serviceName",
    "methodName",
    "operationName",
    "duration",
    "statusCode",
    "startTime",
]


def _json_default(o: Any) -> Any:
    if hasattr(o, "item"):
        return o.item()
    if isinstance(o, set | frozenset | tuple):
        return list(o)
    raise TypeError(f"not JSON serialisable: {type(o).__name__}")


def write_json(path: Path, obj: Any) -> None:
    """Write JSON atomically (temp file + rename) so a crash leaves no half file."""
    tmp = path.with_suffix(path.suffix + ".tmp")
    tmp.write_text(json.dumps(obj, indent=2, default=_json_default) + "\n")
    os.replace(tmp, path)


def case_json(case: Case) -> dict[str, Any]:
    return {
        "schema": SCHEMA_VERSION,
        "name": case.name,
        "inject_time": case.inject_time,
        "fault": case.fault.to_dict() if case.fault else None,
        "root_causes": sorted(case.root_causes),
        "topology": case.topology.to_dict() if case.topology else None,
        "metric_sets": {k: METRIC_FILES.get(k, f"data_{k}.csv") for k in case.metric_sets},
        "meta": case.meta,
    }


def write_case(case: Case, folder: str | Path, *, validate: bool = True) -> Path:
    """Write one case into ``folder`` (created); returns the folder."""
    if validate:
        case.validate()
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    for set_name, df in case.metric_sets.items():
        write_csv(df, folder / METRIC_FILES.get(set_name, f"data_{set_name}.csv"))
    if case.logs is not None:
        write_csv(case.logs, folder / "logs.csv")
    if case.traces is not None:
        write_csv(case.traces, folder / "traces.csv")
    (folder / "inject_time.txt").write_text(f"{int(case.inject_time) if float(case.inject_time).is_integer() else case.inject_time}\n")
    write_json(folder / "case.json", case_json(case))
    return folder


def _read_csv(path: Path, what: str) -> pd.DataFrame:
    try:
        return pd.read_csv(path)
    except pd.errors.EmptyDataError:
        return pd.DataFrame()
    except (OSError, UnicodeDecodeError, pd.errors.ParserError) as e:
        raise CaseValidationError([f"cannot read {what} {path}: {e}; it must be a UTF-8 comma-separated file with a header row"], where=str(path.parent)) from e


def _truth_from_folder(folder: Path) -> tuple[str | None, str | None]:
    """``<component>_<fault>/<rep>`` (or ``<component>_<fault>`` itself) -> (component, fault)."""
    for part in (folder.parent.name, folder.name):
        comp, metric = split_column(part)
        if metric:
            return comp, normalize_fault_type(metric)
    return None, None


def read_case(folder: str | Path, *, validate: bool = True) -> Case:
    """Read one case folder; raise :class:`CaseValidationError` on any problem."""
    folder = Path(folder)
    if not folder.is_dir():
        raise CaseValidationError([f"{folder} is not a directory"], where=str(folder))
    try:
        case = _read_case(folder)
    except CaseValidationError:
        raise
    except (KeyError, TypeError, ValueError, AttributeError) as e:
        # a case.json with missing or mistyped fields
        raise CaseValidationError(
            [f"case.json in {folder} is malformed ({type(e).__name__}: {e}); see docs/dataset.md for its fields"], where=str(folder)
        ) from e
    if validate:
        case.validate()
    return case


def _read_case(folder: Path) -> Case:
    spec: dict[str, Any] = {}
    cj = folder / "case.json"
    if cj.exists():
        try:
            spec = json.loads(cj.read_text())
        except (OSError, UnicodeDecodeError, json.JSONDecodeError) as e:
            raise CaseValidationError([f"cannot read {cj}: {e}; fix or delete it"], where=str(folder)) from e
        if not isinstance(spec, dict):
            raise CaseValidationError([f"{cj} must hold a JSON object, not {type(spec).__name__}"], where=str(folder))
    files = spec.get("metric_sets") or {"basic": "data.csv"}
    if not (folder / files.get("basic", "data.csv")).exists():
        raise CaseValidationError([f"no {files.get('basic', 'data.csv')} in {folder}; a case needs its metrics"], where=str(folder))
    sets: dict[str, pd.DataFrame] = {}
    for set_name, fname in files.items():
        p = folder / fname
        if p.exists():
            sets[set_name] = _read_csv(p, f"metric set {set_name!r}")
    inject = spec.get("inject_time")
    if inject is None:
        it = folder / "inject_time.txt"
        if not it.exists():
            raise CaseValidationError([f"no inject_time.txt in {folder}; write the injection time in epoch seconds"], where=str(folder))
        try:
            raw = it.read_text().strip()
        except (OSError, UnicodeDecodeError) as e:
            raise CaseValidationError([f"cannot read {it}: {e}"], where=str(folder)) from e
        try:
            inject = float(raw)
        except ValueError:
            raise CaseValidationError([f"{it} holds {raw!r}, not a number of epoch seconds"], where=str(folder)) from None
    try:
        inject = float(inject)
    except (TypeError, ValueError):
        raise CaseValidationError([f"case.json inject_time {inject!r} is not a number of epoch seconds"], where=str(folder)) from None
    logs = _read_csv(folder / "logs.csv", "logs") if (folder / "logs.csv").exists() else None
    traces = _read_csv(folder / "traces.csv", "traces") if (folder / "traces.csv").exists() else None
    fault = FaultRecord.from_dict(spec["fault"]) if spec.get("fault") else None
    roots = spec.get("root_causes")
    if fault is None or roots is None:
        comp, ftype = _truth_from_folder(folder)
        if fault is None and comp is not None and ftype is not None:
            fault = FaultRecord(type=ftype, target=comp, start=inject)
        if roots is None:
            roots = [comp] if comp is not None else []
    topo = Topology.from_dict(spec["topology"]) if spec.get("topology") else None
    basic = sets.get("basic", next(iter(sets.values())))
    return Case(
        metrics=basic,
        inject_time=inject,
        name=spec.get("name") or _case_name(folder),
        logs=logs,
        traces=traces,
        fault=fault,
        root_causes=frozenset(roots),
        topology=topo,
        meta=dict(spec.get("meta", {})),
        metric_sets=sets,
        metric_set="basic" if "basic" in sets else next(iter(sets)),
    )


def _case_name(folder: Path) -> str:
    return f"{folder.parent.name}/{folder.name}"


def find_case_dirs(root: str | Path) -> list[Path]:
    """Every folder under ``root`` holding a ``data.csv`` or ``case.json``, sorted."""
    root = Path(root)
    if (root / "data.csv").exists() or (root / "case.json").exists():
        return [root]
    found = {p.parent for p in root.rglob("data.csv")} | {p.parent for p in root.rglob("case.json")}
    return sorted(found, key=_natural_key)


def _natural_key(p: Path) -> list[Any]:
    import re

    return [int(t) if t.isdigit() else t for t in re.split(r"(\d+)", str(p))]


class Dataset:
    """A folder of cases with a ``dataset.json`` manifest (optional for imports)."""

    def __init__(self, root: str | Path) -> None:
        self.root = Path(root).absolute()  # a relative folder must not be joined to the root twice
        if not self.root.exists():
            raise FileNotFoundError(f"dataset {self.root} does not exist")
        mf = self.root / "dataset.json"
        self.manifest: dict[str, Any] = json.loads(mf.read_text()) if mf.exists() else {}
        self._dirs = find_case_dirs(self.root)

    def __len__(self) -> int:
        return len(self._dirs)

    def case_dirs(self) -> list[Path]:
        return list(self._dirs)

    def case_id(self, folder: Path) -> str:
        """Stable id of a case: its path relative to the dataset root."""
        rel = folder.relative_to(self.root)
        return str(rel) if str(rel) != "." else folder.name

    def load(self, folder: Path | str) -> Case:
        folder = Path(folder)
        if not folder.is_absolute():
            folder = self.root / folder
        case = read_case(folder)
        case.name = self.case_id(folder)
        return case

    def iter_cases(self) -> Iterator[tuple[Path, Case | CaseValidationError]]:
        """Yield (folder, case) or (folder, error): a bad case never stops the loop."""
        for d in self._dirs:
            try:
                yield d, self.load(d)
            except CaseValidationError as e:
                yield d, e

    @staticmethod
    def write(cases: Iterable[Case], root: str | Path, *, info: dict[str, Any] | None = None) -> Dataset:
        """Write cases as ``<target>_<fault>/<rep>`` folders plus ``dataset.json``."""
        root = Path(root)
        root.mkdir(parents=True, exist_ok=True)
        entries = []
        counts: dict[str, int] = {}
        for case in cases:
            entries.append(add_case(case, root, counts))
        write_manifest(root, entries, info)
        return Dataset(root)


def case_folder_name(case: Case) -> str:
    target = case.fault.target if case.fault else (sorted(case.root_causes)[0] if case.root_causes else "none")
    ftype = case.fault.type if case.fault else "none"
    return f"{target}_{ftype}"


def add_case(case: Case, root: Path, counts: dict[str, int] | None = None) -> dict[str, Any]:
    """Write ``case`` as the next repetition of its ``<target>_<fault>`` folder."""
    group = case_folder_name(case)
    counts = counts if counts is not None else {}
    if group not in counts:
        existing = [int(p.name) for p in (root / group).glob("*") if p.name.isdigit()] if (root / group).exists() else []
        counts[group] = max(existing, default=0)
    counts[group] += 1
    folder = root / group / str(counts[group])
    case.name = f"{group}/{counts[group]}"
    write_case(case, folder)
    return {
        "path": f"{group}/{counts[group]}",
        "fault": case.fault_type,
        "target": case.fault.target if case.fault else None,
        "root_causes": sorted(case.root_causes),
    }


def write_manifest(root: Path, entries: list[dict[str, Any]], info: dict[str, Any] | None = None) -> None:
    from llmrca import __version__

    write_json(
        root / "dataset.json",
        {"schema": SCHEMA_VERSION, "llmrca": __version__, **(info or {}), "n_cases": len(entries), "cases": entries},
    )
