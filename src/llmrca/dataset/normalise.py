"""One normalisation step: repair what can be repaired safely, and say so.

Public datasets write the same data in different ways (epoch seconds or
milliseconds, ISO strings, a saved pandas index, a repeated ``time`` header,
text identity columns among the metrics, ``+Inf`` from a histogram quantile).
Every function here returns the repaired data plus *notes* (one sentence per
repair, recorded in ``case.json`` under ``"normalised"`` and printed by
``llmrca dataset validate|import``) and, for the metric frames, *problems*
(what cannot be repaired safely: a sentence that says what to do).

Repairs (see ``docs/dataset.md``):

* time unit by magnitude (:func:`epoch_unit`): s / ms / µs / ns -> s, for
  ``time``, ``inject_time.txt`` and ``case.json`` ``inject_time`` alike;
* ISO 8601 / RFC 3339 date-time strings -> epoch s (an offset is honoured;
  a naive time is taken as UTC, and the note says so);
* a saved pandas index column (``Unnamed: N``, empty, ``index`` or ``level_N``
  holding strictly increasing whole numbers) -> dropped;
* a repeated ``time`` header (pandas reads ``time.1``) -> dropped when it
  holds the same instants as ``time`` (in any epoch unit or as date-times),
  otherwise a problem naming the column;
* non-numeric identity columns (``<c>_pod_name``, ``<c>_node_ip`` ...: no value
  is a number) -> dropped, their distinct values kept in ``meta["identity"]``;
* all-NaN columns -> dropped; ±Inf -> NaN (missing);
* logs: canonical ``time`` (epoch s, from ``timestamp`` or ``time`` in any unit
  or ISO), ``container_name``, ``message``; rows without a time dropped;
* traces: canonical ``startTime`` (µs, from ``startTimeMillis`` etc.) and
  ``duration`` (µs); rows without them dropped.
"""

from __future__ import annotations

import re
from dataclasses import replace
from typing import Any

import numpy as np
import pandas as pd

from llmrca.model import FaultRecord, one_hour_steps
from llmrca.names import series_columns

#: (lower bound of the median |value|, unit name, divisor to seconds), largest first.
#: Epoch seconds of this era are ~1.7e9, ms ~1.7e12, µs ~1.7e15, ns ~1.7e18.
_UNITS: tuple[tuple[float, str, float], ...] = (
    (1e17, "nanoseconds", 1e9),
    (1e14, "microseconds", 1e6),
    (1e11, "milliseconds", 1e3),
)

#: An explicit UTC offset at the end of an ISO 8601 / RFC 3339 string.
_OFFSET = re.compile(r"(?:[zZ]|[+-]\d{2}(?::?\d{2})?)\s*$")

#: Metric-name endings of identity (label) columns written among the metrics.
IDENTITY_HINTS = ("pod_name", "pod_ip", "node_name", "node_ip", "namespace", "instance", "hostname", "host", "uid", "uuid", "container")

#: Logs: canonical column -> accepted alternatives (first present wins).
LOG_ALIASES: dict[str, tuple[str, ...]] = {
    "container_name": ("container_name", "container", "pod_name", "pod", "service", "serviceName", "source"),
    "message": ("message", "msg", "log", "line", "content"),
}
#: Traces: start-time columns and their units (None = decide by magnitude).
TRACE_START: tuple[tuple[str, str | None], ...] = (
    ("startTime", None),
    ("startTimeMillis", "milliseconds"),
    ("startTimeMicros", "microseconds"),
    ("startTimeUnixNano", "nanoseconds"),
    ("start_time_unix_nano", "nanoseconds"),
    ("start_time", None),
)
#: Traces: end-time columns and their units (None = the start's), read when there is no duration column
#: (OpenTelemetry's spans carry start and end, no duration).
TRACE_END: tuple[tuple[str, str | None], ...] = (
    ("endTime", None),
    ("endTimeMillis", "milliseconds"),
    ("endTimeUnixNano", "nanoseconds"),
    ("end_time_unix_nano", "nanoseconds"),
    ("end_time", None),
)
TRACE_DURATION: tuple[tuple[str, float], ...] = (
    ("duration", 1.0),
    ("durationMicros", 1.0),
    ("durationMillis", 1e3),
    ("durationNanos", 1e-3),
    ("duration_us", 1.0),
    ("duration_ms", 1e3),
    ("duration_ns", 1e-3),
)
#: Traces: canonical id / name column -> other spellings (OpenTelemetry's snake_case, OTLP JSON's camelCase), first present wins.
TRACE_ALIASES: dict[str, tuple[str, ...]] = {
    "traceID": ("traceId", "trace_id"),
    "spanID": ("spanId", "span_id"),
    "parentSpanID": ("parentSpanId", "parent_span_id", "parentID", "parent_id"),
    "serviceName": ("service_name", "service"),
    "operationName": ("name", "span_name", "operation"),
    "statusCode": ("status_code", "status.code", "otel.status_code", "StatusCode", "http.status_code", "http_status_code"),
}
#: OpenTelemetry's span status codes (``Status.StatusCode`` of the trace API / OTLP ``status.code``), as text.
OTEL_STATUS = {0: "STATUS_CODE_UNSET", 1: "STATUS_CODE_OK", 2: "STATUS_CODE_ERROR"}
#: Header names read as ``time`` when a metrics or logs file has no ``time`` column (case-insensitive; exactly one
#: must be present).
#: A warning about how the case's times read (local times across a daylight-saving change, relative times that
#: look like milliseconds): said every time the case is read (``llmrca.dataset.io.is_warning_note``).
TIME_WARNING_PREFIX = "warning: time: "
TIME_ALIASES: frozenset[str] = frozenset({"time", "timestamp", "ts", "datetime", "date_time", "epoch"})
_TO_S = {"seconds": 1.0, "milliseconds": 1e3, "microseconds": 1e6, "nanoseconds": 1e9}


def epoch_unit(values: Any) -> tuple[str, float]:
    """The unit of epoch timestamps decided by magnitude: ``(name, divisor to seconds)``.

    ``values``: a number or array-like of numbers.  The median of |values| at or
    above 1e17 is nanoseconds, 1e14 microseconds, 1e11 milliseconds, else
    seconds (this also keeps relative times such as 0..600 s as they are).
    """
    v = np.asarray(values, dtype=float).ravel()
    v = v[np.isfinite(v)]
    if v.size == 0:
        return "seconds", 1.0
    mag = float(np.median(np.abs(v)))
    for bound, name, div in _UNITS:
        if mag >= bound:
            return name, div
    return "seconds", 1.0


def unit_near(values: Any, ref: tuple[float, float] | None, prefer: str | None = None) -> str:
    """Unit of timestamps ``values``: the first of ``prefer``, the magnitude rule, then
    the others, that puts their median within the reference window ``ref`` (the
    metrics' first and last time, s) widened by its length + 1 h; without ``ref``
    (or if none fits) ``prefer`` or the magnitude rule (:func:`epoch_unit`)."""
    by_mag = epoch_unit(values)[0]
    order = list(dict.fromkeys([u for u in (prefer, by_mag) if u] + list(_TO_S)))
    v = np.asarray(values, dtype=float).ravel()
    v = v[np.isfinite(v)]
    if ref is not None and v.size:
        t0, t1 = ref
        pad = (t1 - t0) + 3600.0
        med = float(np.median(v))
        for u in order:
            if t0 - pad <= med / _TO_S[u] <= t1 + pad:
                return u
    return prefer or by_mag


def parse_datetimes(values: pd.Series) -> tuple[np.ndarray, bool, int]:
    """ISO 8601 / RFC 3339 strings (or datetimes) -> epoch seconds.

    Returns ``(seconds, naive, first_bad_row)``: ``naive`` is True when at least
    one value had no UTC offset (taken as UTC); ``first_bad_row`` is -1 when
    every non-missing value parsed, else the position of the first that did not
    (its seconds are NaN).  An offset is honoured (``+02:00`` is two hours ahead
    of UTC).  Source: RFC 3339 sec. 5.6; pandas ``to_datetime(utc=True)``.
    """
    if pd.api.types.is_datetime64_any_dtype(values):
        dt = pd.to_datetime(values, utc=True)
        naive = getattr(values.dtype, "tz", None) is None
    else:
        text = values.astype("string").str.strip()
        try:
            dt = pd.to_datetime(text, utc=True, errors="coerce", format="ISO8601")
        except (ValueError, TypeError):
            dt = pd.to_datetime(text, utc=True, errors="coerce", format="mixed")
        present = text.notna() & (text != "")
        naive = bool((present & ~text.fillna("").str.contains(_OFFSET)).any())
    secs = np.array((dt - pd.Timestamp(0, tz="UTC")) / pd.Timedelta(seconds=1), dtype=float)
    secs[dt.isna().to_numpy()] = np.nan
    bad = np.flatnonzero(np.isnan(secs) & values.notna().to_numpy())
    return secs, naive, int(bad[0]) if bad.size else -1


def to_seconds(value: Any, what: str) -> tuple[float | None, list[str], str | None]:
    """One time value (number, numeric string or RFC 3339 string) -> epoch seconds.

    Returns ``(seconds or None, notes, problem or None)``.  The unit of a number
    is decided by :func:`epoch_unit`.
    """
    notes: list[str] = []
    if isinstance(value, bool):
        return None, notes, f"{what} {value!r} is not a time"
    num: float | None = None
    if isinstance(value, int | float | np.number):
        num = float(value)
    elif isinstance(value, str):
        try:
            num = float(value.strip())
        except ValueError:
            secs, naive, bad = parse_datetimes(pd.Series([value]))
            if bad >= 0 or not np.isfinite(secs[0]):
                return None, notes, f"{what} holds {value!r}, not a number of epoch seconds nor an RFC 3339 time"
            tz = " (no UTC offset: taken as UTC)" if naive else ""
            notes.append(f"{what}: date-time {value.strip()!r}{tz} converted to epoch seconds {float(secs[0])}")
            return float(secs[0]), notes, None
    else:
        return None, notes, f"{what} {value!r} is not a number of epoch seconds"
    if not np.isfinite(num):
        return None, notes, f"{what} {value!r} is not a finite number"
    unit, div = epoch_unit(num)
    if div != 1.0:
        notes.append(f"{what}: {num:.0f} is in epoch {unit} (by magnitude); converted to seconds ({num / div})")
    return num / div, notes, None


def fault_times_in_seconds(fault: FaultRecord) -> tuple[FaultRecord, list[str], list[str]]:
    """``fault.start`` / ``fault.end`` as epoch seconds, each by its magnitude as ``inject_time`` is
    (:func:`to_seconds`: ms, µs, ns -> s; an RFC 3339 string is read as well).

    Returns ``(fault, notes, problems)``: the record with the converted times (unchanged where nothing was to
    convert), a note per conversion, a problem per value that is no time.  Never raises.
    """
    notes: list[str] = []
    problems: list[str] = []
    times: dict[str, float | None] = {}
    for key in ("start", "end"):
        value = getattr(fault, key)
        if value is None:
            times[key] = None
            continue
        secs, n, prob = to_seconds(value, f"case.json fault.{key}")
        notes += n
        if prob:
            problems.append(prob)
        times[key] = secs if secs is not None else value
    if times["start"] == fault.start and times["end"] == fault.end:
        return fault, notes, problems
    return replace(fault, start=times["start"], end=times["end"]), notes, problems


def _is_num(dtype: Any) -> bool:
    return dtype.kind in "iufcb" if isinstance(dtype, np.dtype) else bool(pd.api.types.is_numeric_dtype(dtype))


#: Header names pandas gives a saved index: empty / ``Unnamed: 0`` (``to_csv()``), ``index`` / ``level_0``
#: (``reset_index().to_csv(index=False)`` or ``index_label="index"``).
SAVED_INDEX_NAME = re.compile(r"|Unnamed: \d+|index|level_\d+")


def _is_saved_index(col: Any, s: pd.Series) -> bool:
    """A saved pandas index: named as pandas names one (:data:`SAVED_INDEX_NAME`) and holding whole numbers
    that strictly increase (0..n-1, or any start and gaps: a frame sliced or filtered before ``to_csv``)."""
    if not SAVED_INDEX_NAME.fullmatch(str(col)) or len(s) == 0:
        return False
    v = pd.to_numeric(s, errors="coerce")
    if not bool(v.notna().all()):
        return False
    a = v.to_numpy(dtype=float)
    return bool(np.all(a == np.round(a)) and np.all(np.diff(a) > 0))


def _plain(value: Any) -> str:
    """A cell value for a message: numpy scalars as plain numbers (``1750000000``, not ``np.float64(...)``)."""
    if hasattr(value, "item"):
        value = value.item()
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return repr(value) if isinstance(value, str) else str(value)


def _column_seconds(s: pd.Series) -> tuple[np.ndarray | None, str]:
    """A time column as epoch seconds and how it was written (``'epoch seconds'``, ``'epoch milliseconds'``,
    ``'date-time strings'``); ``(None, "")`` when it is neither numbers nor date-times."""
    num = pd.to_numeric(s, errors="coerce")
    if s.notna().any() and num.notna().sum() == s.notna().sum():
        unit, div = epoch_unit(num.to_numpy(dtype=float))
        return num.to_numpy(dtype=float) / div, f"epoch {unit}"
    secs, _, bad = parse_datetimes(s)
    return (None, "") if bad >= 0 else (secs, "date-time strings")


def normalise_metrics(df: pd.DataFrame, where: str = "data.csv") -> tuple[pd.DataFrame, list[str], list[str], dict[str, list[str]]]:
    """Repair one metrics frame (``time`` + ``<component>_<metric>``).

    Returns ``(frame, notes, problems, identity)``: ``identity`` maps each
    dropped identity column to its distinct values.  ``problems`` lists what
    could not be repaired (the frame is then returned as far as it was repaired).
    Never raises on bad data.
    """
    notes: list[str] = []
    problems: list[str] = []
    identity: dict[str, list[str]] = {}
    if df.empty or len(df.columns) == 0:
        return df, notes, problems, identity
    cols = [str(c) for c in df.columns.tolist()]  # plain str: iterating an arrow-backed index is slow
    # 1. a saved pandas index (to_csv with index=True)
    idx_cols = [c for c in cols if SAVED_INDEX_NAME.fullmatch(c) and _is_saved_index(c, df[c])]  # df[c] only for such names
    if idx_cols:
        first = pd.to_numeric(df[idx_cols[0]], errors="coerce")
        df = df.drop(columns=idx_cols)
        notes.append(f"{where}: dropped the saved pandas index column {[str(c) for c in idx_cols]} ({_plain(first.iloc[0])}..{_plain(first.iloc[-1])})")
    # 1b. Prometheus series written as they print (metric{pod="x",...}): named <component>_<metric> by their pod,
    # service or container label when that name is unambiguous; the rest stay for frame_problems to explain
    if any("{" in c for c in cols):
        renames, _ = series_columns(cols)
        if renames:
            df = df.rename(columns=renames)
            a, b = next(iter(renames.items()))
            notes.append(f"{where}: named {len(renames)} column(s) written as Prometheus series by their component label "
                         f"(e.g. {a!r} -> {b!r})")
            cols = [str(c) for c in df.columns.tolist()]
    # 2. a repeated time header: pandas renames the second one to time.1 (time.2, ...). A copy that holds the same
    # instants (also written in another unit or as date-time strings) is dropped; one that differs is a problem
    # (which copy is right is unknown) and is dropped from the frame too, so it is not taken for a metric column.
    dup = [c for c in cols if c.startswith("time.") and re.fullmatch(r"time\.\d+", c)]
    if dup and "time" in df.columns:
        a = df["time"]
        sa, how_a = _column_seconds(a)
        for c in dup:
            b = df[c]
            # an empty cell of the copy (a row exported without it) contradicts nothing: only cells with a value count
            present = (b.notna() & (b.astype(str).str.strip() != "")).to_numpy()
            same = a.astype(str).str.strip().to_numpy() == b.astype(str).str.strip().to_numpy()
            na, nb = pd.to_numeric(a, errors="coerce"), pd.to_numeric(b, errors="coerce")
            same |= (na == nb).to_numpy()
            same |= ~present
            how = "" if present.all() else f" where it has a value ({int((~present).sum())} empty cell(s))"
            if not present.any():
                df = df.drop(columns=[c])
                notes.append(f"{where}: the header repeats 'time' (read as {c!r}); the copy is empty and was dropped")
                continue
            if not same.all() and sa is not None:
                sb, how_b = _column_seconds(b[present]) if present.any() else (None, "")
                if sb is not None and how_b != how_a:
                    full = np.full(len(b), np.nan)
                    full[present] = sb
                    with np.errstate(invalid="ignore"):
                        close = np.abs(sa - full) <= 1e-3
                    close |= ~present
                    if close.all():
                        same, how = close, f" (written as {how_b}, 'time' as {how_a}){how}"
                    else:
                        same = same | close  # the row named below is one where the instants really differ
            df = df.drop(columns=[c])
            if same.all():
                notes.append(f"{where}: the header repeats 'time' (read as {c!r}); the copy equals 'time'{how} and was dropped")
            else:
                i = int(np.argmax(~same))
                problems.append(
                    f"{where}: the header repeats 'time' (the second is read as {c!r}) and the two differ "
                    f"(row {i}: {_plain(a.iloc[i])} vs {_plain(b.iloc[i])}); keep the right time column and delete the other"
                )
    # 2b. a second time column under another usual name (time and timestamp): dropped when it holds the same instants
    # (in any epoch unit or as date-time strings), a problem naming both when they differ
    if "time" in df.columns:
        others = [c for c in [str(x) for x in df.columns] if c != "time" and c.lower() in TIME_ALIASES]
        sa, how_a = _column_seconds(df["time"]) if others else (None, "")
        for c in others:
            sb, how_b = _column_seconds(df[c])
            if sa is None or sb is None:
                continue  # not a time column after all (or 'time' is not one): frame_problems says what it is
            close = np.abs(sa - sb) <= 1e-3
            written = f" (written as {how_b}, 'time' as {how_a})" if how_b != how_a else ""
            df = df.drop(columns=[c])
            if close.all():
                notes.append(f"{where}: {c!r} holds the same instants as 'time'{written} and was dropped")
            else:
                i = int(np.argmax(~close))
                problems.append(f"{where}: both 'time' and {c!r} are time columns and they differ (row {i}: {sa[i]:.3f} vs {sb[i]:.3f} "
                                f"epoch seconds{written}); keep the right one and delete the other")
    # 3. time: numeric in any unit, or date-time strings
    if "time" in df.columns:
        t = df["time"]
        if not pd.api.types.is_numeric_dtype(t):
            num = pd.to_numeric(t, errors="coerce")
            if num.notna().sum() == t.notna().sum() and t.notna().any():
                t = num
            else:
                secs, naive, bad = parse_datetimes(t)
                if bad >= 0:
                    bad_num = np.flatnonzero(num.isna().to_numpy() & t.notna().to_numpy())
                    r = int(bad_num[0]) if num.notna().any() and bad_num.size else bad
                    problems.append(
                        f"{where}: 'time' is not numeric and not a date-time (e.g. row {r}: {t.iloc[r]!r}); "
                        "use epoch seconds (or RFC 3339 times) in every row"
                    )
                else:
                    tz = "; the times carry no UTC offset and were taken as UTC" if naive else " (UTC offsets honoured)"
                    notes.append(f"{where}: 'time' holds date-time strings (e.g. {str(t.iloc[0])!r}); converted to epoch seconds{tz}")
                    hour = np.flatnonzero(one_hour_steps(secs)) if naive else np.array([], dtype=int)
                    if hour.size and secs[hour[0] + 1] > secs[hour[0]]:
                        row = int(hour[0]) + 1
                        notes.append(f"{TIME_WARNING_PREFIX}{where}: 'time' jumps forward by one hour at row {row} ({str(t.iloc[row - 1])!r} -> "
                                     f"{str(t.iloc[row])!r}) in times without a UTC offset: local times across the start of "
                                     "daylight saving? The hour is then missing, not lost data; write the times in UTC or with their offset")
                    t = pd.Series(secs, index=df.index)
        if pd.api.types.is_numeric_dtype(t):
            tv = t.to_numpy(dtype=float)
            fin = tv[np.isfinite(tv)]
            step = float(np.median(np.diff(fin))) if fin.size > 2 else 0.0
            if fin.size > 2 and 2e4 <= fin.min() and fin.max() <= 8e4 and 0 < step < 0.01:  # seconds apart, in days
                notes.append(f"{TIME_WARNING_PREFIX}{where}: 'time' runs from {fin.min():g} to {fin.max():g} in steps of {step:.3g}: "
                             "spreadsheet serial days (days since 1899-12-30), read as seconds; write 'time' (and the "
                             "injection time) as epoch seconds or RFC 3339 times")
            elif 0 <= fin.min() and fin.max() < 1e8 and step >= 100:  # relative times a step of minutes apart: milliseconds?
                notes.append(f"{TIME_WARNING_PREFIX}{where}: 'time' runs from {fin.min():g} to {fin.max():g}, not epoch times, and is read "
                             f"as seconds from the start, {step:g} s apart; if these are milliseconds, convert them (and the "
                             "injection time) to seconds")
            unit, div = epoch_unit(tv)
            if div != 1.0:
                notes.append(f"{where}: 'time' is in epoch {unit} (by magnitude, e.g. {float(t.iloc[0]):.0f}); converted to seconds")
                t = t.astype(float) / div
            if div != 1.0 or not pd.api.types.is_numeric_dtype(df["time"]):
                df = df.assign(time=t)
    # 4. non-numeric identity columns
    cols = [str(c) for c in df.columns.tolist()]
    dtypes = df.dtypes.tolist()
    text_cols = [c for c, t in zip(cols, dtypes, strict=True) if c != "time" and not _is_num(t)]
    drop_id: list[str] = []
    for c in text_cols:
        s = df[c]
        num = pd.to_numeric(s, errors="coerce")
        present = s.notna()
        if present.any() and not num[present].notna().any():
            drop_id.append(str(c))
            identity[str(c)] = sorted({str(v) for v in s[present].unique()})[:50]
        elif present.any() and num[present].notna().all():
            df = df.assign(**{c: num})  # numbers written as text
        # mixed columns stay: frame_problems names them
    if drop_id:
        df = df.drop(columns=drop_id)
        hinted = [c for c in drop_id if str(c).lower().endswith(IDENTITY_HINTS)]
        kind = "identity" if hinted else "text"
        notes.append(
            f"{where}: dropped {len(drop_id)} non-numeric {kind} column(s) {drop_id[:8]}{' ...' if len(drop_id) > 8 else ''}; "
            "their distinct values are kept in case.json meta.identity"
        )
    # 5. +-Inf -> NaN, then all-NaN columns
    cols = [str(c) for c in df.columns.tolist()]
    dtypes = df.dtypes.tolist()
    is_num = [c != "time" and _is_num(t) and t.kind != "b" for c, t in zip(cols, dtypes, strict=True)]
    num_cols = [c for c, k in zip(cols, is_num, strict=True) if k]
    if num_cols:
        if all(_is_num(t) for t in dtypes):  # one to_numpy of the whole frame (fast on wide frames)
            v = df.to_numpy(dtype=float)[:, np.flatnonzero(is_num)]
        else:
            v = df[num_cols].to_numpy(dtype=float)
        inf = np.isinf(v)
        if inf.any():
            cols = [num_cols[j] for j in np.flatnonzero(inf.any(axis=0))]
            v = np.where(inf, np.nan, v)
            df = df.assign(**{c: v[:, j] for j, c in enumerate(num_cols) if inf[:, j].any()})
            notes.append(f"{where}: {int(inf.sum())} infinite value(s) in {cols[:8]} treated as missing (NaN)")
        all_nan = np.isnan(v).all(axis=0) if len(v) else np.zeros(len(num_cols), dtype=bool)
        if all_nan.any():
            cols = [num_cols[j] for j in np.flatnonzero(all_nan)]
            df = df.drop(columns=cols)
            notes.append(f"{where}: dropped {len(cols)} all-NaN column(s) {cols[:8]}{' ...' if len(cols) > 8 else ''}")
    return df, notes, problems, identity


def _pick(df: pd.DataFrame, names: tuple[str, ...]) -> str | None:
    return next((n for n in names if n in df.columns), None)


def normalise_logs(logs: pd.DataFrame, where: str = "logs.csv", ref: tuple[float, float] | None = None) -> tuple[pd.DataFrame | None, list[str]]:
    """Canonical log frame: ``time`` (epoch s, float), ``container_name``, ``message`` (+ extra columns).

    ``time`` comes from a numeric ``timestamp`` column when there is one
    (RCAEval RE2/RE3 write ns there, and an ISO string in ``time``), else from
    ``time`` (any epoch unit, chosen to fit the metrics' window ``ref``, or ISO).  Rows without a usable time are dropped
    and counted.  Returns ``(None, notes)`` when the logs cannot be used (the
    note says why); metric-only methods then still run.
    """
    notes: list[str] = []
    if logs.empty:
        return logs, notes
    if list(logs.columns) == ["time", "container_name", "message"] and _is_num(logs["time"].dtype):
        t = logs["time"].to_numpy(dtype=float)
        if unit_near(t, ref) == "seconds" and np.isfinite(t).all() and not logs[["container_name", "message"]].isna().to_numpy().any():
            return logs, notes  # canonical already: nothing to repair
    out = logs.copy()
    if "time" not in out.columns and "timestamp" not in out.columns:
        alias = [c for c in out.columns if str(c).strip().lower() in TIME_ALIASES]
        if len(alias) == 1:  # e.g. 'ts', 'Timestamp' (as data.csv's time column is found)
            out = out.rename(columns={alias[0]: "time"})
            notes.append(f"{where}: no 'time' column; {str(alias[0])!r} was read as 'time'")
    src = None
    for cand in ("timestamp", "time"):
        if cand in out.columns:
            num = pd.to_numeric(out[cand], errors="coerce")
            if num.notna().mean() > 0.5:
                src = cand
                unit = unit_near(num.to_numpy(dtype=float), ref)
                div = _TO_S[unit]
                if div != 1.0 or cand != "time":
                    notes.append(f"{where}: time taken from {cand!r} in epoch {unit}; converted to seconds")
                t = num.to_numpy(dtype=float) / div
                break
    if src is None and "time" in out.columns:
        t, naive, _ = parse_datetimes(out["time"])
        src = "time"
        notes.append(f"{where}: 'time' holds date-time strings; converted to epoch seconds" + ("; naive times taken as UTC" if naive else ""))
    if src is None:
        return None, [f"{where}: no 'time' or 'timestamp' column (have {list(logs.columns)[:8]}); the logs are not used"]
    out["time"] = t
    for canon, alts in LOG_ALIASES.items():
        got = _pick(out, alts)
        if got is None:
            return None, [*notes, f"{where}: no {canon!r} column (nor {list(alts[1:])}); the logs are not used"]
        if got != canon:
            out[canon] = out[got]
            notes.append(f"{where}: {canon!r} taken from {got!r}")
    bad = ~np.isfinite(out["time"].to_numpy(dtype=float))
    if bad.any():
        out = out[~bad]
        notes.append(f"{where}: dropped {int(bad.sum())} row(s) without a usable time")
    empty = (out["container_name"].isna() & out["message"].isna()).to_numpy()
    if empty.any():
        out = out[~empty]
        notes.append(f"{where}: dropped {int(empty.sum())} row(s) with neither a container nor a message (cut-off lines)")
    for c in ("container_name", "message"):  # text: a missing cell is empty text, never a float NaN
        if out[c].dtype != object or out[c].isna().any():
            out[c] = out[c].where(out[c].notna(), "").astype(str)
    rest = [c for c in out.columns if c not in ("time", "container_name", "message")]
    return out[["time", "container_name", "message", *rest]].reset_index(drop=True), notes


def normalise_traces(traces: pd.DataFrame, where: str = "traces.csv", ref: tuple[float, float] | None = None) -> tuple[pd.DataFrame | None, list[str]]:
    """Canonical span frame: ``startTime`` and ``duration`` in µs (see ``io.TRACE_COLUMNS``).

    ``startTimeMillis`` (RCAEval RE2, Jaeger) is ms; ``startTime`` is µs unless
    that puts the spans far from the metrics' window ``ref`` (first, last
    time in s) and another unit does not (:func:`unit_near`); ``duration`` is µs (RCAEval RE2), ``durationMillis`` /
    ``durationNanos`` converted.  Rows without a start or a duration are
    dropped and counted.  Returns ``(None, notes)`` when spans cannot be
    identified (no traceID / spanID / serviceName).
    """
    notes: list[str] = []
    if traces.empty:
        return traces, notes
    renamed: dict[str, str] = {}
    for canon, alts in TRACE_ALIASES.items():
        alt = next((a for a in alts if a in traces.columns), None)
        if canon not in traces.columns and alt is not None:
            renamed[alt] = canon
    if renamed:
        traces = traces.rename(columns=renamed)
        notes.append(f"{where}: columns {sorted(renamed)} read as {[renamed[k] for k in sorted(renamed)]}")
        otel = next((k for k, v in renamed.items() if v == "statusCode" and k in ("status_code", "status.code", "StatusCode")), None)
        if otel is not None:  # OpenTelemetry's enum 0/1/2 (unset/ok/error), not an HTTP code: said as its text
            code = pd.to_numeric(traces["statusCode"], errors="coerce")
            if code.notna().any() and code.dropna().isin(list(OTEL_STATUS)).all():
                traces = traces.assign(statusCode=code.map(OTEL_STATUS).astype(object).where(code.notna(), None))
                notes.append(f"{where}: {otel!r} holds OpenTelemetry status codes (0 unset, 1 ok, 2 error); read as "
                             "STATUS_CODE_UNSET / _OK / _ERROR")
    out = traces
    missing = [c for c in ("traceID", "spanID", "serviceName") if c not in out.columns]
    if missing:
        return None, [*notes, f"{where}: no {missing} column(s) (have {list(traces.columns)[:10]}); the traces are not used"]
    start_col = next(((c, u) for c, u in TRACE_START if c in out.columns), None)
    dur_col = next(((c, f) for c, f in TRACE_DURATION if c in out.columns), None)
    end_col = next(((c, u) for c, u in TRACE_END if c in out.columns), None) if dur_col is None else None
    if start_col is None or (dur_col is None and end_col is None):
        lacking = " and ".join(w for w, miss in (("start-time", start_col is None), ("duration (or end-time)", dur_col is None and end_col is None)) if miss)
        return None, [*notes, f"{where}: no {lacking} column (have {list(traces.columns)[:10]}); the traces are not used"]
    col, unit = start_col
    from llmrca.dataset.io import TRACE_COLUMNS

    if col == "startTime" and dur_col is not None and dur_col[0] == "duration" and list(traces.columns) == TRACE_COLUMNS:
        st, du = traces["startTime"], traces["duration"]
        if _is_num(st.dtype) and _is_num(du.dtype) and unit_near(st.to_numpy(dtype=float), ref, prefer="microseconds") == "microseconds":
            ok = np.isfinite(st.to_numpy(dtype=float)) & np.isfinite(du.to_numpy(dtype=float)) & (du.to_numpy(dtype=float) >= 0)
            if ok.all():
                return traces, notes  # canonical already: nothing to repair
    num = pd.to_numeric(out[col], errors="coerce")
    if num.notna().sum() == 0 and num.size:
        secs, _, _ = parse_datetimes(out[col])
        num, unit = pd.Series(secs, index=out.index), "seconds"
    if unit is None:  # our startTime is µs; another unit only if µs does not fit the metrics' time
        unit = unit_near(num.to_numpy(dtype=float), ref, prefer="microseconds" if col == "startTime" else None)
    if col != "startTime" or unit != "microseconds":
        notes.append(f"{where}: span start taken from {col!r} in {unit}; converted to 'startTime' in microseconds")
    out = traces.copy()
    out["startTime"] = num.to_numpy(dtype=float) * (1e6 / _TO_S[unit])
    if dur_col is not None:
        dcol, factor = dur_col
        dur = pd.to_numeric(out[dcol], errors="coerce").to_numpy(dtype=float) * factor
        if dcol != "duration":
            notes.append(f"{where}: span duration taken from {dcol!r}; converted to 'duration' in microseconds")
    else:  # end - start, the end read in its own unit (or the start's)
        ecol, eunit = end_col  # type: ignore[misc]
        end = pd.to_numeric(out[ecol], errors="coerce")
        if end.notna().sum() == 0 and end.size:
            esecs, _, _ = parse_datetimes(out[ecol])
            end, eunit = pd.Series(esecs, index=out.index), "seconds"
        dur = end.to_numpy(dtype=float) * (1e6 / _TO_S[eunit or unit]) - out["startTime"].to_numpy(dtype=float)
        notes.append(f"{where}: span duration taken as {ecol!r} minus the start; in microseconds")
    out["duration"] = dur
    absent = [c for c in ("parentSpanID", "methodName", "operationName", "statusCode") if c not in out.columns]
    for c in absent:
        out[c] = pd.NA
    if absent:
        notes.append(f"{where}: no {absent} column(s); left empty" + (" (every span is taken as a root span)" if "parentSpanID" in absent else ""))
    bad = ~(np.isfinite(out["startTime"].to_numpy(dtype=float)) & np.isfinite(out["duration"].to_numpy(dtype=float)))
    if bad.any():
        out = out[~bad]
        notes.append(f"{where}: dropped {int(bad.sum())} span(s) without a usable start time or duration")
    neg = out["duration"].to_numpy(dtype=float) < 0
    if neg.any():
        out = out[~neg]
        notes.append(f"{where}: dropped {int(neg.sum())} span(s) with a negative duration")
    for c in ("traceID", "spanID", "parentSpanID", "serviceName", "methodName", "operationName"):
        if out[c].dtype == object:  # ids and names are text: a missing cell is empty text, never a float NaN
            out[c] = out[c].where(out[c].notna(), "").astype(str)

    used = (col, dur_col[0] if dur_col is not None else end_col[0])  # type: ignore[index]
    rest = [c for c in out.columns if c not in TRACE_COLUMNS and c not in used]
    return out[[*TRACE_COLUMNS, *rest]].reset_index(drop=True), notes


def time_range(df: pd.DataFrame) -> tuple[float, float] | None:
    """First and last ``time`` of a normalised metrics frame (s), or None."""
    if "time" not in df.columns or not pd.api.types.is_numeric_dtype(df["time"]) or df.empty:
        return None
    t = df["time"].to_numpy(dtype=float)
    t = t[np.isfinite(t)]
    return (float(t.min()), float(t.max())) if t.size else None


def normalise_case(case: Any) -> tuple[Any, list[str]]:
    """Apply every repair to an in-memory :class:`~llmrca.model.Case`.

    Returns ``(new_case, notes)``; the notes are also appended to
    ``new_case.meta["normalised"]`` (written to ``case.json`` by
    :func:`~llmrca.dataset.write_case`).  What cannot be repaired stays for
    :meth:`Case.validate` to report.  The reader
    (:func:`~llmrca.dataset.read_case`) applies the same repairs to files.
    """
    notes: list[str] = []
    meta = dict(case.meta)
    sets: dict[str, pd.DataFrame] = {}
    for name, df in case.metric_sets.items():
        fixed, n, _, ident = normalise_metrics(df, f"metric set {name!r}")
        sets[name] = fixed
        notes += n
        if ident:
            meta.setdefault("identity", {}).update(ident)
    inject, n, _ = to_seconds(case.inject_time, "inject_time")
    notes += n
    fault = case.fault
    if fault is not None:
        fault, n, _ = fault_times_in_seconds(fault)
        notes += n
    logs, traces = case.logs, case.traces
    ref = time_range(sets.get(case.metric_set, next(iter(sets.values()))))
    if logs is not None:
        logs, n = normalise_logs(logs, ref=ref)
        notes += n
    if traces is not None:
        traces, n = normalise_traces(traces, ref=ref)
        notes += n
    if notes:
        meta["normalised"] = [*meta.get("normalised", []), *notes]
    cur = case.metric_set if case.metric_set in sets else next(iter(sets))
    new = replace(
        case,
        metrics=sets[cur],
        metric_sets=sets,
        metric_set=cur,
        inject_time=inject if inject is not None else case.inject_time,
        fault=fault,
        logs=logs,
        traces=traces,
        meta=meta,
    )
    return new, notes
