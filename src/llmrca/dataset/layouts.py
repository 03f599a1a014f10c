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

import os
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

#: Files of a case that are no case by themselves (no metrics, no injection time) but make a folder look like
#: one, so that a partly copied case (an RE2 case whose metrics files are missing) is named, not skipped.
PARTIAL_MARKERS: tuple[str, ...] = ("logs.csv", "traces.csv")

#: Files the reader interprets (an import copies the others as they are).
CONSUMED: frozenset[str] = frozenset(
    {*CASE_MARKERS, "data_extended.csv", "logs.csv", "traces.csv", "mpg.csv"}
)

#: File-name endings of compressed copies of the files above (``simple_metrics.csv.gz``), matched without
#: regard to case (``data.csv.GZ``).  A compressed copy stands for the plain file when that is absent (gzip,
#: zip, bzip2, xz and LZMA-alone are read; zstd is named).
COMPRESSED_SUFFIXES: tuple[str, ...] = (".gz", ".gzip", ".zip", ".bz2", ".bzip2", ".xz", ".lzma", ".zst", ".zstd")


def compressed_suffix(name: str) -> str | None:
    """The ending of ``name`` that is one of :data:`COMPRESSED_SUFFIXES`, as ``name`` spells it (``.GZ`` for
    ``data.csv.GZ``), or None."""
    low = name.lower()
    return next((name[-len(s):] for s in COMPRESSED_SUFFIXES if low.endswith(s) and len(name) > len(s)), None)


def compressed_markers(names: set[str] | list[str]) -> list[str]:
    """Names among ``names`` that are a compressed case file (``data.csv.gz``, ``metrics.csv.zip``, ...)."""
    return sorted(n for n in names if (s := compressed_suffix(n)) and n[: -len(s)] in CONSUMED)


def plain_name(name: str) -> str:
    """``data.csv.gz`` -> ``data.csv``: ``name`` without one of :data:`COMPRESSED_SUFFIXES` (unchanged without one)."""
    s = compressed_suffix(name)
    return name[: -len(s)] if s else name


def _stand_ins(has: set[str]) -> dict[str, str]:
    """Plain case-file name -> the file that holds it: itself when present, else its first compressed copy
    (in the order of :data:`COMPRESSED_SUFFIXES`, then by name)."""
    out = {n: n for n in has}
    order = {s: i for i, s in enumerate(COMPRESSED_SUFFIXES)}
    for n in sorted(compressed_markers(has), key=lambda n: (order[str(compressed_suffix(n)).lower()], n)):
        out.setdefault(plain_name(n), n)
    return out


def present(folder: Path, name: str) -> Path | None:
    """``folder / name`` when it exists (any kind of entry: the reader says what is wrong with it), else the
    compressed copy :func:`_stand_ins` picks (``name`` + one of :data:`COMPRESSED_SUFFIXES`), else None."""
    if (folder / name).is_symlink() or (folder / name).exists():
        return folder / name
    try:
        names = {p.name for p in folder.iterdir()}
    except OSError:
        return None
    held = _stand_ins(names).get(name)
    return folder / held if held is not None else None


#: Bytes of a compressed file read to see whether it holds a tar archive (a bzip2 block needs its whole
#: compressed size, up to ~900 kB, before it gives any byte).
_ARCHIVE_PEEK_BYTES = 1 << 20


def archive_kind(path: Path) -> str | None:
    """What archive ``path`` is by its first bytes (``"a gzip-compressed tar archive"``, ``"a zip archive"``,
    ``"an xz-compressed file"``, ...), or None when it is no archive or compressed file (or cannot be read).
    A zstd file is taken for a tar archive when its name says so (``.tar.zst``: no reader here).  Formats:
    POSIX tar, gzip RFC 1952, zip APPNOTE, bzip2, xz, zstd RFC 8878."""
    from llmrca.dataset.io import compression_of, is_tar

    try:
        with open(path, "rb") as fh:
            head = fh.read(1024)
            if head.startswith(b"BZh"):
                head += fh.read(_ARCHIVE_PEEK_BYTES - len(head))
    except OSError:
        return None
    if is_tar(head):
        return "a tar archive"
    packed = compression_of(head)
    if packed is None:
        return None
    if packed == "zip":
        return "a zip archive"
    inner = b""
    try:
        if packed == "gzip":
            import zlib

            inner = zlib.decompressobj(wbits=31).decompress(head, 512)
        elif packed == "bzip2":
            import bz2

            inner = bz2.BZ2Decompressor().decompress(head, max_length=512)
        elif packed == "xz":
            import lzma

            inner = lzma.LZMADecompressor().decompress(head, max_length=512)
    except Exception:  # damaged: said as a compressed file; the reader says more if it is read
        inner = b""
    article = "an" if packed[0] in "aeiouxs" else "a"  # "an xz-", "an s..."; "a gzip-", "a bzip2-", "a zstd-"
    if is_tar(inner) or (packed == "zstd" and (".tar." in path.name.lower() or path.name.lower().endswith(".tzst"))):
        return f"{article} {packed}-compressed tar archive"
    return f"{article} {packed}-compressed file"


def extract_command(path: Path, kind: str) -> str | None:
    """The command that unpacks archive ``path`` of :func:`archive_kind` ``kind`` into the folder that holds it
    (``tar -xf /abs/x.tar.gz -C /abs``, ``unzip /abs/x.zip -d /abs``: run from anywhere, its cases land beside the
    archive, where the command that named it looks again), or None.  Paths are made absolute, not resolved."""
    import os
    from shlex import quote

    full = Path(os.path.abspath(path))
    where, folder = quote(str(full)), quote(str(full.parent))
    if kind == "a zip archive":
        return f"unzip {where} -d {folder}"
    if "tar archive" in kind:
        return f"tar -xf {where}" + (" --zstd" if "zstd" in kind else "") + f" -C {folder}"
    return None


def not_a_folder(path: Path) -> str:
    """The sentence for a path given where a case or dataset folder is expected but that is a file: what
    the file is and, for an archive, the command that extracts it."""
    kind = archive_kind(path)
    how = extract_command(path, kind) if kind is not None else None
    if kind is None or how is None:
        return f"{path} is {kind or 'a file'}, not a folder; pass the folder that holds the case(s)"
    return f"{path} is {kind}, not a folder; extract it ({how}) and pass the folder of cases it holds"


def file_in_the_way(path: Path) -> Path | None:
    """``path`` or the first of its parents that exists as something other than a folder (a file where a
    folder is to be written), or None."""
    for p in (Path(path), *Path(path).parents):
        if os.path.lexists(p):
            return None if p.is_dir() else p
    return None


def archives_in(root: Path, limit: int = 10000, *, recursive: bool = True) -> list[tuple[Path, str]]:
    """Archives (tar, zip; plain or compressed) among the first ``limit`` entries under ``root`` whose names
    end like one (:data:`ARCHIVE_SUFFIXES`), with their :func:`archive_kind`; compressed case files
    (``data.csv.gz``) are not counted."""
    out: list[tuple[Path, str]] = []
    for n, p in enumerate(sorted(Path(root).rglob("*") if recursive else Path(root).iterdir())):
        if n >= limit:
            break
        if (p.name.lower().endswith(ARCHIVE_SUFFIXES) and not compressed_markers([p.name]) and p.is_file()
                and (kind := archive_kind(p)) is not None and "archive" in kind):
            out.append((p, kind))
    return out


#: Name endings of files that may be an archive of cases (:func:`archives_in` looks only at these).
ARCHIVE_SUFFIXES: tuple[str, ...] = (".tar", ".tgz", ".tbz", ".tbz2", ".txz", ".tzst", *COMPRESSED_SUFFIXES)


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
            lay.problems.append(missing_metric_set_file(name, files[name], folder=folder))
        return lay
    name = "llmrca" if spec else None
    found = sorted(has)[:12]
    f = _stand_ins(has)  # data.csv.gz stands for data.csv when there is no data.csv
    has = set(f)
    if "data.csv" in has:
        files = {"basic": f["data.csv"]}
        if "data_extended.csv" in has:
            files["extended"] = f["data_extended.csv"]
        elif "metrics.csv" in has:
            files["extended"] = f["metrics.csv"]
        return Layout(name or "rcaeval-re1", files)
    if "simple_metrics.csv" in has or "metrics.csv" in has:
        files = {"basic": f["simple_metrics.csv"] if "simple_metrics.csv" in has else f["metrics.csv"]}
        if "simple_metrics.csv" in has and "metrics.csv" in has:
            files["extended"] = f["metrics.csv"]
        return Layout(name or "rcaeval-re2", files)
    if "normal.csv" in has and "anomalous.csv" in has:
        pair = (f["normal.csv"], f["anomalous.csv"])
        return Layout(name or "rcd", {"basic": "+".join(pair)}, rcd_files=pair)
    lay = Layout(name or "unknown")
    if "normal.csv" in has or "anomalous.csv" in has:
        one = "normal.csv" if "normal.csv" in has else "anomalous.csv"
        other = "anomalous.csv" if one == "normal.csv" else "normal.csv"
        lay.problems.append(f"{folder} has {f[one]} but no {other}: the RCD layout needs both (the injection time is the first anomalous row)")
    else:
        packed = archives_in(folder, 200, recursive=False)
        hint = "; ".join(f"{p.name} is {kind}: extract it ({extract_command(p, kind)})" for p, kind in packed[:3])
        lay.problems.append(f"no metrics in {folder}: expected {EXPECTED}; found {found or 'no files'}" + (f"; {hint}" if hint else ""))
    return lay


def looks_like_case(folder: Path) -> bool:
    """True when ``folder`` holds any file of :data:`CASE_MARKERS`, or a compressed copy of one."""
    if any((folder / m).is_file() for m in CASE_MARKERS):
        return True
    try:
        names = [p.name for p in folder.iterdir() if p.is_file()]
    except OSError:
        return False
    return any(plain_name(n) in CASE_MARKERS for n in compressed_markers(names))
