"""Checks of a metrics file where a repair would be a guess, so the case is rejected.

A metrics frame is ``time`` + ``<component>_<metric>`` columns (RCAEval's
layout, see ``docs/dataset.md``).  Some defects can be repaired safely and
are the reader's job (an all-NaN column dropped with a note, ``+Inf`` from a
histogram quantile treated as missing).  The ones here cannot: the value a
repair would need is not in the file.

* a ``time`` that is infinite (no position in time for that row);
* a truncated last row (the writer was cut off: the row's missing cells are
  not "no value", they are lost);
* duplicated column names (pandas renames the second to ``name.1``; which
  one is right is unknown);
* booleans, or numbers mixed with text, in a metric column; numbers written
  as text (``12,5``, ``1,234``, ``45ms``);
* names with invisible or control characters (zero-width space, a BOM inside a
  name, NUL) or a component part that is no valid component name;
* a root cause whose columns were all dropped by the reader.

Every function is pure, returns a list of sentences (empty when fine) that
name the file, the column or row, and the fix, and is linear in the number
of columns (a 100k-column frame checks in about a second).  Column numbers in
messages count from 1 as in a spreadsheet; row numbers are data rows counted
from 0 as in pandas, line numbers count the header as line 1.
"""

from __future__ import annotations

import csv
import re
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence

import numpy as np
import pandas as pd

from llmrca.model import split_column
from llmrca.names import component_name_problem, invisible_characters, shown

#: At most this many messages of one kind per file (then "... and N more").
MAX_MESSAGES_PER_KIND = 10

_NUMBER_AS_TEXT = re.compile(
    r"^\s*[+-]?(?:\d+,\d+|\d{1,3}(?:[,' ]\d{3})+(?:\.\d+)?|\d+(?:[.,]\d+)?\s*(?:%|[a-zA-Zµ]{1,5})|0[xX][0-9a-fA-F]+(?:\.[0-9a-fA-F]*)?(?:[pP][+-]?\d+)?)\s*$"
)
_PANDAS_DUP = re.compile(r"^(.*)\.(\d+)$")


def _capped(items: list[str], what: str) -> list[str]:
    if len(items) <= MAX_MESSAGES_PER_KIND:
        return items
    return [*items[:MAX_MESSAGES_PER_KIND], f"... and {len(items) - MAX_MESSAGES_PER_KIND} more {what}"]


def split_header(header_line: str, delimiter: str = ",") -> list[str]:
    """The column names of a CSV header line (quotes handled by :mod:`csv`); a leading BOM is removed."""
    return next(csv.reader([header_line.removeprefix("\ufeff")], delimiter=delimiter), [])


def header_problems(header_line: str, *, file: str, delimiter: str = ",") -> list[str]:
    """Problems of the raw header line of a CSV file: duplicated, empty or invisible-character names.

    ``header_line`` is the first line as read (e.g. by
    :func:`llmrca.dataset.safe_io.read_first_line`).  Duplicates must be
    detected here: pandas renames the second ``x`` to ``x.1``.  A UTF-8 BOM at
    the very start of the file is not a problem (it is removed); one inside a
    name is.
    """
    names = split_header(header_line, delimiter)
    out: list[str] = []
    counts = Counter(names)
    dups = [n for n, k in counts.items() if k > 1]
    if dups:
        pos: dict[str, list[int]] = {n: [] for n in dups}
        for i, n in enumerate(names, 1):
            if n in pos:
                pos[n].append(i)
        out += _capped(
            [
                f"{file}: column {shown(n)} appears {counts[n]} times in the header (columns {', '.join(map(str, pos[n][:5]))}); "
                "which one holds the right values is unknown: remove or rename the duplicates"
                for n in dups
            ],
            "duplicated names",
        )
    empty = [i for i, n in enumerate(names, 1) if not n.strip()]
    if empty:
        out.append(f"{file}: column {empty[0]} has an empty name ({len(empty)} such columns); name every column, e.g. 'ray-worker-1_cpu'")
    out += name_problems(names, file=file)
    return out


def name_problems(columns: Iterable[object], *, file: str) -> list[str]:
    """Column names with invisible/control characters, leading/trailing spaces, or a bad component part.

    ``columns`` are the names as read (header fields or ``df.columns``);
    ``time`` is skipped.  The component part (before the first ``_``) must pass
    :func:`llmrca.names.component_name_problem` (so ``../x_cpu`` is
    refused: ``../x`` would later become a folder name).
    """
    invisible: list[str] = []
    spaces: list[str] = []
    comps: dict[str, str] = {}
    for c in columns:
        name = str(c)
        if name == "time" or not name:
            continue
        bad = invisible_characters(name)
        if bad:
            invisible.append(f"{file}: column name {shown(name)} contains invisible or control characters ({', '.join(bad)}); retype the name")
            continue
        if name != name.strip():
            spaces.append(f"{file}: column name {shown(name)} has leading or trailing spaces; remove them (e.g. no space after the commas of the header)")
            continue
        comp, metric = split_column(name)
        if metric:
            comps.setdefault(comp, name)
    out = _capped(invisible, "names with invisible characters") + _capped(spaces, "names with spaces")
    bad_comps = []
    for comp, example in comps.items():
        p = component_name_problem(comp)
        if p is not None:
            bad_comps.append(f"{file}: column {shown(example)}: its component {p}")
    return out + _capped(bad_comps, "bad component names")


def pandas_duplicate_columns(columns: Sequence[object], *, file: str) -> list[str]:
    """Columns that look like pandas' renaming of a duplicate (``x.1`` next to ``x``).

    For frames whose raw header is not available; prefer
    :func:`header_problems` (exact).  A metric really named ``x.1`` beside ``x``
    is reported too, so the message says how it was detected.
    """
    names = {str(c) for c in columns}
    found = []
    for c in columns:
        m = _PANDAS_DUP.match(str(c))
        if m and m.group(1) in names:
            found.append(
                f"{file}: columns {shown(m.group(1))} and {shown(str(c))}: the header most likely repeats {shown(m.group(1))} "
                "(pandas renames a repeated name to '.1'); remove or rename the duplicate"
            )
    return _capped(found, "duplicated names")


def last_row_problem(header_line: str, last_line: str, *, file: str, delimiter: str = ",", ends_with_newline: bool = True) -> list[str]:
    """A last data line with fewer (or more) fields than the header: the file was cut off.

    ``last_line`` is the last non-empty line of the raw text (see
    :func:`llmrca.dataset.safe_io.read_last_lines`).  Detected from the raw
    text: pandas would fill the missing cells with NaN and the loss would
    look like missing values.
    """
    n_head = len(split_header(header_line, delimiter))
    fields = next(csv.reader([last_line], delimiter=delimiter), [])
    if not fields or last_line.removeprefix("\ufeff") == header_line.removeprefix("\ufeff"):
        return []
    cut = "" if ends_with_newline else " and the file does not end with a line end"
    if len(fields) < n_head:
        return [
            f"{file}: the last line has {len(fields)} of the header's {n_head} fields{cut} (detected from the raw last line): "
            "the file was cut off while being written; delete the last line or export the file again"
        ]
    if len(fields) > n_head:
        return [f"{file}: the last line has {len(fields)} fields but the header has {n_head}; check the delimiter and quoting, or export the file again"]
    return []


def trailing_nan_row(df: pd.DataFrame, *, file: str) -> list[str]:
    """The pandas pattern of a truncated last row: it has values up to some column and none after,
    while every earlier row has values in those columns.

    A heuristic for frames whose raw text is not available (prefer
    :func:`last_row_problem`); needs at least 3 rows.
    """
    if len(df) < 3 or df.shape[1] < 2:
        return []
    isna = df.isna().to_numpy()
    last = isna[-1]
    if not last[-1] or last.all():
        return []
    first_missing = int(len(last) - np.argmin(last[::-1]))  # start of the trailing NaN block
    if first_missing == 0 or last[:first_missing].any():
        return []
    if isna[:-1, first_missing:].any():
        return []
    k = df.shape[1] - first_missing
    return [
        f"{file}: the last row (row {len(df) - 1}) has no values in its last {k} columns (from {shown(str(df.columns[first_missing]))} on) "
        "while every earlier row has them (detected from pandas' NaN-filled trailing cells): the file looks cut off; "
        "delete the last row or export the file again"
    ]


def time_problems(df: pd.DataFrame, *, file: str) -> list[str]:
    """Infinite ``time`` values (``inf``, ``-inf``): a row without a position in time cannot be repaired.

    Missing and non-numeric times are reported by
    :func:`llmrca.model.frame_problems`; this adds the infinite ones.
    """
    if "time" not in df.columns:
        return []
    t = df["time"]
    if isinstance(t, pd.DataFrame) or not pd.api.types.is_numeric_dtype(t):
        return []
    v = t.to_numpy(dtype=float)
    inf = np.isinf(v)
    if not inf.any():
        return []
    i = int(np.argmax(inf))
    return [f"{file}: 'time' is {v[i]} in row {i} ({int(inf.sum())} such rows); a timestamp must be finite epoch seconds: fix or delete those rows"]


def _column_kinds(df: pd.DataFrame) -> np.ndarray:
    return np.array([t.kind for t in df.dtypes], dtype="<U1")


def _object_block(df: pd.DataFrame, idx: list[int]) -> np.ndarray:
    """``df.iloc[:, idx]`` as an object matrix; through the whole frame when most columns are selected
    (selecting 100k text columns one block at a time costs far more than one conversion)."""
    if len(idx) * 2 >= df.shape[1]:
        return df.to_numpy(dtype=object)[:, idx]
    return df.iloc[:, idx].to_numpy(dtype=object)


def metric_type_problems(df: pd.DataFrame, *, file: str) -> list[str]:
    """Metric columns that hold booleans, numbers mixed with text, or numbers written as text.

    Columns wholly of text that does not look like numbers (pod names, IP
    addresses) are not reported: they are identity columns, see
    :func:`text_columns`.  Vectorised over all non-numeric columns at once.
    """
    kinds = _column_kinds(df)
    cols = list(df.columns)
    out: list[str] = []
    for j in np.flatnonzero(kinds == "b"):
        if cols[j] != "time":
            out.append(f"{file}: column {shown(str(cols[j]))} holds booleans (True/False); metrics must be numbers: write 1/0 if that is what it means")
    obj = [j for j in np.flatnonzero(kinds == "O") if cols[j] != "time"]
    if not obj or len(df) == 0:
        return _capped(out, "columns of the wrong type")
    block = _object_block(df, obj)
    flat = block.ravel()
    present = pd.notna(flat)
    is_bool = np.fromiter((type(x) is bool or isinstance(x, np.bool_) for x in flat), dtype=bool, count=flat.size)
    num = pd.to_numeric(pd.Series(flat), errors="coerce").to_numpy(dtype=float)
    is_num = ~np.isnan(num) & ~is_bool
    shape = block.shape
    present, is_bool, is_num = present.reshape(shape), is_bool.reshape(shape), is_num.reshape(shape)
    n_present, n_bool, n_num = present.sum(0), is_bool.sum(0), is_num.sum(0)
    for k, j in enumerate(obj):
        name = shown(str(cols[j]))
        if n_bool[k]:
            i = int(np.argmax(is_bool[:, k]))
            out.append(f"{file}: column {name} holds booleans (row {i}: {block[i, k]!r}); metrics must be numbers: write 1/0 if that is what it means")
        elif 0 < n_num[k] < n_present[k]:
            bad = present[:, k] & ~is_num[:, k]
            i = int(np.argmax(bad))
            out.append(
                f"{file}: column {name} mixes numbers and text (row {i}: {shown(block[i, k])}, {int(bad.sum())} such cells); "
                "which number the text stands for is unknown: write a number or leave the cell empty"
            )
        elif n_present[k] and n_num[k] == 0:
            vals = block[present[:, k], k]
            sample = vals[: min(20, len(vals))]
            if sum(bool(_NUMBER_AS_TEXT.match(str(x))) for x in sample) * 2 > len(sample):
                out.append(
                    f"{file}: column {name} holds numbers written as text (e.g. {shown(sample[0])}); "
                    "write plain decimal numbers: '.' as decimal point, no thousands separators, no units, no hexadecimal"
                )
    return _capped(out, "columns of the wrong type")


def text_columns(df: pd.DataFrame) -> list[str]:
    """Columns wholly of non-numeric text (no number, no boolean): identity columns such as pod names.

    The reader may drop them with a note (the paper's artifact has
    ``<component>_pod_name`` columns among its metrics).  Columns that
    :func:`metric_type_problems` reports are not included.
    """
    kinds = _column_kinds(df)
    cols = list(df.columns)
    obj = [j for j in np.flatnonzero(kinds == "O") if cols[j] != "time"]
    if not obj or len(df) == 0:
        return []
    block = _object_block(df, obj)
    num = pd.to_numeric(pd.Series(block.ravel()), errors="coerce").to_numpy(dtype=float).reshape(block.shape)
    present = pd.notna(block)
    out = []
    for k, j in enumerate(obj):
        col = block[present[:, k], k]
        if len(col) and np.isnan(num[present[:, k], k]).all() and not any(isinstance(x, bool | np.bool_) for x in col[:20]):
            sample = col[: min(20, len(col))]
            if sum(bool(_NUMBER_AS_TEXT.match(str(x))) for x in sample) * 2 <= len(sample):
                out.append(str(cols[j]))
    return out


def dropped_root_cause_problems(
    root_causes: Iterable[str], columns: Iterable[object], dropped: Mapping[str, str] | Iterable[str], *, file: str
) -> list[str]:
    """Root causes left without any metric column after the reader dropped columns.

    ``columns`` are the columns kept; ``dropped`` the columns removed (a
    mapping column -> reason, or just the names).  A root cause that never
    had columns is :func:`llmrca.dataset.schema.check_against_data`'s
    business; this reports the ones whose every column was dropped, since
    the case can then not be scored fairly.
    """
    kept = {split_column(str(c))[0] for c in columns if str(c) != "time"}
    reasons = dict(dropped) if isinstance(dropped, Mapping) else dict.fromkeys(dropped, "")
    by_comp: dict[str, list[str]] = {}
    for c in reasons:
        by_comp.setdefault(split_column(str(c))[0], []).append(str(c))
    out = []
    for r in sorted(set(root_causes)):
        if r not in kept and r in by_comp:
            cols = by_comp[r]
            why = "; ".join(f"{shown(c)}: {reasons[c]}" if reasons[c] else shown(c) for c in cols[:5])
            out.append(
                f"{file}: root cause {shown(r)} has no metric column left: all {len(cols)} of its columns were dropped ({why}); "
                "the case cannot be scored: fix those columns in the data"
            )
    return out


def check_frame(
    df: pd.DataFrame,
    *,
    file: str,
    header_line: str | None = None,
    last_line: str | None = None,
    ends_with_newline: bool = True,
    delimiter: str = ",",
    root_causes: Iterable[str] = (),
    dropped: Mapping[str, str] | Iterable[str] = (),
) -> list[str]:
    """Every check of this module on one metrics frame as read; a list of sentences.

    ``header_line``/``last_line`` are the raw first and last lines when the
    caller has them (exact duplicate and truncation detection); without
    them the pandas patterns (``x.1`` columns, NaN-filled trailing cells)
    are used.  ``root_causes`` and ``dropped`` feed
    :func:`dropped_root_cause_problems`.
    """
    out: list[str] = []
    if header_line is not None:
        out += header_problems(header_line, file=file, delimiter=delimiter)
    else:
        out += pandas_duplicate_columns(list(df.columns), file=file)
        out += name_problems(df.columns, file=file)
    if header_line is not None and last_line is not None:
        out += last_row_problem(header_line, last_line, file=file, delimiter=delimiter, ends_with_newline=ends_with_newline)
    else:
        out += trailing_nan_row(df, file=file)
    out += time_problems(df, file=file)
    out += metric_type_problems(df, file=file)
    out += dropped_root_cause_problems(root_causes, df.columns, dropped, file=file)
    return out
