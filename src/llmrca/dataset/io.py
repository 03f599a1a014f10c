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

import io
import json
import os
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

import pandas as pd

from llmrca.dataset.fastcsv import write_csv
from llmrca.model import (
    FAULT_ALIASES,
    Case,
    CaseValidationError,
    FaultRecord,
    Topology,
    components_of,
    normalize_fault_type,
    split_column,
)

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
        "normalised": list(case.meta.get("normalised", [])),
        "meta": {k: v for k, v in case.meta.items() if k != "normalised"},
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


def _read_text_csv(path: Path, what: str, notes: list[str]) -> pd.DataFrame | None:
    """A logs / traces CSV; non-UTF-8 bytes decoded with replacement (noted); None if unreadable (noted)."""
    try:
        return pd.read_csv(path)  # the common case: UTF-8
    except pd.errors.EmptyDataError:
        return pd.DataFrame()
    except (UnicodeDecodeError, pd.errors.ParserError):
        pass
    except OSError as e:
        notes.append(f"{path.name}: cannot read ({e}); the case is used without {what}")
        return None
    raw = path.read_bytes()
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as e:
        text = raw.decode("utf-8", errors="replace")
        n_bad = text.count("\ufffd")
        notes.append(
            f"warning: {path.name} is not valid UTF-8 (first bad byte at offset {e.start}); decoded with "
            f"{n_bad} replacement character(s) U+FFFD"
        )
    try:
        return pd.read_csv(io.StringIO(text))
    except pd.errors.EmptyDataError:
        return pd.DataFrame()
    except pd.errors.ParserError as e:
        notes.append(f"warning: {path.name} is not a readable CSV ({e}); the case is used without {what}")
        return None


def _truth_from_folder(folder: Path) -> tuple[str | None, str | None]:
    """Ground truth from folder names -> (component, fault).

    ``<component>_<fault>/<rep>`` (or ``<component>_<fault>`` itself) splits at
    the first ``_`` (RCAEval's rule); a name without ``_`` such as RCD's
    ``carts-db-cpu`` splits at the last ``-`` whose suffix is a known fault
    spelling (:data:`~llmrca.model.FAULT_ALIASES`), since service names may
    contain ``-`` themselves.
    """
    for part in (folder.parent.name, folder.name):
        comp, metric = split_column(part)
        if metric:
            return comp, normalize_fault_type(metric)
    for part in (folder.parent.name, folder.name):
        pieces = part.split("-")
        for i in range(len(pieces) - 1, 0, -1):
            suffix = "-".join(pieces[i:]).lower()
            if suffix in FAULT_ALIASES:
                return "-".join(pieces[:i]), normalize_fault_type(suffix)
    return None, None


def read_case(folder: str | Path, *, validate: bool = True, normalise: bool = True) -> Case:
    """Read one case folder in any accepted layout (see :mod:`llmrca.dataset.layouts`).

    With ``normalise`` (default) every repair of :mod:`llmrca.dataset.normalise`
    is applied and noted in ``case.meta["normalised"]``.  Raises
    :class:`CaseValidationError` listing every problem of the case at once.
    """
    folder = Path(folder)
    if not folder.is_dir():
        raise CaseValidationError([f"{folder} is not a directory"], where=str(folder))
    try:
        case = _read_case(folder, normalise=normalise)
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


def _topology_from_mpg(path: Path, components: list[str], notes: list[str]) -> Topology | None:
    """rca-llm's ``mpg.csv`` (``,source,destination``: source calls destination) as a Topology."""
    try:
        g = pd.read_csv(path)
    except (OSError, UnicodeDecodeError, pd.errors.ParserError, pd.errors.EmptyDataError) as e:
        notes.append(f"mpg.csv unreadable ({e}); no call graph")
        return None
    if not {"source", "destination"} <= set(g.columns):
        notes.append(f"mpg.csv has no source/destination columns (have {list(g.columns)}); no call graph")
        return None
    edges = [(str(a), str(b)) for a, b in zip(g["source"], g["destination"], strict=True) if pd.notna(a) and pd.notna(b)]
    nodes = list(dict.fromkeys([*components, *(n for e in edges for n in e)]))
    heads = [n for n in nodes if any(a == n for a, _ in edges) and not any(b == n for _, b in edges)]
    notes.append(f"call graph read from mpg.csv ({len(edges)} edges)")
    return Topology(nodes=tuple(nodes), edges=tuple(edges), entry=heads[0] if len(heads) == 1 else None)


def _read_case(folder: Path, *, normalise: bool = True) -> Case:
    from llmrca.dataset.layouts import detect_layout
    from llmrca.dataset.normalise import normalise_logs, normalise_metrics, normalise_traces, time_range, to_seconds

    spec: dict[str, Any] = {}
    cj = folder / "case.json"
    if cj.exists():
        try:
            spec = json.loads(cj.read_text())
        except (OSError, UnicodeDecodeError, json.JSONDecodeError) as e:
            raise CaseValidationError([f"cannot read {cj}: {e}; fix or delete it"], where=str(folder)) from e
        if not isinstance(spec, dict):
            raise CaseValidationError([f"{cj} must hold a JSON object, not {type(spec).__name__}"], where=str(folder))
    layout = detect_layout(folder, spec)
    problems: list[str] = list(layout.problems)
    notes: list[str] = []
    identity: dict[str, list[str]] = {}
    sets: dict[str, pd.DataFrame] = {}
    rcd_inject: float | None = None
    for set_name, fname in layout.metric_files.items():
        if layout.rcd_files is not None and set_name == "basic":
            parts = []
            for f in layout.rcd_files:
                try:
                    df = _read_csv(folder / f, f"metric set {set_name!r}")
                except CaseValidationError as e:
                    problems += e.problems
                    continue
                if normalise:
                    df, n, p, ident = normalise_metrics(df, f)
                    notes += n
                    problems += p
                    identity.update(ident)
                parts.append(df)
            if len(parts) == 2:
                normal, anomalous = parts
                if not anomalous.empty and "time" in anomalous.columns and pd.api.types.is_numeric_dtype(anomalous["time"]):
                    rcd_inject = float(anomalous["time"].iloc[0])
                    notes.append(
                        f"RCD layout: normal.csv ({len(normal)} rows) + anomalous.csv ({len(anomalous)} rows); "
                        f"injection time = first anomalous row ({rcd_inject})"
                    )
                elif anomalous.empty:
                    problems.append("anomalous.csv has no rows; the RCD layout takes the injection time from its first row")
                sets[set_name] = pd.concat([normal, anomalous], ignore_index=True)
            continue
        p = folder / fname
        if not p.exists():
            continue
        try:
            df = _read_csv(p, f"metric set {set_name!r}")
        except CaseValidationError as e:
            problems += e.problems
            continue
        if normalise:
            df, n, pr, ident = normalise_metrics(df, fname)
            notes += n
            problems += pr
            identity.update(ident)
        sets[set_name] = df
    if layout.name == "rcaeval-re2":
        notes.append(f"RCAEval RE2/RE3 layout: {' + '.join(f'{f} as the {k} set' for k, f in layout.metric_files.items())}")
    # injection time: case.json, else inject_time.txt, else (RCD) the first anomalous row
    inject: float | None = None
    raw: Any = spec.get("inject_time")
    what = "case.json inject_time"
    if raw is None:
        it = folder / "inject_time.txt"
        what = "inject_time.txt"
        if it.exists():
            try:
                raw = it.read_text().strip()
            except (OSError, UnicodeDecodeError) as e:
                problems.append(f"cannot read {it}: {e}")
        elif rcd_inject is None:
            problems.append(
                f"no inject_time.txt in {folder}; write the injection time (epoch seconds or RFC 3339), "
                "or use the RCD layout normal.csv + anomalous.csv (the injection is the first anomalous row)"
            )
    if raw is not None:
        if normalise:
            inject, n, prob = to_seconds(raw, what)
            notes += n
            if prob:
                problems.append(prob.replace(f"{what} holds", f"{folder / 'inject_time.txt'} holds") if what == "inject_time.txt" else prob)
        else:
            try:
                inject = float(raw)
            except (TypeError, ValueError):
                problems.append(f"{what} holds {raw!r}, not a number of epoch seconds")
    elif rcd_inject is not None:
        inject = rcd_inject
    logs = traces = None
    ref = time_range(sets["basic"]) if "basic" in sets else None
    if (folder / "logs.csv").exists():
        logs = _read_text_csv(folder / "logs.csv", "logs", notes)
        if logs is not None and normalise:
            logs, n = normalise_logs(logs, ref=ref)
            notes += n
    if (folder / "traces.csv").exists():
        traces = _read_text_csv(folder / "traces.csv", "traces", notes)
        if traces is not None and normalise:
            traces, n = normalise_traces(traces, ref=ref)
            notes += n
    fault = FaultRecord.from_dict(spec["fault"]) if spec.get("fault") else None
    roots = spec.get("root_causes")
    if fault is None or roots is None:
        comp, ftype = _truth_from_folder(folder)
        if fault is None and comp is not None and ftype is not None:
            fault = FaultRecord(type=ftype, target=comp, start=inject)
        if roots is None:
            roots = [comp] if comp is not None else []
    if not sets:
        raise CaseValidationError(problems or [f"no metrics in {folder}"], where=str(folder))
    basic_name = "basic" if "basic" in sets else next(iter(sets))
    basic = sets[basic_name]
    topo = Topology.from_dict(spec["topology"]) if spec.get("topology") else None
    if topo is None and (folder / "mpg.csv").exists():
        topo = _topology_from_mpg(folder / "mpg.csv", components_of(basic.columns), notes)
    meta = dict(spec.get("meta", {}))
    earlier = list(spec.get("normalised") or meta.pop("normalised", None) or [])
    if identity:
        meta["identity"] = {**meta.get("identity", {}), **identity}
    if layout.name != "llmrca":
        meta.setdefault("layout", layout.name)
    if earlier or notes:
        meta["normalised"] = [*earlier, *notes]
    case = Case(
        metrics=basic,
        inject_time=inject if inject is not None else float("nan"),
        name=spec.get("name") or _case_name(folder),
        logs=logs,
        traces=traces,
        fault=fault,
        root_causes=frozenset(roots),
        topology=topo,
        meta=meta,
        metric_sets=sets,
        metric_set=basic_name,
    )
    if problems:
        # one pass: the file-level problems plus everything the case itself shows
        more = case.problems() if inject is not None else [p for s, df in sets.items() for p in _frame_only(s, df)]
        if any("'time' is not numeric" in p for p in problems):  # already said, with the row
            more = [p for p in more if "'time' is not numeric" not in p]
        raise CaseValidationError([*problems, *more], where=str(folder))
    return case


def _frame_only(set_name: str, df: pd.DataFrame) -> list[str]:
    from llmrca.model import frame_problems

    return [f"metric set {set_name!r}: {p}" for p in frame_problems(df, None)]


def _case_name(folder: Path) -> str:
    return f"{folder.parent.name}/{folder.name}"


def find_case_dirs(root: str | Path) -> list[Path]:
    """Every folder under ``root`` that looks like a case, sorted.

    A folder looks like a case when it holds any file of
    :data:`llmrca.dataset.layouts.CASE_MARKERS` (``data.csv``, ``case.json``,
    ``simple_metrics.csv``, ``metrics.csv``, ``normal.csv``, ``anomalous.csv``,
    ``inject_time.txt``); whether it can be read is decided by :func:`read_case`,
    so a folder that cannot be read is reported, never silently skipped.
    """
    from llmrca.dataset.layouts import CASE_MARKERS

    root = Path(root)
    markers = set(CASE_MARKERS)
    if any((root / m).is_file() for m in CASE_MARKERS):
        return [root]
    found = [Path(d) for d, _, files in os.walk(root) if markers.intersection(files)]
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
