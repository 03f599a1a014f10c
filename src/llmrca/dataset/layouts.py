"""The on-disk layouts a case folder may come in, and which files each reads.

=================  ===========================================================
layout             files (besides ``inject_time.txt``, ``logs.csv``, ``traces.csv``)
=================  ===========================================================
``llmrca``         ``case.json`` + its ``metric_sets`` (``data.csv``, ``data_extended.csv``)
``rcaeval-re1``    ``data.csv`` (RCAEval RE1; also rca-llm prepared / raw export)
``rcaeval-re2``    ``simple_metrics.csv`` (basic) and/or ``metrics.csv`` (extended),
                   no ``data.csv`` (RCAEval RE2 / RE3)
``rcd``            ``normal.csv`` + ``anomalous.csv`` (RCD / CIRCA sock-shop data);
                   the injection time is the first anomalous row
=================  ===========================================================

``mpg.csv`` (rca-llm: ``,source,destination``) is read as the call graph in
any layout that has no topology in ``case.json``.  Sources: RCAEval
``main.py`` / ``RCAEval/io/time_series.py`` (file names, ``simple_metrics.csv``
fallback), exalsius/rca-llm ``prepare_llm_ref_stack_dataset`` (``mpg.csv``),
azamikram/rcd (``normal.csv`` / ``anomalous.csv``).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

#: Files whose presence makes a folder look like a case.
CASE_MARKERS: tuple[str, ...] = (
    "case.json",
    "data.csv",
    "simple_metrics.csv",
    "metrics.csv",
    "normal.csv",
    "anomalous.csv",
    "inject_time.txt",
)

#: Files the reader interprets (an import copies the others as they are).
CONSUMED: frozenset[str] = frozenset(
    {*CASE_MARKERS, "data_extended.csv", "logs.csv", "traces.csv", "mpg.csv"}
)

#: File-name endings of compressed copies of the files above (``simple_metrics.csv.gz``): reported, not read.
COMPRESSED_SUFFIXES: tuple[str, ...] = (".gz", ".zip", ".bz2", ".xz", ".zst")


def compressed_markers(names: set[str] | list[str]) -> list[str]:
    """Names among ``names`` that are a compressed case file (``data.csv.gz``, ``metrics.csv.zip``, ...)."""
    return sorted(n for n in names for suf in COMPRESSED_SUFFIXES if n.endswith(suf) and n[: -len(suf)] in CONSUMED)


EXPECTED = (
    "data.csv (RCAEval RE1, rca-llm), simple_metrics.csv and/or metrics.csv (RCAEval RE2/RE3), "
    "normal.csv + anomalous.csv (RCD), or case.json (llmrca), next to inject_time.txt"
)


@dataclass
class Layout:
    """Which files of a case folder hold what.

    ``metric_files`` maps a metric set (``basic``, ``extended``) to one file,
    or for the RCD layout ``basic`` to the two files to concatenate
    (``rcd_files``).
    """

    name: str
    metric_files: dict[str, str] = field(default_factory=dict)
    rcd_files: tuple[str, str] | None = None
    problems: list[str] = field(default_factory=list)
    unlistable: bool = False  # the folder cannot be listed (permissions): nothing else can be said


def detect_layout(folder: Path, spec: dict | None = None) -> Layout:
    """The layout of ``folder`` (``spec``: its ``case.json`` content, if any).

    ``problems`` is non-empty when the folder looks like a case but holds no
    readable metrics; each says which files were expected and what was found.
    """
    # every entry counts (a FIFO or a folder named data.csv too): the reader then says what is wrong with it
    try:
        has = {p.name for p in folder.iterdir()} if folder.is_dir() else set()
    except OSError as e:
        return Layout("unknown", problems=[f"cannot list the case folder {folder}: {e.strerror or e}; make it readable (chmod a+rx)"], unlistable=True)
    if spec and spec.get("metric_sets"):
        files = dict(spec["metric_sets"])
        lay = Layout("llmrca", files)
        from llmrca.dataset.schema import missing_metric_set_file

        name = "basic" if "basic" in files else next(iter(files))
        if files[name] not in has:  # in the reader's and check_against_data's words: the case lists it once
            lay.problems.append(missing_metric_set_file(name, files[name]))
        return lay
    name = "llmrca" if spec else None
    if "data.csv" in has:
        files = {"basic": "data.csv"}
        if "data_extended.csv" in has:
            files["extended"] = "data_extended.csv"
        elif "metrics.csv" in has:
            files["extended"] = "metrics.csv"
        return Layout(name or "rcaeval-re1", files)
    if "simple_metrics.csv" in has or "metrics.csv" in has:
        files = {"basic": "simple_metrics.csv" if "simple_metrics.csv" in has else "metrics.csv"}
        if "simple_metrics.csv" in has and "metrics.csv" in has:
            files["extended"] = "metrics.csv"
        return Layout(name or "rcaeval-re2", files)
    if "normal.csv" in has and "anomalous.csv" in has:
        return Layout(name or "rcd", {"basic": "normal.csv+anomalous.csv"}, rcd_files=("normal.csv", "anomalous.csv"))
    found = sorted(has)[:12]
    lay = Layout(name or "unknown")
    if "normal.csv" in has or "anomalous.csv" in has:
        one = "normal.csv" if "normal.csv" in has else "anomalous.csv"
        other = "anomalous.csv" if one == "normal.csv" else "normal.csv"
        lay.problems.append(f"{folder} has {one} but no {other}: the RCD layout needs both (the injection time is the first anomalous row)")
    elif packed := compressed_markers(has):
        lay.problems.append(
            f"no metrics in {folder}: {packed[0]} is compressed and is not read; decompress it so the folder holds "
            f"{packed[0].rsplit('.', 1)[0]} (e.g. gunzip {packed[0]}); expected {EXPECTED}"
        )
    else:
        lay.problems.append(f"no metrics in {folder}: expected {EXPECTED}; found {found or 'no files'}")
    return lay


def looks_like_case(folder: Path) -> bool:
    """True when ``folder`` holds any file of :data:`CASE_MARKERS`."""
    return any((folder / m).is_file() for m in CASE_MARKERS)
