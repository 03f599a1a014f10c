"""A faster ``DataFrame.to_csv(path, index=False)`` that writes the same bytes.

pandas formats every cell through the ``csv`` module row by row; on the
simulator's wide metric frames and long log/trace tables that was most of
the time of writing a case.  Here each column is turned into strings at once
(float64 with the shortest round-trip ``repr``, the same text as numpy's
``astype(str)`` that pandas uses for ``float_format=None``; integers and booleans with ``str``; missing values
as the empty string) and the rows are joined in C.  String fields are quoted
as ``csv.QUOTE_MINIMAL`` does: only when they hold the delimiter, the quote
character or a line-terminator character (the set is probed from the
``csv`` module at import), with inner quotes doubled.

Columns of any other kind (datetimes, categoricals, mixed objects) and
single-column frames make the writer fall back to pandas, so the output is
always what ``to_csv`` would write.  Reference: pandas
``pandas.core.internals.blocks.get_values_for_csv`` (the float path) and
Python's ``csv`` module (RFC 4180 quoting).
"""

from __future__ import annotations

import csv
import io
import os
import re
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc


def _quote_chars() -> str:
    """The ASCII characters that make this Python's ``csv`` module quote a field (as pandas writes it).

    Probed rather than assumed: which line-break characters count has changed
    between Python versions.
    """
    found = []
    for code in range(1, 128):
        buf = io.StringIO()
        csv.writer(buf, lineterminator=os.linesep, quoting=csv.QUOTE_MINIMAL).writerow(["a" + chr(code) + "b", "c"])
        if buf.getvalue().startswith('"'):
            found.append(chr(code))
    return "".join(found)


_QUOTE_CHARS = _quote_chars()
_QUOTE_RE = "[" + re.escape(_QUOTE_CHARS) + "]"
_NEEDS_QUOTES = re.compile(_QUOTE_RE).search


def _quote(values: list[str]) -> list[str]:
    """Quote the fields that need it (column names)."""
    return ['"' + v.replace('"', '""') + '"' if _NEEDS_QUOTES(v) else v for v in values]


_L = pa.large_string()


def _s(x: str) -> pa.Scalar:
    return pa.scalar(x, _L)


def _column_strings(s: pd.Series) -> pa.Array | None:
    """The column's fields as pandas would write them (Arrow large strings), or None when this writer cannot say."""
    dt = s.dtype
    if isinstance(dt, np.dtype):
        v = s.to_numpy()
        if dt == np.float64:
            # Python's float repr is numpy's shortest round-trip str of a float64 (what pandas writes)
            out = list(map(repr, v.tolist()))
            for i in np.flatnonzero(np.isnan(v)).tolist():
                out[i] = ""
            return pa.array(out, _L)
        if dt.kind in "iu":
            return pc.cast(pa.array(v), _L)
        if dt.kind == "b":
            return pa.array(["True" if x else "False" for x in v.tolist()], _L)
        if dt.kind != "O" or pd.api.types.infer_dtype(v[~s.isna().to_numpy()], skipna=False) not in ("string", "empty"):
            return None  # datetimes, mixed objects: pandas formats them
    elif not isinstance(dt, pd.StringDtype):
        return None
    a = pa.array(s, from_pandas=True)
    a = (a.combine_chunks() if isinstance(a, pa.ChunkedArray) else a).cast(_L)
    need = pc.match_substring_regex(a, _QUOTE_RE)
    if pc.any(need).as_py():
        quoted = pc.binary_join_element_wise(_s('"'), pc.replace_substring(a, '"', '""'), _s('"'), _s(""))
        a = pc.if_else(need, quoted, a)
    return pc.fill_null(a, _s(""))


def _joined_rows(cols: list[pa.Array]) -> bytes:
    """Comma-joined fields of each row, each row ended by a newline: the CSV body."""
    body = pc.binary_join_element_wise(*cols, _s(","))
    body = pc.binary_join_element_wise(body, _s("\n"), _s(""))
    off = np.frombuffer(body.buffers()[1], dtype=np.int64)[body.offset : body.offset + len(body) + 1]
    return body.buffers()[2].to_pybytes()[int(off[0]) : int(off[-1])]


def _float_rows(v: np.ndarray) -> list[str]:
    """Rows of a float64 matrix (rows × columns) as comma-joined fields; NaN is the empty field."""
    n, m = v.shape
    flat = list(map(repr, v.ravel().tolist()))
    for i in np.flatnonzero(np.isnan(v.ravel())).tolist():
        flat[i] = ""
    return [",".join(flat[i * m : (i + 1) * m]) for i in range(n)]


def frame_to_csv_bytes(df: pd.DataFrame) -> bytes | None:
    """The UTF-8 bytes ``df.to_csv(index=False)`` writes, or None when pandas must write it.

    ``df``: any frame (rows × columns).  Returns None for frames with fewer
    than two columns, non-string column names, or columns of a kind this
    writer does not format (the caller then uses pandas).
    """
    if df.shape[1] < 2 or not all(isinstance(c, str) for c in df.columns):
        return None
    header = ",".join(_quote([str(c) for c in df.columns]))
    if df.shape[0] == 0:
        return (header + "\n").encode()
    if all(t == np.float64 for t in df.dtypes):  # the metric sets: one matrix
        return (header + "\n" + "\n".join(_float_rows(df.to_numpy())) + "\n").encode()
    cols = []
    for _, s in df.items():
        col = _column_strings(s)
        if col is None:
            return None
        cols.append(col)
    return (header + "\n").encode() + _joined_rows(cols)


def write_csv(df: pd.DataFrame, path: str | Path) -> None:
    """Write ``df`` to ``path`` byte for byte as ``df.to_csv(path, index=False)`` (UTF-8, ``\\n`` line ends)."""
    data = frame_to_csv_bytes(df)
    if data is None:
        df.to_csv(path, index=False)
        return
    Path(path).write_bytes(data)
