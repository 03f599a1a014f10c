"""Seeded malformed variants of a valid case folder, for the reliability suite.

``variants(valid_case_dir, rng)`` yields ``(name, mutate)`` pairs; ``mutate(folder)``
changes a *copy* of the valid case folder in place (it never touches
``valid_case_dir``).  Every random choice is drawn from ``rng`` while the
variants are generated, so the same seed gives the same names and the same
mutations.  ``name`` is ``"<kind>/<nnn>-<what>"``.

Each mutation kind in :data:`KINDS` says what a reader must do with it:

* ``repair`` - the case is read; the reader records a note saying what it
  changed (``note`` describes the expected repair);
* ``reject`` - the case is refused with a message naming the file, the field
  or column/row, and what to do (``note`` says what the message is about).

Never, for any kind: a Python traceback, a hang, memory exhaustion, or a
path written outside the output folder.

The valid case is one written by :func:`llmrca.dataset.io.write_case`
(``data.csv``, ``case.json``, ``inject_time.txt``, optionally ``logs.csv`` /
``traces.csv``) with plain comma-separated numbers.
"""

from __future__ import annotations

import copy
import json
import os
import stat
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import numpy as np

Mutate = Callable[[Path], None]
Gen = Callable[["_Ctx", np.random.Generator, int], tuple[str, Mutate]]


@dataclass(frozen=True)
class Kind:
    """A mutation kind: what it does, what a reader must do (``repair``/``reject``) and why."""

    name: str
    expect: Literal["repair", "reject"]
    note: str
    gen: Gen
    n_max: int = 40  # how many distinct variants the kind can make


KINDS: dict[str, Kind] = {}


def _kind(name: str, expect: Literal["repair", "reject"], note: str, n_max: int = 40) -> Callable[[Gen], Gen]:
    def deco(fn: Gen) -> Gen:
        KINDS[name] = Kind(name, expect, note, fn, n_max)
        return fn

    return deco


@dataclass
class _Ctx:
    """What the generators need to know about the valid case (read once)."""

    header: list[str]
    rows: list[list[str]]
    case: dict[str, Any]
    root: str
    comps: list[str]
    files: set[str]

    def table(self) -> tuple[list[str], list[list[str]]]:
        return list(self.header), [list(r) for r in self.rows]

    def metric_cols(self) -> list[int]:
        return [j for j, c in enumerate(self.header) if c != "time"]

    def root_cols(self) -> list[int]:
        return [j for j, c in enumerate(self.header) if c.split("_", 1)[0] == self.root]


def _load(folder: Path) -> _Ctx:
    lines = (folder / "data.csv").read_text().splitlines()
    header = lines[0].split(",")
    rows = [ln.split(",") for ln in lines[1:] if ln]
    case = json.loads((folder / "case.json").read_text()) if (folder / "case.json").exists() else {}
    comps = list(dict.fromkeys(c.split("_", 1)[0] for c in header if c != "time"))
    roots = case.get("root_causes") or [comps[0]]
    return _Ctx(header, rows, case, roots[0], comps, {p.name for p in folder.iterdir()})


def _write_table(folder: Path, header: list[str], rows: list[list[str]], *, file: str = "data.csv", sep: str = ",", newline: str = "\n", prefix: bytes = b"", encoding: str = "utf-8") -> None:
    text = newline.join(sep.join(r) for r in [header, *rows]) + newline
    (folder / file).write_bytes(prefix + text.encode(encoding, "surrogatepass"))


def _edit_json(folder: Path, fn: Callable[[dict[str, Any]], None]) -> None:
    d = json.loads((folder / "case.json").read_text())
    fn(d)
    (folder / "case.json").write_text(json.dumps(d, indent=2))


def _drop_inject_from_json(folder: Path) -> None:
    """So that inject_time.txt is what the reader uses."""
    _edit_json(folder, lambda d: d.pop("inject_time", None))


def _row(ctx: _Ctx, rng: np.random.Generator, lo: int = 1) -> int:
    return int(rng.integers(lo, len(ctx.rows) - 1))


def _col(ctx: _Ctx, rng: np.random.Generator) -> int:
    return int(rng.choice(ctx.metric_cols()))


# -- data.csv: garbled, truncated, wrong types ---------------------------------------------------------------


@_kind("csv-truncate", "reject", "the last row has fewer fields than the header: the file was cut off (say so; do not read it as missing values)")
def _csv_truncate(ctx: _Ctx, rng: np.random.Generator, i: int) -> tuple[str, Mutate]:
    keep = int(rng.integers(1, len(ctx.header) - 1))  # fields kept in the last row, the last one cut in the middle
    def m(f: Path) -> None:
        h, rows = ctx.table()
        last = rows[-1][:keep]
        last[-1] = last[-1][: max(1, len(last[-1]) // 2)]
        text = "\n".join(",".join(r) for r in [h, *rows[:-1], last])  # no final newline
        (f / "data.csv").write_text(text)
    return f"keep{keep}", m


@_kind("csv-garble-cell", "reject", "a metric cell holds text: the column mixes numbers and text (name column and row)")
def _csv_garble(ctx: _Ctx, rng: np.random.Generator, i: int) -> tuple[str, Mutate]:
    r, c = _row(ctx, rng), _col(ctx, rng)
    junk = str(rng.choice(["x#?", "0.5.5", "1e", "--", "error", "12abc", "?", "timeout", "0x"]))
    def m(f: Path) -> None:
        h, rows = ctx.table()
        rows[r][c] = junk
        _write_table(f, h, rows)
    return f"r{r}c{c}{junk}", m


@_kind("csv-ragged-row", "reject", "a middle row has fewer fields than the header (pandas would fill NaN silently): name the line")
def _csv_ragged(ctx: _Ctx, rng: np.random.Generator, i: int) -> tuple[str, Mutate]:
    r, k = _row(ctx, rng), int(rng.integers(1, 6))
    def m(f: Path) -> None:
        h, rows = ctx.table()
        rows[r] = rows[r][:-k]
        _write_table(f, h, rows)
    return f"r{r}minus{k}", m


@_kind("csv-extra-field", "reject", "a row has more fields than the header: name the line, suggest checking delimiter/quoting")
def _csv_extra(ctx: _Ctx, rng: np.random.Generator, i: int) -> tuple[str, Mutate]:
    r, k = _row(ctx, rng), int(rng.integers(1, 4))
    def m(f: Path) -> None:
        h, rows = ctx.table()
        rows[r] = rows[r] + ["1"] * k
        _write_table(f, h, rows)
    return f"r{r}plus{k}", m


@_kind("csv-unbalanced-quote", "reject", "an opening quote without its closing quote swallows the rest of the file: name the line")
def _csv_quote(ctx: _Ctx, rng: np.random.Generator, i: int) -> tuple[str, Mutate]:
    r, c = _row(ctx, rng, 0), int(rng.integers(0, len(ctx.header)))
    def m(f: Path) -> None:
        h, rows = ctx.table()
        rows[r][c] = '"' + rows[r][c]
        _write_table(f, h, rows)
    return f"r{r}c{c}", m


@_kind("csv-bool-metric", "reject", "a metric column holds True/False: metrics must be numbers")
def _csv_bool(ctx: _Ctx, rng: np.random.Generator, i: int) -> tuple[str, Mutate]:
    c = _col(ctx, rng)
    words = [("True", "False"), ("true", "false"), ("TRUE", "FALSE")][int(rng.integers(0, 3))]
    def m(f: Path) -> None:
        h, rows = ctx.table()
        for k, row in enumerate(rows):
            row[c] = words[k % 2]
        _write_table(f, h, rows)
    return f"c{c}{words[0]}", m


@_kind("csv-decimal-comma", "reject", "numbers written with a decimal comma in a comma-separated file: say so, do not guess")
def _csv_decimal_comma(ctx: _Ctx, rng: np.random.Generator, i: int) -> tuple[str, Mutate]:
    c = _col(ctx, rng)
    def m(f: Path) -> None:
        h, rows = ctx.table()
        for row in rows:
            row[c] = '"' + row[c].replace(".", ",") + '"'
        _write_table(f, h, rows)
    return f"c{c}", m


@_kind("csv-nan-cells", "repair", "a few empty cells: kept as missing values (NaN); the case is read")
def _csv_nan(ctx: _Ctx, rng: np.random.Generator, i: int) -> tuple[str, Mutate]:
    c, rr = _col(ctx, rng), sorted({_row(ctx, rng) for _ in range(3)})
    token = str(rng.choice(["", "NaN", "nan", "NA", "null"]))
    def m(f: Path) -> None:
        h, rows = ctx.table()
        for r in rr:
            rows[r][c] = token
        _write_table(f, h, rows)
    return f"c{c}r{'-'.join(map(str, rr))}{token or 'empty'}", m


@_kind("csv-allnan-column", "repair", "a column without any value is dropped, with a note naming it")
def _csv_allnan(ctx: _Ctx, rng: np.random.Generator, i: int) -> tuple[str, Mutate]:
    c = _col(ctx, rng)
    if ctx.header[c].split("_", 1)[0] == ctx.root and len(ctx.root_cols()) == 1:
        c = next(j for j in ctx.metric_cols() if j not in ctx.root_cols())
    def m(f: Path) -> None:
        h, rows = ctx.table()
        for row in rows:
            row[c] = ""
        _write_table(f, h, rows)
    return f"c{c}", m


@_kind("csv-inf-metric", "repair", "+Inf/-Inf in a metric (a histogram quantile): treated as missing, with a note")
def _csv_inf(ctx: _Ctx, rng: np.random.Generator, i: int) -> tuple[str, Mutate]:
    c, r = _col(ctx, rng), _row(ctx, rng)
    token = str(rng.choice(["inf", "-inf", "Infinity", "+Inf", "1e999"]))
    def m(f: Path) -> None:
        h, rows = ctx.table()
        rows[r][c] = token
        _write_table(f, h, rows)
    return f"c{c}r{r}{token}", m


@_kind("csv-root-columns-gone", "reject", "every column of the root cause is empty or text: after dropping them the root cause has no data; the case cannot be scored")
def _csv_root_gone(ctx: _Ctx, rng: np.random.Generator, i: int) -> tuple[str, Mutate]:
    fill = ["", "n/a", "pod-x", "NaN"][i % 4]
    rows_kept = len(ctx.rows) - (i // 4)  # also vary the length so every variant differs
    def m(f: Path) -> None:
        h, rows = ctx.table()
        for row in rows:
            for j in ctx.root_cols():
                row[j] = fill
        _write_table(f, h, rows[:rows_kept])
    return f"{fill or 'empty'}{rows_kept}", m


@_kind("csv-empty", "reject", "data.csv is empty or has only a header: the case has no data")
def _csv_empty(ctx: _Ctx, rng: np.random.Generator, i: int) -> tuple[str, Mutate]:
    variants = ["", "\n", ",".join(ctx.header) + "\n", ",".join(ctx.header), "time\n", "\n\n\n"]
    text = variants[i % len(variants)]
    def m(f: Path) -> None:
        (f / "data.csv").write_text(text)
    return f"v{i % len(variants)}", m


# -- time ---------------------------------------------------------------------------------------------------


def _time_kind(name: str, expect: Literal["repair", "reject"], note: str, token: Callable[[str, np.random.Generator], str]) -> None:
    def gen(ctx: _Ctx, rng: np.random.Generator, i: int) -> tuple[str, Mutate]:
        r = _row(ctx, rng, 0)
        def m(f: Path) -> None:
            h, rows = ctx.table()
            rows[r][0] = token(rows[r][0], np.random.default_rng(r))
            _write_table(f, h, rows)
        return f"r{r}", m

    KINDS[name] = Kind(name, expect, note, gen)


_time_kind("time-inf", "reject", "'time' is infinite in a row: that row has no position in time", lambda t, g: str(g.choice(["inf", "-inf", "Infinity"])))
_time_kind("time-string", "reject", "'time' holds a word in a row: name the row, ask for epoch seconds", lambda t, g: str(g.choice(["yesterday", "t0", "now", "12:00"])))
_time_kind("time-empty", "reject", "'time' is missing in a row: name the row", lambda t, g: "")


@_kind("time-duplicate", "reject", "two rows share a timestamp: name the row; aggregate or drop duplicates")
def _time_dup(ctx: _Ctx, rng: np.random.Generator, i: int) -> tuple[str, Mutate]:
    r = _row(ctx, rng)
    def m(f: Path) -> None:
        h, rows = ctx.table()
        rows[r][0] = rows[r - 1][0]
        _write_table(f, h, rows)
    return f"r{r}", m


@_kind("time-decreasing", "reject", "rows out of time order: name the row; sort by time (as docs/dataset.md says today)")
def _time_swap(ctx: _Ctx, rng: np.random.Generator, i: int) -> tuple[str, Mutate]:
    r = _row(ctx, rng)
    def m(f: Path) -> None:
        h, rows = ctx.table()
        rows[r], rows[r + 1] = rows[r + 1], rows[r]
        _write_table(f, h, rows)
    return f"r{r}", m


@_kind("time-ms", "repair", "time and injection time in epoch milliseconds/microseconds: detected by magnitude and converted, with a note", n_max=6)
def _time_ms(ctx: _Ctx, rng: np.random.Generator, i: int) -> tuple[str, Mutate]:
    factor = [1000, 1_000_000, 1_000_000_000][i % 3]
    also_inject = (i // 3) % 2 == 0  # inject_time in the same unit, or still in seconds
    def m(f: Path) -> None:
        h, rows = ctx.table()
        for row in rows:
            row[0] = str(round(float(row[0]) * factor))
        _write_table(f, h, rows)
        if also_inject:
            it = float(ctx.case.get("inject_time") or (f / "inject_time.txt").read_text())
            _edit_json(f, lambda d: d.update(inject_time=it * factor))
    return f"x{factor}{'both' if also_inject else 'dataonly'}", m


# -- names --------------------------------------------------------------------------------------------------

_INVISIBLE = ["\u200b", "\ufeff", "\x00", "\u202e", "\u2060", "\x1b", "\u00a0", "\t"]


@_kind("name-invisible", "reject", "a column name holds an invisible or control character: name it with its U+ code")
def _name_invisible(ctx: _Ctx, rng: np.random.Generator, i: int) -> tuple[str, Mutate]:
    c = _col(ctx, rng)
    ch = _INVISIBLE[i % len(_INVISIBLE)]
    name = ctx.header[c]
    pos = int(rng.integers(0, len(name) + 1))
    def m(f: Path) -> None:
        h, rows = ctx.table()
        h[c] = name[:pos] + ch + name[pos:]
        _write_table(f, h, rows)
    return f"c{c}U{ord(ch):04X}p{pos}", m


@_kind("name-invisible-root", "reject", "root causes / fault target in case.json hold an invisible character: field path and U+ code")
def _name_invisible_root(ctx: _Ctx, rng: np.random.Generator, i: int) -> tuple[str, Mutate]:
    ch = _INVISIBLE[i % len(_INVISIBLE)]
    pos = int(rng.integers(0, len(ctx.root) + 1))
    where = ["root_causes", "target"][(i // len(_INVISIBLE)) % 2]
    bad = ctx.root[:pos] + ch + ctx.root[pos:]
    def m(f: Path) -> None:
        def e(d: dict[str, Any]) -> None:
            if where == "root_causes":
                d["root_causes"] = [bad]
            elif d.get("fault"):
                d["fault"]["target"] = bad
        _edit_json(f, e)
    return f"{where}U{ord(ch):04X}p{pos}", m


@_kind("name-underscore-component", "reject", "a component name with '_' (in data and case.json): '_' separates component from metric")
def _name_underscore(ctx: _Ctx, rng: np.random.Generator, i: int) -> tuple[str, Mutate]:
    pos = int(rng.integers(1, len(ctx.root)))
    new = ctx.root[:pos] + "_" + ctx.root[pos:]
    in_data = bool(i % 2)
    def m(f: Path) -> None:
        if in_data:
            h, rows = ctx.table()
            h = [new + c[len(ctx.root):] if c.split("_", 1)[0] == ctx.root else c for c in h]
            _write_table(f, h, rows)
        _edit_json(f, lambda d: (d.update(root_causes=[new]), d["fault"].update(target=new) if d.get("fault") else None))
    return f"p{pos}{'data' if in_data else 'json'}", m


@_kind("name-path-traversal", "reject", "a component named like a path ('../x', '/etc', 'a/b'): refused before it becomes a folder name")
def _name_path(ctx: _Ctx, rng: np.random.Generator, i: int) -> tuple[str, Mutate]:
    bad = ["../../x", "..", "/etc", "a/b", "..\\x", "./ray", "../" * (1 + i % 5) + "tmp"][i % 7] + ("" if i < 7 else f"{i}")
    in_data = i % 2 == 0
    def m(f: Path) -> None:
        if in_data:
            h, rows = ctx.table()
            h = [bad + c[len(ctx.root):] if c.split("_", 1)[0] == ctx.root else c for c in h]
            _write_table(f, h, rows)
        _edit_json(f, lambda d: (d.update(root_causes=[bad]), d["fault"].update(target=bad) if d.get("fault") else None))
    return f"{i}{'data' if in_data else 'json'}", m


@_kind("name-dup-column", "reject", "a metric column name repeated with other values: which one is right is unknown; name both columns")
def _name_dup(ctx: _Ctx, rng: np.random.Generator, i: int) -> tuple[str, Mutate]:
    c, d = _col(ctx, rng), _col(ctx, rng)
    if c == d:
        d = ctx.metric_cols()[(ctx.metric_cols().index(c) + 1) % len(ctx.metric_cols())]
    def m(f: Path) -> None:
        h, rows = ctx.table()
        h[d] = h[c]
        _write_table(f, h, rows)
    return f"c{c}at{d}", m


@_kind("name-dup-time-identical", "repair", "the 'time' column repeated with identical values (pandas reads 'time.1'): dropped, with a note", n_max=20)
def _name_dup_time(ctx: _Ctx, rng: np.random.Generator, i: int) -> tuple[str, Mutate]:
    at = 1 + i % (len(ctx.header) - 1)
    def m(f: Path) -> None:
        h, rows = ctx.table()
        h.insert(at, "time")
        for row in rows:
            row.insert(at, row[0])
        _write_table(f, h, rows)
    return f"at{at}", m


# -- encoding and layout ------------------------------------------------------------------------------------


@_kind("encoding-bom", "repair", "a UTF-8 byte-order mark at the start of a CSV: removed (the first column is 'time', not '\\ufefftime')", n_max=4)
def _bom(ctx: _Ctx, rng: np.random.Generator, i: int) -> tuple[str, Mutate]:
    file = ["data.csv", "logs.csv", "traces.csv", "case.json"][i % 4]
    def m(f: Path) -> None:
        if (f / file).exists():
            (f / file).write_bytes(b"\xef\xbb\xbf" + (f / file).read_bytes())
    return file, m


@_kind("encoding-crlf", "repair", "Windows line ends (CRLF): read like LF", n_max=8)
def _crlf(ctx: _Ctx, rng: np.random.Generator, i: int) -> tuple[str, Mutate]:
    file = ["data.csv", "logs.csv", "traces.csv", "inject_time.txt"][i % 4]
    trailing = i < 4
    def m(f: Path) -> None:
        if (f / file).exists():
            b = (f / file).read_bytes().replace(b"\n", b"\r\n")
            (f / file).write_bytes(b if trailing else b.rstrip(b"\r\n"))
    return f"{file}{'' if trailing else '-nofinal'}", m


@_kind("encoding-semicolon", "repair", "';' as the delimiter with '.' decimals: detected (sniffed) and read, with a note", n_max=4)
def _semicolon(ctx: _Ctx, rng: np.random.Generator, i: int) -> tuple[str, Mutate]:
    sep = [";", "\t", ";", "|"][i % 4]
    crlf = i == 2
    def m(f: Path) -> None:
        h, rows = ctx.table()
        _write_table(f, h, rows, sep=sep, newline="\r\n" if crlf else "\n")
    return f"{ord(sep)}{'crlf' if crlf else ''}", m


@_kind("encoding-not-utf8-data", "reject", "data.csv is not UTF-8 (UTF-16, or Latin-1 bytes in a name): say which encoding is expected", n_max=10)
def _not_utf8(ctx: _Ctx, rng: np.random.Generator, i: int) -> tuple[str, Mutate]:
    c = ctx.metric_cols()[i % len(ctx.metric_cols())]
    utf16 = i % 2 == 0
    enc = ["utf-16", "utf-16-le", "utf-16-be", "utf-32", "cp500"][(i // 2) % 5]
    def m(f: Path) -> None:
        h, rows = ctx.table()
        if utf16:
            _write_table(f, h, rows, encoding=enc)
        else:
            text = "\n".join(",".join(r) for r in [h, *rows]) + "\n"
            (f / "data.csv").write_bytes(text.replace(h[c], h[c] + "\udce9", 1).encode("utf-8", "surrogateescape"))
    return (enc if utf16 else f"latin1c{c}"), m


# -- case.json ----------------------------------------------------------------------------------------------

_FIELDS = [
    "schema", "name", "inject_time", "fault", "fault.type", "fault.target", "fault.requested", "fault.achieved", "fault.start",
    "fault.end", "root_causes", "root_causes.0", "topology", "topology.nodes", "topology.nodes.0", "topology.edges",
    "topology.edges.0", "topology.entry", "metric_sets", "metric_sets.basic", "meta",
]
#: Values of the wrong type for each field (a value that happens to be valid for a field is skipped).
_WRONG = [7, -1.5, "x", True, [], [1, 2], {"a": 1}, [[["deep"]]], "1700000000", {"nodes": []}]
def _set_path(d: Any, path: str, value: Any) -> None:
    *head, last = path.split(".")
    for k in head:
        d = d[int(k)] if isinstance(d, list) else d[k]
    if isinstance(d, list):
        d[int(last)] = value
    else:
        d[last] = value


def _ok_type(field: str, value: Any) -> bool:
    """True when ``value`` would be valid for ``field`` (so it is no wrong-type variant)."""
    if field in {"fault.requested", "fault.achieved", "meta"}:
        return isinstance(value, dict)
    if field in {"inject_time", "fault.start", "fault.end"}:
        return isinstance(value, int | float) and not isinstance(value, bool)
    if field == "name":
        return isinstance(value, str)
    if field == "fault.type":
        return value == "x"  # a sane identifier: an unknown but acceptable fault type
    return field == "topology" and value == {"nodes": []}  # a topology without nodes is allowed (components come from the data)


@_kind("case-json-wrong-type", "reject", "a case.json field of the wrong type: file, field path (fault.end), what was found, what is expected", n_max=200)
def _json_wrong(ctx: _Ctx, rng: np.random.Generator, i: int) -> tuple[str, Mutate]:
    pairs = [(f, k) for f in _FIELDS for k, v in enumerate(_WRONG) if not _ok_type(f, v)]
    field, k = pairs[(i * 7919) % len(pairs)]  # a fixed stride walks every pair
    value = _WRONG[k]
    def m(f: Path) -> None:
        _edit_json(f, lambda d: _set_path(d, field, copy.deepcopy(value)))
    return f"{field}={k}", m


_REQUIRED = ["fault.type", "fault.target", "topology.nodes"]
_OPTIONAL = ["schema", "name", "inject_time", "fault", "fault.requested", "fault.achieved", "fault.start", "fault.end", "root_causes", "topology", "topology.edges", "topology.entry", "metric_sets", "meta"]


def _del_path(d: Any, path: str) -> None:
    *head, last = path.split(".")
    for k in head:
        d = d[k]
    d.pop(last, None)


@_kind("case-json-missing-required", "reject", "fault without type/target, topology without nodes: field path and what is expected", n_max=3)
def _json_missing_req(ctx: _Ctx, rng: np.random.Generator, i: int) -> tuple[str, Mutate]:
    field = _REQUIRED[i % len(_REQUIRED)]
    def m(f: Path) -> None:
        _edit_json(f, lambda d: _del_path(d, field))
    return field, m


@_kind("case-json-missing-optional", "repair", "an optional case.json field absent: the reader falls back (inject_time.txt, folder name, defaults); a note when it derives ground truth", n_max=14)
def _json_missing_opt(ctx: _Ctx, rng: np.random.Generator, i: int) -> tuple[str, Mutate]:
    field = _OPTIONAL[i % len(_OPTIONAL)]
    def m(f: Path) -> None:
        _edit_json(f, lambda d: _del_path(d, field))
    return field, m


@_kind("case-json-nested", "reject", "deeply nested JSON in case.json: a message about the nesting depth, no RecursionError", n_max=30)
def _json_nested(ctx: _Ctx, rng: np.random.Generator, i: int) -> tuple[str, Mutate]:
    depth = int([65, 100, 1000, 10_000, 100_000][i % 5] + i)
    field = ["meta", "fault.requested", "topology", "root_causes", "name", "whole"][i % 6]
    def m(f: Path) -> None:
        nest = "[" * depth + "]" * depth if i % 2 else '{"a":' * depth + "1" + "}" * depth
        if field == "whole":
            (f / "case.json").write_text(nest)
            return
        marker = "__NEST__"
        d = json.loads((f / "case.json").read_text())
        _set_path(d, field, marker)
        (f / "case.json").write_text(json.dumps(d).replace(f'"{marker}"', nest))
    return f"{field}{depth}", m


@_kind("case-json-syntax", "reject", "case.json is not valid JSON (truncated, trailing comma, quotes, NaN, duplicate key, not UTF-8): line and column", n_max=40)
def _json_syntax(ctx: _Ctx, rng: np.random.Generator, i: int) -> tuple[str, Mutate]:
    how = ["truncate", "trailing-comma", "single-quotes", "nan", "dup-key", "latin1", "empty", "comment"][i % 8]
    cut = int(rng.integers(1, 800))
    def m(f: Path) -> None:
        text = (f / "case.json").read_text()
        if how == "truncate":
            text = text[: min(cut, len(text) - 2)]
        elif how == "trailing-comma":
            text = text.rstrip().rstrip("}") + f',{" " * cut}}}'
        elif how == "single-quotes":
            text = text.replace('"', "'", 2 + cut % 60)
        elif how == "nan":
            text = text.replace('"inject_time": ', f'"inject_time": NaN, "x{cut}": ', 1) if cut % 2 else text.replace('"schema": 1', f'"schema": Infinity, "y{cut}": 1')
        elif how == "dup-key":
            text = text.replace('"root_causes": ', f'"root_causes": ["ray-worker-{cut}"], "root_causes": ', 1)
        elif how == "latin1":
            (f / "case.json").write_bytes(text.replace('"name": "', '"name": "\xe9' + "x" * cut).encode("latin-1", "replace"))
            return
        elif how == "empty":
            text = " " * cut
        else:
            text = f"// written by hand {cut}\n" + text
        (f / "case.json").write_text(text)
    return f"{how}{cut}", m


@_kind("case-json-bad-fault-type", "reject", "fault.type empty, a placeholder ('str', 'None'), a component name, or not an identifier", n_max=12)
def _json_ftype(ctx: _Ctx, rng: np.random.Generator, i: int) -> tuple[str, Mutate]:
    value = ["", " ", "str", "None", "null", "unknown", ctx.root, ctx.comps[1 % len(ctx.comps)], "CPU LOAD!", "x" * 80, "cpu\u200b", "ray_worker"][i % 12]
    def m(f: Path) -> None:
        _edit_json(f, lambda d: d["fault"].update(type=value))
    return f"{i}", m


@_kind("case-json-bad-values", "reject", "values that contradict each other: start >= end, target not a root cause, unknown schema, edges/entry to unknown nodes, duplicated nodes", n_max=12)
def _json_values(ctx: _Ctx, rng: np.random.Generator, i: int) -> tuple[str, Mutate]:
    how = ["start-after-end", "start-equals-end", "target-not-root", "schema-2", "schema-0", "edge-unknown", "entry-unknown", "dup-node",
           "topology-a1", "metric-set-name", "root-unknown", "fault-null-type"][i % 12]
    def m(f: Path) -> None:
        def e(d: dict[str, Any]) -> None:
            fault, topo = d.get("fault") or {}, d.get("topology") or {"nodes": list(ctx.comps)}
            if how == "start-after-end":
                fault["end"] = (fault.get("start") or 1.0) - 10
            elif how == "start-equals-end":
                fault["end"] = fault.get("start") or 1.0
            elif how == "target-not-root":
                d["root_causes"] = [c for c in ctx.comps if c != ctx.root][:1]
            elif how == "schema-2":
                d["schema"] = 2
            elif how == "schema-0":
                d["schema"] = 0
            elif how == "edge-unknown":
                topo.setdefault("edges", []).append([ctx.root, "ghost"])
            elif how == "entry-unknown":
                topo["entry"] = "nowhere"
            elif how == "dup-node":
                topo["nodes"] = [*topo["nodes"], topo["nodes"][0]]
            elif how == "topology-a1":
                d["topology"] = {"a": 1}
                return
            elif how == "metric-set-name":
                d["metric_sets"] = {"Basic Set": "data.csv"}
            elif how == "root-unknown":
                d["root_causes"] = ["ghost"]
                fault["target"] = "ghost"
            else:
                fault["type"] = None
            d["fault"], d["topology"] = fault or None, topo
        _edit_json(f, e)
    return how, m


@_kind("case-json-metric-sets-escape", "reject", "metric_sets pointing outside the case folder (absolute path, '..', a separator): refused before any file is opened", n_max=12)
def _json_msets(ctx: _Ctx, rng: np.random.Generator, i: int) -> tuple[str, Mutate]:
    target = ["/etc/passwd", "../data.csv", "../../../../etc/hostname", "sub/data.csv", "..", ".", "/dev/zero", "C:\\data.csv", "data\x00.csv", "", "..\\data.csv", "/proc/self/environ"][i % 12]
    def m(f: Path) -> None:
        _edit_json(f, lambda d: d.update(metric_sets={"basic": "data.csv", "extended": target} if i % 2 else {"basic": target}))
    return f"{i}", m


# -- inject_time.txt ------------------------------------------------------------------------------------------


@_kind("inject-time-bad", "reject", "inject_time.txt (used when case.json has no inject_time) is not a number of epoch seconds; a long content is cut in the message", n_max=12)
def _inject_bad(ctx: _Ctx, rng: np.random.Generator, i: int) -> tuple[str, Mutate]:
    content = ["", "yesterday", "nan", "inf", "1e999", "2026-01-01T00:00:00+02:00 garbage", "1700000000 1700000001", "\x00\x00", "1" * 1_000_000, "0x1F", "[1700000000]", "-"][i % 12]
    def m(f: Path) -> None:
        _drop_inject_from_json(f)
        (f / "inject_time.txt").write_text(content)
    return f"{i}", m


# -- logs and traces -----------------------------------------------------------------------------------------


@_kind("logs-broken", "repair", "logs.csv unusable (unbalanced quote, bad timestamps, missing columns, non-UTF-8): the case is kept for metric methods, the logs are fixed or ignored with a note")
def _logs(ctx: _Ctx, rng: np.random.Generator, i: int) -> tuple[str, Mutate]:
    how = ["quote", "time-word", "time-ms", "time-ns", "no-message-column", "latin1", "ragged"][i % 7]
    r = int(rng.integers(1, 50))
    def m(f: Path) -> None:
        p = f / "logs.csv"
        if not p.exists():
            p.write_text("time,container_name,message\n")
        lines = p.read_text().splitlines()
        r2 = min(r, len(lines) - 1) if len(lines) > 1 else 0
        if how == "quote" and r2:
            lines[r2] = lines[r2] + ' "unclosed'
        elif how == "time-word" and r2:
            lines[r2] = "yesterday," + lines[r2].split(",", 1)[1]
        elif how in ("time-ms", "time-ns"):
            k = 1000 if how == "time-ms" else 1_000_000_000
            lines = [lines[0]] + [f"{int(float(ln.split(',', 1)[0]) * k) + r}," + ln.split(",", 1)[1] for ln in lines[1:]]
        elif how == "no-message-column":
            lines = [",".join(ln.split(",")[:2]) for ln in lines[: 20 + r]]
        elif how == "latin1":
            p.write_bytes(("\n".join(lines) + "\n").encode() + f"1700000000.0,ray-head,caf\xe9 {r}\n".encode("latin-1"))
            return
        elif r2:
            lines[r2] = lines[r2].split(",", 1)[0]
        p.write_text("\n".join(lines) + "\n")
    return f"{how}{r}", m


@_kind("traces-broken", "repair", "traces.csv unusable (unbalanced quote, bad startTime, negative duration, missing columns): trace methods are unavailable or the traces are fixed, with a note; metric methods run")
def _traces(ctx: _Ctx, rng: np.random.Generator, i: int) -> tuple[str, Mutate]:
    how = ["quote", "start-word", "start-ms", "negative-duration", "no-parent-column", "ragged", "empty"][i % 7]
    r = int(rng.integers(1, 20))
    def m(f: Path) -> None:
        p = f / "traces.csv"
        if not p.exists():
            p.write_text("traceID,spanID,parentSpanID,serviceName,methodName,operationName,duration,statusCode,startTime\n")
        lines = p.read_text().splitlines()
        r2 = min(r, len(lines) - 1) if len(lines) > 1 else 0
        cells = [ln.split(",") for ln in lines]
        if how == "quote" and r2:
            cells[r2][3] = '"' + cells[r2][3]
        elif how == "start-word" and r2:
            cells[r2][8] = "noon"
        elif how == "start-ms":
            cells = [[*cells[0][:8], "startTimeMillis"]] + [[*c[:8], str(int(c[8]) // 1000 + r)] for c in cells[1:]]
        elif how == "negative-duration" and r2:
            cells[r2][6] = f"-{r}"
        elif how == "no-parent-column":
            cells = [c[:2] + c[3:] for c in cells[: 5 + r]]
        elif how == "ragged" and r2:
            cells[r2] = cells[r2][:4]
        elif how == "empty":
            cells = cells[:1]
        p.write_text("\n".join(",".join(c) for c in cells) + "\n")
    return (how if how == "empty" else f"{how}{r}"), m


# -- the file system -----------------------------------------------------------------------------------------

_FS_TARGETS = ["data.csv", "case.json", "inject_time.txt"]


def _prepare_target(f: Path, target: str) -> Path:
    if target == "inject_time.txt":
        _drop_inject_from_json(f)
    p = f / target
    if p.exists() or p.is_symlink():
        p.unlink()
    return p


@_kind("fs-fifo", "reject", "a FIFO instead of a file: refused at once (never blocks)", n_max=3)
def _fs_fifo(ctx: _Ctx, rng: np.random.Generator, i: int) -> tuple[str, Mutate]:
    target = _FS_TARGETS[i % 3]
    def m(f: Path) -> None:
        os.mkfifo(_prepare_target(f, target))
    return target, m


@_kind("fs-device", "reject", "a symlink to a device (/dev/zero, /dev/urandom, /dev/null): refused as not a regular file, no MemoryError", n_max=9)
def _fs_device(ctx: _Ctx, rng: np.random.Generator, i: int) -> tuple[str, Mutate]:
    target, dev = _FS_TARGETS[i % 3], ["/dev/zero", "/dev/urandom", "/dev/null"][i // 3 % 3]
    def m(f: Path) -> None:
        os.symlink(dev, _prepare_target(f, target))
    return f"{target}{dev.replace('/', '-')}", m


@_kind("fs-symlink-out", "reject", "a symlink to a file outside the case folder (a copy of the right content): refused, the dataset must hold its own files", n_max=6)
def _fs_symlink(ctx: _Ctx, rng: np.random.Generator, i: int) -> tuple[str, Mutate]:
    target = _FS_TARGETS[i % 3]
    absolute = i < 3
    def m(f: Path) -> None:
        p = f / target
        outside = f.parent / f"outside-{f.name}-{target}"
        outside.write_bytes(p.read_bytes())
        p.unlink()
        os.symlink(outside if absolute else os.path.relpath(outside, f), p)
    return f"{target}{'abs' if absolute else 'rel'}", m


@_kind("fs-unreadable", "reject", "a file without read permission: a message, no PermissionError traceback (root reads it anyway: run as a normal user)", n_max=3)
def _fs_unreadable(ctx: _Ctx, rng: np.random.Generator, i: int) -> tuple[str, Mutate]:
    target = _FS_TARGETS[i % 3]
    def m(f: Path) -> None:
        (f / target).chmod(0)
    return target, m


@_kind("fs-huge", "reject", "a file far beyond its limit (sparse: no disk used): refused from its size before reading; data.csv over the CSV cap, case.json over 16 MiB, inject_time.txt over 4 KiB", n_max=9)
def _fs_huge(ctx: _Ctx, rng: np.random.Generator, i: int) -> tuple[str, Mutate]:
    target = _FS_TARGETS[i % 3]
    size = {"data.csv": [3 << 30, 5 << 30, 1 << 40], "case.json": [17 << 20, 1 << 30, 20 << 20], "inject_time.txt": [5 << 10, 1 << 20, 1 << 30]}[target][i // 3 % 3]
    def m(f: Path) -> None:
        p = f / target
        if target == "inject_time.txt":
            _drop_inject_from_json(f)
        with open(p, "r+b") as fh:
            fh.truncate(size)  # the content stays at the front, the rest is a hole
    return f"{target}{size}", m


@_kind("fs-directory", "reject", "a folder where a file is expected: refused with 'is a folder'", n_max=3)
def _fs_dir(ctx: _Ctx, rng: np.random.Generator, i: int) -> tuple[str, Mutate]:
    target = _FS_TARGETS[i % 3]
    def m(f: Path) -> None:
        _prepare_target(f, target).mkdir()
    return target, m


# -- the generator ------------------------------------------------------------------------------------------


def variants(valid_case_dir: str | os.PathLike[str], rng: np.random.Generator, *, per_kind: int = 40) -> Iterator[tuple[str, Mutate]]:
    """Malformed variants of the case in ``valid_case_dir``: ``(name, mutate)`` pairs.

    ``mutate(folder)`` changes a copy of the case folder in place (the caller
    copies, e.g. with ``shutil.copytree``).  At most ``per_kind`` variants per
    kind (fewer for kinds with fewer distinct forms, see ``Kind.n_max``);
    with the default, more than 1,000 in all.  Deterministic for a given
    ``rng`` state; names are unique.  See :data:`KINDS` for what a reader
    must do with each kind.
    """
    ctx = _load(Path(valid_case_dir))
    seen: set[str] = set()
    for kind in KINDS.values():
        made = 0
        for i in range(min(per_kind, kind.n_max) * 3):  # extra attempts when random draws repeat
            if made >= min(per_kind, kind.n_max):
                break
            what, fn = kind.gen(ctx, rng, i)
            name = f"{kind.name}/{made:03d}-{what}"
            key = f"{kind.name}/{what}"
            if key in seen:
                continue
            seen.add(key)
            made += 1
            yield name, fn


def expectation(name: str) -> Kind:
    """The :class:`Kind` of a variant name (``"csv-truncate/003-keep12"`` -> the csv-truncate kind)."""
    return KINDS[name.split("/", 1)[0]]


#: Repair-labelled variants that change nothing the reader must repair, so no note is owed:
#: empty cells are read as missing values, CRLF reads like LF, an absent optional case.json field
#: has a default (only a derived ground truth - root_causes, fault - is noted), a quote inside a
#: log message is text, a traces.csv with only its header has no spans to fix.
_NOTHING_TO_NOTE = {
    "csv-nan-cells": None,
    "encoding-crlf": None,
    "case-json-missing-optional": ("schema", "name", "inject_time", "fault.", "topology", "metric_sets", "meta"),
    "logs-broken": ("quote",),
    "traces-broken": ("empty",),
}


def note_expected(name: str) -> bool:
    """True when a ``repair`` variant must come with a note (the reader changed something).

    See :data:`_NOTHING_TO_NOTE` for the variants whose data the reader reads as it is.
    """
    kind, _, rest = name.partition("/")
    if KINDS[kind].expect != "repair" or kind not in _NOTHING_TO_NOTE:
        return KINDS[kind].expect == "repair"
    what = rest.split("-", 1)[1] if "-" in rest else rest
    prefixes = _NOTHING_TO_NOTE[kind]
    return prefixes is not None and not what.startswith(prefixes)


def folder_digest(folder: str | os.PathLike[str]) -> str:
    """A digest of a case folder that never opens FIFOs or devices and reads at most 64 KiB per file end."""
    import hashlib

    h = hashlib.sha256()
    for p in sorted(Path(folder).rglob("*")):
        st = os.lstat(p)
        h.update(f"{p.relative_to(folder)}|{stat.S_IFMT(st.st_mode)}|{stat.S_IMODE(st.st_mode)}|{st.st_size}|".encode())
        if stat.S_ISLNK(st.st_mode):
            h.update(os.readlink(p).encode())
        elif stat.S_ISREG(st.st_mode) and os.access(p, os.R_OK):
            with open(p, "rb") as fh:
                h.update(fh.read(1 << 16))
                if st.st_size > 1 << 17:
                    fh.seek(-(1 << 16), os.SEEK_END)
                    h.update(fh.read())
        elif stat.S_ISREG(st.st_mode):
            h.update(b"unreadable")
    return h.hexdigest()
