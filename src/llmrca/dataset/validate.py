"""Check every case of a dataset; import plain RCAEval / rca-llm trees."""

from __future__ import annotations

import os
import shutil
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from llmrca.dataset.io import (
    UNEXPECTED,
    Dataset,
    find_case_dirs,
    ground_truth_problem,
    is_warning_note,
    read_case,
    symlinked_duplicates,
    warning_lines,
    write_case,
    write_manifest,
)
from llmrca.dataset.layouts import CONSUMED, EXPECTED, archives_in, compressed_markers, extract_command, file_in_the_way
from llmrca.dataset.normalise import SAVED_INDEX_NAME
from llmrca.model import Case, CaseValidationError, no_basic_set_problem
from llmrca.names import printable


@dataclass
class DatasetCheck:
    """Result of checking a dataset: valid case ids and problems per invalid case."""

    root: Path
    valid: list[str] = field(default_factory=list)
    problems: dict[str, list[str]] = field(default_factory=dict)
    notes: dict[str, list[str]] = field(default_factory=dict)  # repairs made while reading, per case
    recorded: dict[str, list[str]] = field(default_factory=dict)  # repairs made earlier (at import), kept in case.json
    warnings: dict[str, list[str]] = field(default_factory=dict)  # suspicious but readable (case.json and folder name disagree)

    @property
    def ok(self) -> bool:
        return not self.problems and bool(self.valid)

    def to_dict(self) -> dict[str, object]:
        """The check as JSON-ready data (what ``dataset validate --json`` prints): ``status`` ``ok`` or
        ``problems``, the case ids and, per case, its problems, repairs, earlier repairs and warnings."""
        return {"status": "ok" if self.ok else "problems", "root": str(self.root), "n_valid": len(self.valid),
                "n_with_problems": len(self.problems), "valid": list(self.valid), "problems": dict(self.problems),
                "repaired": dict(self.notes), "repaired_at_import": dict(self.recorded), "warnings": dict(self.warnings)}


def _recorded_repairs(folder: Path) -> list[str]:
    """The repairs a case's ``case.json`` records from an earlier reading (``normalised``), [] when none."""
    import json

    try:
        data = json.loads((folder / "case.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return []
    got = data.get("normalised") if isinstance(data, dict) else None
    if not got and isinstance(data, dict) and isinstance(data.get("meta"), dict):
        got = data["meta"].get("normalised")
    return [str(n) for n in got] if isinstance(got, list) else []


def validate_dataset(root: str | Path, *, on_case: Callable[[int, int], None] | None = None) -> DatasetCheck:
    """Read and validate every case under ``root``; never stops at the first bad case.

    ``on_case(done, total)`` is called after each case (progress display).  Repairs made now are in
    ``notes``; those an earlier import recorded in ``case.json`` (``normalised``) are in ``recorded``.
    """
    root = Path(root)
    if not root.exists():
        raise FileNotFoundError(f"{root} does not exist")
    ds = Dataset(root)
    check = DatasetCheck(root)
    if ds.manifest_problems:
        check.problems["dataset.json"] = [*ds.manifest_problems, "dataset.json is ignored until fixed: cases are found by their files"]
    if len(ds) == 0:
        check.problems["."] = [nothing_readable(root)]
        return check
    readable: list[Path] = []
    for i, (folder, case) in enumerate(ds.iter_cases(), 1):
        if on_case is not None:
            on_case(i, len(ds))
        cid = ds.case_id(folder)
        if isinstance(case, CaseValidationError):
            check.problems[cid] = [*case.problems, *([case.truth_problem] if case.truth_problem else [])]
            continue
        readable.append(folder)
        if case.meta.get("normalised"):
            # warnings (case.json and folder name disagree) are said every time, even if an import recorded them
            warn = warning_lines(case.meta["normalised"])
            notes = [n for n in case.meta["normalised"] if not is_warning_note(n)]
            earlier = [n for n in _recorded_repairs(folder) if not is_warning_note(n)]
            if earlier and notes[: len(earlier)] == earlier:
                check.recorded[cid], notes = earlier, notes[len(earlier):]
            if warn:
                check.warnings[cid] = warn
            if notes:
                check.notes[cid] = notes
        no_truth = ground_truth_problem(case) or no_basic_set_problem(case.name or cid, case.metric_sets)
        if no_truth is not None:
            check.problems[cid] = [no_truth]
        else:
            check.valid.append(cid)
            flat = _flat_roots(case)
            if flat:
                check.warnings.setdefault(cid, []).append(
                    f"every metric column of the root cause {', '.join(flat)} is constant: no metric method can see the fault "
                    "in it (a fault that did not take, or an export that lost the values)"
                )
    mixed = layout_warning(ds, readable)
    if mixed:
        check.warnings["dataset"] = [mixed]
    if (twice := symlink_warning(ds, ds.case_dirs())) is not None:
        check.warnings.setdefault("dataset", []).append(twice)
    if (empty := empty_folder_warning(ds)) is not None:
        check.warnings.setdefault("dataset", []).append(empty)
    if (packed := archive_warning(root)) is not None:
        check.warnings.setdefault("dataset", []).append(packed)
    return check


def empty_folder_warning(ds: Dataset) -> str | None:
    """One sentence naming the empty folders under the dataset (no file, no folder in them: a repetition that was
    never written, or an export that failed), else None.  They hold no case, so nothing of them is scored."""
    empty: list[str] = []
    for d, dirs, files in os.walk(ds.root):
        dirs[:] = [x for x in dirs if not x.startswith(".")]
        if not dirs and not any(not f.startswith(".") for f in files) and Path(d) != ds.root:  # .DS_Store alone: empty
            empty.append(str(Path(d).relative_to(ds.root)))
    if not empty:
        return None
    empty.sort()
    return (f"{len(empty)} empty folder(s) hold no case and are not scored: {', '.join(empty[:5])}{' …' if len(empty) > 5 else ''} "
            "(a repetition that was never written, or a failed export?)")


def symlink_warning(ds: Dataset, folders: list[Path]) -> str | None:
    """One sentence when some of ``folders`` are the same folder as another (a symbolic link to a case of the
    dataset), else None: each is read and scored, so that case counts more than once."""
    twice = symlinked_duplicates(folders)
    if not twice:
        return None
    later, first = next(iter(twice.items()))
    return (f"{len(twice)} case folder(s) are the same folder as another case through a symbolic link (e.g. {ds.case_id(later)} "
            f"is {ds.case_id(first)}): each is read and scored, so the case counts twice; remove the link if that is not meant")


def _flat_roots(case: Case) -> list[str]:
    """The case's root causes whose basic-set metric columns are all constant (or empty), in order."""
    import numpy as np

    from llmrca.model import split_column

    out = []
    for root in sorted(case.root_causes or ()):
        cols = [c for c in case.metrics.columns if c != "time" and split_column(str(c))[0] == root]
        if not cols:
            continue  # no column at all: ground_truth_problem's to say
        v = case.metrics[cols].to_numpy(dtype=float)
        with np.errstate(all="ignore"):
            spread = np.nanmax(v, axis=0) - np.nanmin(v, axis=0) if np.isfinite(v).any() else np.zeros(len(cols))
        if not np.any(np.nan_to_num(spread) > 0):
            out.append(root)
    return out


def _raw_shape(folder: Path) -> tuple[tuple[str, ...], tuple[tuple[str, str], ...]] | None:
    """A case's basic-set columns (the header of its metric file) and call-graph edges, read without loading it
    and through the dataset layer's guarded readers (bounded, regular files only); None when either cannot be
    read (the case's own reading reports why) or when the header is one the reader repairs (its columns are then
    not the header's: :func:`layout_warning` compares only the cases whose header is their columns)."""
    from llmrca.dataset.safe_io import open_regular
    from llmrca.dataset.schema import read_case_json

    spec = None
    if (folder / "case.json").exists():
        spec, _ = read_case_json(folder / "case.json", root=folder)
        if spec is None:
            return None
    name = (spec.metric_sets or {}).get("basic", "data.csv") if spec is not None else "data.csv"
    edges = tuple(sorted((str(e[0]), str(e[1])) for e in spec.topology.edges)) if spec is not None and spec.topology else ()
    try:
        with open_regular(folder / name, "metric file", root=folder) as fh:
            header = fh.readline(1 << 20).decode("utf-8").removeprefix("\ufeff").strip()
            first_row = fh.readline(1 << 20).decode("utf-8", "replace").strip()
    except Exception:  # any reading problem is the case's own to report; this check only compares readable cases
        return None
    import csv

    names = [c.strip() for c in next(csv.reader([header]), [])]  # quoted names hold commas and doubled quotes
    if (names.count("time") != 1 or "" in names or not all(n.isprintable() for n in names) or any(_is_index_name(n) for n in names)
            or any("{" in n for n in names)):
        return None  # a header the reader repairs (another delimiter, a saved index, a repeated or renamed time, Prometheus series)
    values = [v.strip() for v in next(csv.reader([first_row]), [])]
    if len(values) == len(names):  # text in the first row: an identity column the reader drops, not a metric column
        names = [n for n, v in zip(names, values, strict=True) if n == "time" or not _is_text(v)]
    return tuple(sorted(names)), edges


def _is_text(value: str) -> bool:
    """A CSV field that is neither empty nor a number (``nan`` and ``inf`` are numbers to pandas)."""
    try:
        float(value)
    except ValueError:
        return value != ""
    return False


def _is_index_name(name: str) -> bool:
    """A header name the reader drops or renames: a saved pandas index, or a repeated ``time`` (``time.1``)."""
    return bool(SAVED_INDEX_NAME.fullmatch(name)) or name.startswith("time.")


def layout_warning(ds: Dataset, folders: list[Path]) -> str | None:
    """One sentence when the cases in ``folders`` differ in their metric columns or call graph (e.g. a dataset
    joined from two campaigns made with other settings), else None.  Reads only headers and ``case.json``."""
    shapes: dict[tuple, list[str]] = {}
    for f in folders:
        shape = _raw_shape(f)
        if shape is not None:
            shapes.setdefault(shape, []).append(ds.case_id(f))
    return _mixed_shapes(shapes) if len(shapes) > 1 else None


def _mixed_shapes(shapes: dict[tuple, list[str]]) -> str:
    """One sentence on cases that differ in their metric columns or call graph (e.g. a campaign continued with
    other simulator settings): methods then compare different data across the dataset's cases."""
    groups = sorted(shapes.items(), key=lambda kv: -len(kv[1]))
    (cols0, edges0), first = groups[0]
    parts = []
    for (cols, edges), ids in groups[1:]:
        diff = []
        if cols != cols0:
            more, fewer = sorted(set(cols) - set(cols0)), sorted(set(cols0) - set(cols))
            diff += [f"{len(more)} more column(s) (e.g. {more[0]})"] if more else []
            diff += [f"{len(fewer)} fewer column(s) (e.g. no {fewer[0]})"] if fewer else []
        if edges != edges0:
            diff.append("no call graph in case.json" if not edges else ("a call graph" if not edges0 else "another call graph")
                        + " (edges " + ", ".join(f"{a}->{b}" for a, b in edges[:4]) + (", ..." if len(edges) > 4 else "") + ")")
        parts.append(f"{len(ids)} case(s) such as {ids[0]} differ from them: {', '.join(diff)}")
    return (f"the cases are not alike: {len(first)} case(s) such as {first[0]} share one set of metric columns and one "
            f"call graph; " + "; ".join(parts) + ". Methods and their scores then compare different data "
            "(a dataset joined from two campaigns, or built with other settings?)")


@dataclass
class ImportReport:
    src: Path
    dst: Path
    imported: list[str] = field(default_factory=list)
    problems: dict[str, list[str]] = field(default_factory=dict)
    notes: dict[str, list[str]] = field(default_factory=dict)  # repairs, also in each case.json "normalised"
    kept: dict[str, list[str]] = field(default_factory=dict)  # files copied as they are (or not copied), per case

    @property
    def ok(self) -> bool:
        """True when every case was imported (and there was at least one)."""
        return bool(self.imported) and not self.problems


def import_tree(
    src: str | Path, dst: str | Path, *, overwrite: bool = False, on_case: Callable[[int, int], None] | None = None
) -> ImportReport:
    """Copy an RCAEval / rca-llm tree to ``dst`` adding ``case.json`` and ``dataset.json``.

    Ground truth comes from folder names (``ray-worker-1_cpu/1/``); invalid
    cases are listed in the report and not imported.  When no case can be
    imported nothing is written (no ``dataset.json``, and a destination this
    call created is removed again).
    """
    src, dst = Path(src).resolve(), Path(dst).resolve()
    if not src.is_dir():
        from llmrca.dataset.layouts import not_a_folder

        if src.exists():
            raise NotADirectoryError(not_a_folder(src))
        raise FileNotFoundError(f"{src} does not exist")
    if dst == src or src in dst.parents:
        raise ValueError(f"the destination {dst} must not be inside the source {src}")
    if (blocker := file_in_the_way(dst)) is not None:
        raise FileExistsError(f"{blocker} is a file; the destination {dst} must be a folder (a new or empty one)")
    if dst.exists() and any(dst.iterdir()) and not overwrite:
        raise FileExistsError(f"{dst} is not empty; choose an empty folder")
    created = not dst.exists()
    dst.mkdir(parents=True, exist_ok=True)
    rep = ImportReport(src, dst)
    entries = []
    folders = find_case_dirs(src)
    if not folders:
        rep.problems["."] = [nothing_readable(src)]
    for i, folder in enumerate(folders, 1):
        if on_case is not None:
            on_case(i, len(folders))
        rel = folder.relative_to(src)
        cid = str(rel) if str(rel) != "." else folder.name
        try:
            case = read_case(folder)
        except CaseValidationError as e:
            rep.problems[cid] = [*e.problems, *([e.truth_problem] if e.truth_problem else [])]
            continue
        except (Exception, RecursionError) as e:  # a reader bug is reported with the case, never a traceback
            rep.problems[cid] = [f"{UNEXPECTED} ({type(e).__name__}: {str(e)[:300]}); please report it with the case"]
            continue
        no_truth = ground_truth_problem(case) or no_basic_set_problem(case.name or cid, case.metric_sets)
        if no_truth is not None:
            rep.problems[cid] = [no_truth]
            continue
        case.name = cid
        if case.meta.get("normalised"):
            rep.notes[cid] = list(case.meta["normalised"])
        target = dst / rel
        write_case(case, target)
        read = files_read(folder, case)
        for extra in sorted(folder.iterdir()):  # keep files we do not interpret (notes, raw dumps) or could not read
            if extra.name in read or os.path.lexists(target / extra.name) or extra.is_dir():
                continue
            why = _copy_extra(extra, target / extra.name, src)
            if why:
                rep.kept.setdefault(cid, []).append(why)
            elif extra.name in CONSUMED or compressed_markers([extra.name]):
                rep.kept.setdefault(cid, []).append(f"{printable(extra.name)} was not read; an import copies it as it is")
        rep.imported.append(cid)
        entries.append({"path": cid, "fault": case.fault_type, "target": case.fault.target if case.fault else None, "root_causes": sorted(case.root_causes),
                        **({"healthy": True} if case.healthy else {})})
    if folders and (packed := archive_warning(src)) is not None:
        rep.kept["dataset"] = [packed]
    if entries:
        write_manifest(dst, entries, {"imported_from": str(src)})
    elif created and not any(dst.iterdir()):  # nothing imported: leave no dataset behind
        dst.rmdir()
    return rep


def files_read(folder: Path, case: Case) -> set[str]:
    """Names of the files in ``folder`` whose content ``case`` (read from it) holds: an import writes
    these anew and copies every other file as it is (a logs.csv that could not be read, the compressed
    copy next to a plain file, notes).  ``case.json`` and ``inject_time.txt`` (or its compressed copy)
    are always written anew."""
    import json

    from llmrca.dataset.layouts import detect_layout, present

    sets = None
    try:
        spec = json.loads((folder / "case.json").read_text(encoding="utf-8-sig")) if (folder / "case.json").is_file() else None
        sets = spec.get("metric_sets") if isinstance(spec, dict) and isinstance(spec.get("metric_sets"), dict) else None
    except (OSError, ValueError):
        pass
    lay = detect_layout(folder, {"metric_sets": sets} if sets else None)
    read = {"case.json", *(lay.rcd_files or ()), *(f for f in lay.metric_files.values() if "+" not in f)}
    if (it := present(folder, "inject_time.txt")) is not None:
        read.add(it.name)
    for plain, held in (("logs.csv", case.logs), ("traces.csv", case.traces), ("mpg.csv", case.topology)):
        if held is not None and (f := present(folder, plain)) is not None:
            read.add(f.name)
    return read


#: Largest file an import copies as it is (files it does not interpret).
MAX_EXTRA_BYTES = 256 * 1024 * 1024


def _copy_extra(src_file: Path, dst_file: Path, src_root: Path) -> str | None:
    """Copy one file the reader does not interpret; never follows a symlink out of ``src_root``,
    never reads a FIFO/device, never copies more than :data:`MAX_EXTRA_BYTES`.  Returns a note when skipped."""
    from llmrca.dataset.safe_io import DatasetInputError, check_regular, open_regular

    try:
        st = check_regular(src_file, src_file.name, root=src_root)
        if st.st_size > MAX_EXTRA_BYTES:
            return f"{src_file.name} not copied: {st.st_size} bytes is more than the {MAX_EXTRA_BYTES} an import copies"
        with open_regular(src_file, src_file.name, root=src_root) as fh, open(dst_file, "wb") as out:
            shutil.copyfileobj(fh, out)
    except DatasetInputError as e:
        return f"{src_file.name} not copied: {e.problems[0]}"
    return None


def archive_advice(root: Path, *, beside_cases: bool = False) -> str:
    """``"; x.tar.gz is a gzip-compressed tar archive: extract it (tar -xf ...) ..."`` for up to three archives
    under ``root`` (:func:`~llmrca.dataset.layouts.archives_in`), or ``""``.  ``beside_cases``: the root holds
    readable cases too (the archives' cases are then not among them)."""
    found = archives_in(Path(root))
    if not found:
        return ""
    said = "; ".join(f"{printable(str(p.relative_to(root)))} is {kind}: extract it ({extract_command(p, kind)})" for p, kind in found[:3])
    more = f" (and {len(found) - 3} more)" if len(found) > 3 else ""
    tail = ("; their cases are read only once extracted (then move the archive away to silence this)" if beside_cases else "; then run the command again")
    return f"; {said}{more}{tail}"


def archive_warning(root: Path) -> str | None:
    """The warning for archives lying under ``root`` beside readable cases (their cases are not read), or None."""
    adv = archive_advice(root, beside_cases=True)
    return f"archive(s) not read: {adv.removeprefix('; ')}" if adv else None


def nothing_readable(root: Path) -> str:
    """Why nothing under ``root`` can be read: the files expected and what was found."""
    files: list[str] = []
    dirs = 0
    for p in sorted(Path(root).rglob("*")):
        if p.is_dir():
            dirs += 1
        elif len(files) < 8:
            files.append(str(p.relative_to(root)))
    seen = f"found {dirs} folder(s) and files {files}" if files else f"found {dirs} folder(s) and no files"
    seen += archive_advice(root)
    return f"no case under {root}: expected <component>_<fault>/<rep>/ folders holding {EXPECTED}; {seen}"
