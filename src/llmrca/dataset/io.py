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

A healthy case (nothing injected) is written as ``<dataset>/healthy/<rep>/``
with ``fault.type`` ``"none"``, ``fault.target`` null and ``root_causes`` ``[]``.

Plain RCAEval / rca-llm trees without ``case.json`` are read too: the ground
truth then comes from the folder name ``<component>_<fault>`` (``healthy/<rep>``:
nothing injected).
"""

from __future__ import annotations

import io
import json
import os
import re
from collections import Counter
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

import pandas as pd

from llmrca.dataset.fastcsv import write_csv
from llmrca.dataset.normalise import TIME_ALIASES, TIME_WARNING_PREFIX, fault_times_in_seconds
from llmrca.model import (
    FAULT_ALIASES,
    MIN_NORMAL_ROWS,
    NO_FAULT,
    NORMAL_ROWS_ADVICE,
    Case,
    CaseValidationError,
    FaultRecord,
    Topology,
    components_of,
    normalize_fault_type,
    split_column,
)
from llmrca.names import component_name_problem, printable, shown

SCHEMA_VERSION = 1
#: Start of the message for an unexpected error while reading a case (a reader bug, never a bad input's fault).
UNEXPECTED = "unexpected error while reading the case"
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
        # warnings about the case as it is (short window, case.json vs folder) are re-derived on every read
        "normalised": [n for n in case.meta.get("normalised", []) if not is_warning_note(str(n))],
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


def _read_csv(path: Path, what: str, folder: Path | None = None, notes: list[str] | None = None) -> pd.DataFrame:
    """A small auxiliary CSV (``mpg.csv``, or a compressed copy, noted in ``notes``) read through
    :mod:`llmrca.dataset.safe_io`; raises :class:`CaseValidationError`."""
    from llmrca.dataset.safe_io import MAX_CSV_BYTES, read_bytes_bounded

    raw = read_bytes_bounded(path, MAX_CSV_BYTES, what, root=folder if folder is not None else path.parent)
    raw, _ = decompress_bounded(raw, path.name, MAX_CSV_BYTES, notes)
    try:
        return pd.read_csv(io.BytesIO(raw))
    except pd.errors.EmptyDataError:
        return pd.DataFrame()
    except (UnicodeDecodeError, pd.errors.ParserError, ValueError) as e:
        raise CaseValidationError([f"cannot read {what} {path}: {str(e)[:200]}; it must be a UTF-8 comma-separated file with a header row"], where=str(path.parent)) from None


def _read_text_csv(path: Path, what: str, notes: list[str], folder: Path) -> pd.DataFrame | None:
    """A logs / traces CSV, read safely and robustly; None if unusable (noted).

    Read through :mod:`llmrca.dataset.safe_io` (a FIFO, device, symlink out
    of the case or a file over the cap is noted and the case is used without
    it).  Non-UTF-8 bytes are replaced (warning note).  When pandas cannot
    parse the whole file (an unbalanced quote swallows the rest), every line
    is parsed on its own: lines that do not have the header's field count
    are dropped and counted in a note, so one bad row never loses the file.
    """
    import csv

    from llmrca.dataset.safe_io import MAX_CSV_BYTES, read_bytes_bounded

    try:
        raw, _ = decompress_bounded(read_bytes_bounded(path, MAX_CSV_BYTES, path.name, root=folder), path.name, MAX_CSV_BYTES, notes)
    except CaseValidationError as e:  # DatasetInputError too: a FIFO, a file over the cap, a damaged archive
        notes.append(f"{NOT_USED_PREFIX}{e.problems[0]}; the case is used without {what}")
        return None
    try:
        text = _decode_csv(raw, path.name, notes, strict=False)
    except CaseValidationError as e:
        notes.append(f"{NOT_USED_PREFIX}{e.problems[0]}; the case is used without {what}")
        return None
    if "\x00" in text:  # NUL bytes inside log lines (a crashed writer, binary output): the C parser would cut the field
        notes.append(f"warning: {path.name}: {text.count(chr(0))} NUL byte(s) removed")
        text = text.replace("\x00", "")
    if not text.strip():
        notes.append(f"{NOT_USED_PREFIX}{path.name} is empty; the case is used without {what}")
        return None
    first, _, rest = text.partition("\n")
    hinted = _excel_delimiter_hint(first, bool(rest.strip()), path.name, notes)
    if hinted is not None:  # as in the metrics files
        text, sep = rest, hinted
    else:
        sep = _sniff_delimiter(first, path.name, notes)  # ';' / tab / '|' as the metrics files may have
    try:
        return pd.read_csv(io.StringIO(text), sep=sep)
    except pd.errors.EmptyDataError:
        return pd.DataFrame()
    except (pd.errors.ParserError, ValueError, OverflowError):
        pass
    lines = text.splitlines()
    header = next(csv.reader([lines[0]], delimiter=sep), []) if lines else []
    if not header:
        notes.append(f"{NOT_USED_PREFIX}{path.name} has no header row; the case is used without {what}")
        return None
    rows, bad = [], 0
    for ln in lines[1:]:
        if not ln.strip():
            continue
        try:
            fields = next(csv.reader([ln], delimiter=sep), [])
        except csv.Error:
            fields = []
        if len(fields) == len(header) and ln.count('"') % 2 == 0:
            rows.append(fields)
        else:
            bad += 1
    notes.append(f"warning: {path.name}: dropped {bad} malformed line(s) (unbalanced quotes or a wrong number of fields); kept {len(rows)}")
    return pd.DataFrame(rows, columns=header)  # text cells: the normalisers convert times and durations


def _not_used_last(notes: list[str], unusable: bool) -> list[str]:
    """A normaliser's notes; when it found the file unusable its last note (why) is a warning said on every read
    (``warning: not used: ...``, in rank --json ``case_warnings``), not a repair."""
    if not unusable or not notes or notes[-1].startswith(NOT_USED_PREFIX):
        return notes
    return [*notes[:-1], NOT_USED_PREFIX + notes[-1]]


def _decode_csv(raw: bytes, name: str, notes: list[str], *, strict: bool) -> str:
    """Bytes of a CSV file -> text; a leading BOM is removed (noted).

    ``strict`` (metrics): bytes that are not UTF-8 are a problem (raised as
    :class:`CaseValidationError`); otherwise (logs, traces) they are replaced
    by U+FFFD with a warning note.
    """
    from llmrca.dataset.safe_io import decode_text

    packed = compression_of(raw)
    if packed is not None:
        raise CaseValidationError([f"{name} is {packed}-compressed, not CSV text; decompress it (the folder must hold the plain {name})"])
    if not strict:
        wide = _wide_unicode(raw)
        if wide is not None:
            enc, had_bom = wide
            text = raw.decode(enc, errors="replace")
            notes.append(f"warning: {name} is {enc.upper()} text{' (byte-order mark)' if had_bom else ''}, not UTF-8; decoded as {enc.upper()}")
            return text.removeprefix("\ufeff")
    if raw.startswith((b"\xff\xfe", b"\xfe\xff")) or (len(raw) > 3 and raw[:4].count(0) >= 1 and strict):
        raise CaseValidationError(
            [f"{name} is not UTF-8 text (it looks like UTF-16/UTF-32: NUL bytes or a UTF-16 byte-order mark at the start); save it as UTF-8 CSV"]
        )
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as e:
        if strict:
            raise CaseValidationError(
                [f"{name} is not UTF-8 text (first bad byte {raw[e.start]:#04x} at offset {e.start}); save it as UTF-8 CSV (column names and numbers must be UTF-8)"]
            ) from None
        dec = decode_text(raw)
        notes.append(
            f"warning: {name} is not valid UTF-8 (first bad byte at offset {e.start}); decoded with {dec.replaced} replacement character(s) U+FFFD"
        )
        text = dec.text
    if text.startswith("\ufeff"):
        text = text[1:]
        notes.append(f"{name}: a UTF-8 byte-order mark at the start was removed")
    return text


#: Magic numbers of compressed files (gzip RFC 1952, zip APPNOTE 4.3.7 (a local file header, or the end
#: record an empty archive starts with), bzip2, xz, zstd RFC 8878).
COMPRESSION_MAGIC: tuple[tuple[bytes, str], ...] = (
    (b"\x1f\x8b", "gzip"),
    (b"PK\x03\x04", "zip"),
    (b"PK\x05\x06", "zip"),
    (b"BZh", "bzip2"),
    (b"\xfd7zXZ\x00", "xz"),
    (b"\x28\xb5\x2f\xfd", "zstd"),
)


def compression_of(raw: bytes) -> str | None:
    """The compression format of ``raw`` by its magic number (``"gzip"``, ``"zip"``, ...), or None."""
    return next((name for magic, name in COMPRESSION_MAGIC if raw.startswith(magic)), None)


def is_tar(raw: bytes) -> bool:
    """True when ``raw`` starts with a POSIX tar header (``ustar`` at offset 257, POSIX.1-1988 / pax)."""
    return raw[257:262] == b"ustar"


#: Formats :func:`decompress_bounded` reads (the Python standard library's); zstd is named, not read.
READABLE_COMPRESSION: frozenset[str] = frozenset({"gzip", "zip", "bzip2", "xz", "lzma"})

#: zip compression methods the standard library reads (stored, deflate, bzip2, lzma; APPNOTE 4.4.5).
_ZIP_METHOD_NAMES: dict[int, str] = {9: "deflate64", 12: "bzip2", 14: "lzma", 93: "zstd", 95: "xz", 98: "ppmd", 99: "AES"}


def decompress_bounded(raw: bytes, name: str, max_bytes: int, notes: list[str] | None = None) -> tuple[bytes, str | None]:
    """``(content, format)``: ``raw`` decompressed when it is gzip, zip (one member), bzip2 or xz by its magic
    number (:data:`COMPRESSION_MAGIC`), or LZMA-alone by its name (``.lzma``, which has no magic number),
    else ``(raw, None)``.

    At most ``max_bytes`` bytes of content are decompressed (an archive that expands without limit stops
    there and is refused; up to ``max_bytes`` are held in memory meanwhile).  When ``notes`` is given, a
    note says what was decompressed (a zip's member by name), or that a file named like a compressed one
    (``data.csv.gz``) held plain bytes.  Raises :class:`CaseValidationError` naming ``name`` for a zstd
    file (no reader in the standard library), a zip archive without exactly one file, an encrypted zip
    or one compressed with a method the standard library lacks, a damaged stream, a content larger than
    ``max_bytes``, a content that is itself compressed (compressed twice) or a tar archive (a file or
    ``.tar.gz`` of several files).  Formats: gzip RFC 1952, zip APPNOTE 6.3, bzip2, xz, LZMA-alone (the
    ``lzma`` utility's, as xz-utils documents it), POSIX tar.
    """
    import lzma
    import zipfile
    import zlib

    from llmrca.dataset.layouts import compressed_suffix

    suffix = (compressed_suffix(name) or "").lower()
    packed = compression_of(raw)
    if packed is None and ((suffix == ".lzma" and raw[:1] == b"\x5d") or _looks_lzma_alone(raw)):
        packed = "lzma"  # LZMA-alone has no magic number: its name or its header says it
    if packed is None:
        if is_tar(raw):
            raise CaseValidationError([f"{name} is a tar archive, not CSV text; extract it (tar -xf) and put its files into the case folder"])
        if notes is not None and suffix and raw:
            notes.append(f"{name}: named like a compressed file but holds plain bytes; read as it is")
        return raw, None
    if packed not in READABLE_COMPRESSION:
        from llmrca.dataset.layouts import plain_name

        plain = plain_name(name) if suffix else name
        how = f"zstd -d {name} -o {plain}" if suffix else f"zstd -dc {name} > {name}.tmp && mv {name}.tmp {name}"
        raise CaseValidationError([f"{name} is {packed}-compressed, which is not read; decompress it ({how}) "
                                   f"so the folder holds the plain {plain}"])
    member = None
    try:
        if packed == "zip":
            with zipfile.ZipFile(io.BytesIO(raw)) as zf:
                # macOS Finder's "Compress" adds __MACOSX/._<name> resource forks and .DS_Store: no data
                members = [i for i in zf.infolist() if not i.is_dir() and not _zip_metadata(i.filename)]
                if len(members) != 1:
                    shown_names = ", ".join(printable(_zip_name(i)) for i in members[:3]) + (", ..." if len(members) > 3 else "")
                    raise CaseValidationError([
                        f"{name} is a zip archive of {len(members)} files{f' ({shown_names})' if shown_names else ''}; "
                        "a case file must be one CSV: unzip it and put the file(s) into the case folder"
                    ])
                info = members[0]
                member = printable(_zip_name(info))
                if info.flag_bits & 0x1:
                    raise CaseValidationError([f"{name} is an encrypted zip archive ({member} needs a password); "
                                               "decrypt it (unzip, with the password) and put the plain CSV into the case folder"])
                if info.compress_type not in (zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED, zipfile.ZIP_BZIP2, zipfile.ZIP_LZMA):
                    method = _ZIP_METHOD_NAMES.get(info.compress_type, f"method {info.compress_type}")
                    raise CaseValidationError([f"{name} is a zip archive compressed with {method}, which is not read; "
                                               "unzip it (e.g. 7z x) and put the plain CSV into the case folder"])
                with zf.open(info) as fh:
                    out = fh.read(max_bytes + 1)
        else:
            out, trailing = _unpack_streams(raw, max_bytes + 1, packed)
            if trailing and notes is not None:  # as gzip -d: "decompression OK, trailing garbage ignored"
                notes.append(f"{TRAILING_PREFIX}{name}: {trailing} byte(s) after the end of the {packed} data were ignored (padding or garbage)")
    except CaseValidationError:
        raise
    except (RuntimeError, NotImplementedError) as e:  # zipfile: a password needed, a method it lacks
        raise CaseValidationError([f"{name} is a zip archive that cannot be read here ({str(e)[:120]}); "
                                   "unzip it yourself and put the plain CSV into the case folder"]) from None
    except (OSError, EOFError, zlib.error, lzma.LZMAError, zipfile.BadZipFile, ValueError) as e:
        raise CaseValidationError([f"{name} is {packed}-compressed but cannot be decompressed ({str(e)[:120] or type(e).__name__}); "
                                   "the file is damaged or cut off: copy or export it again"]) from None
    if len(out) > max_bytes:
        raise CaseValidationError([f"{name} decompresses to more than {max_bytes} bytes, the limit for a case file; "
                                   "split the case or decompress it and check its size"])
    inside = f"{name}{f' ({member})' if member else ''}"
    if (twice := compression_of(out)) is not None:
        raise CaseValidationError([f"{inside} is {packed}-compressed and what it holds is {twice}-compressed again; "
                                   "decompress it until it is CSV text and put that into the case folder"])
    if is_tar(out):
        raise CaseValidationError([f"{inside} is {packed}-compressed and holds a tar archive, not CSV text; "
                                   "extract it (tar -xf) and put its files into the case folder"])
    if notes is not None:
        notes.append(f"{name}: {packed}-compressed{f' (its one file {member})' if member else ''}; decompressed ({len(out)} bytes)")
    return out, packed


def _looks_lzma_alone(raw: bytes) -> bool:
    """True when ``raw`` starts like an LZMA-alone file as the ``lzma`` utility writes it (xz-utils'
    ``lzma_alone`` header): properties byte 0x5D (lc=3, lp=0, pb=2), a dictionary size that is a power of
    two from 4 KiB to 1.5 GiB, then an unknown (all 0xFF) or plausible uncompressed size."""
    if len(raw) < 13 or raw[0] != 0x5D:
        return False
    dict_size = int.from_bytes(raw[1:5], "little")
    size = int.from_bytes(raw[5:13], "little")
    return 4096 <= dict_size <= 3 << 29 and dict_size & (dict_size - 1) == 0 and (size == (1 << 64) - 1 or size < 1 << 40)


def _zip_metadata(member: str) -> bool:
    """True for a zip member that is file-system metadata macOS adds (``__MACOSX/...``, ``.DS_Store``)."""
    return member.startswith("__MACOSX/") or member.rsplit("/", 1)[-1] == ".DS_Store"


def _zip_name(info: Any) -> str:
    """A zip member's name as its writer meant it: without the UTF-8 flag (APPNOTE bit 11) the standard
    library decodes it as cp437, which garbles the UTF-8 names most tools write (Info-ZIP, macOS)."""
    if info.flag_bits & 0x800:
        return str(info.filename)
    try:
        return str(info.filename).encode("cp437").decode("utf-8")
    except (UnicodeEncodeError, UnicodeDecodeError):
        return str(info.filename)


def _unpack_streams(raw: bytes, limit: int, packed: str) -> tuple[bytes, int]:
    """``(content, trailing)``: the streams of ``raw`` one after another (gzip members, RFC 1952 sec. 2.2, as
    ``cat a.gz b.gz`` and pigz write them; bzip2 and xz streams likewise, as pbzip2 and ``xz -T`` write them)
    decompressed to at most ``limit`` bytes, and how many bytes after the last stream are none (padding or
    garbage: ignored, as ``gzip -d`` does; xz's stream padding of zero bytes is not counted).  ``packed`` is
    ``"gzip"``, ``"bzip2"``, ``"xz"`` or ``"lzma"`` (LZMA-alone: one stream).  Raises ``zlib.error``,
    ``OSError``, ``lzma.LZMAError`` or ``EOFError`` for a damaged or cut-off stream."""
    import bz2
    import lzma
    import zlib

    def make() -> Any:
        if packed == "gzip":
            return zlib.decompressobj(wbits=31)  # 16 + 15: a gzip header and trailer
        if packed == "bzip2":
            return bz2.BZ2Decompressor()
        return lzma.LZMADecompressor(format=lzma.FORMAT_ALONE if packed == "lzma" else lzma.FORMAT_XZ)

    magic = {"gzip": b"\x1f\x8b", "bzip2": b"BZh", "xz": b"\xfd7zXZ\x00"}.get(packed)
    out = bytearray()
    data = raw
    while data and len(out) < limit:
        d = make()
        if packed == "gzip":
            out += d.decompress(data, limit - len(out))
            while not d.eof and d.unconsumed_tail and len(out) < limit:
                out += d.decompress(d.unconsumed_tail, limit - len(out))
        else:
            out += d.decompress(data, max_length=limit - len(out))
            while not d.eof and not d.needs_input and len(out) < limit:
                out += d.decompress(b"", max_length=limit - len(out))
        if len(out) >= limit:
            break
        if not d.eof:
            raise EOFError(f"the {packed} data ends before its end marker")
        data = d.unused_data
        if packed == "xz":  # stream padding: zero bytes, a multiple of four (xz file format 1.0.4, sec. 2.2)
            pad = len(data) - len(data.lstrip(b"\x00"))
            if pad % 4:  # xz -d calls such a file corrupt: what follows the data is ignored, with the warning
                return bytes(out), len(data)
            data = data[pad:]
        if data and (magic is None or not data.startswith(magic)):
            return bytes(out), len(data)
    return bytes(out), 0


def _wide_unicode(raw: bytes) -> tuple[str, bool] | None:
    """``(encoding, had_bom)`` when ``raw`` is UTF-16 / UTF-32 text: a byte-order mark, or (no mark) ASCII text
    with a NUL after (LE) or before (BE) every character in its first 200 bytes; else None (Unicode sec. 23.8)."""
    import codecs

    for bom, enc in ((codecs.BOM_UTF32_LE, "utf-32"), (codecs.BOM_UTF32_BE, "utf-32"), (codecs.BOM_UTF16_LE, "utf-16"), (codecs.BOM_UTF16_BE, "utf-16")):
        if raw.startswith(bom):
            return enc, True
    head = raw[:200]
    if len(head) >= 8 and len(head) % 2 == 0:
        if head[1::2].count(0) == len(head) // 2 and head[0::2].count(0) == 0:
            return "utf-16-le", False
        if head[0::2].count(0) == len(head) // 2 and head[1::2].count(0) == 0:
            return "utf-16-be", False
    return None


#: The words pandas' ``read_csv`` reads as a missing value (its default ``na_values``), other than an empty
#: cell and the float spellings of NaN (``NaN``, ``nan``, ``-nan``: what Prometheus exports): these are noted.
MISSING_WORDS: tuple[str, ...] = ("#N/A N/A", "#N/A", "#NA", "-1.#IND", "-1.#QNAN", "1.#IND", "1.#QNAN", "<NA>", "N/A", "NA", "NULL", "None", "n/a", "null")


def _missing_words(text: str, sep: str) -> Counter[str]:
    """How many cells of ``text`` (a CSV with delimiter ``sep``) are exactly one of :data:`MISSING_WORDS`,
    quoted or not; the header line is not counted."""
    if not any(w in text for w in ("N/A", "NA", "NULL", "None", "n/a", "null", "#IND", "#QNAN")):
        return Counter()
    alt = "|".join(re.escape(w) for w in MISSING_WORDS)
    d = re.escape(sep)
    pat = re.compile(rf'(?:^|(?<={d}))"?({alt})"?(?={d}|\r?$)', re.MULTILINE)
    body = text.split("\n", 1)[1] if "\n" in text else ""
    return Counter(m.group(1) for m in pat.finditer(body))


_DECIMAL_COMMA = re.compile(r"-?\d+,\d+(?:[eE][-+]?\d+)?")
_DECIMAL_POINT = re.compile(r"\d\.\d")
#: A cell that is a number in any spelling (no letters, ':' or spaces: a date-time is never taken for one).
_NUMERIC_CELL = re.compile(r"[-+]?[\d.,]*\d(?:[eE][-+]?\d+)?")


def _decimal_comma(lines: list[str], sep: str) -> tuple[str, str | None]:
    """``(",", None)`` when a file separated by ``;`` or tab writes its numbers with a decimal comma (``0,5``: the
    spreadsheet export of a European locale): some numeric cells of the first 50 data lines are
    ``<digits>,<digits>`` and none holds a ``.`` between digits; else ``"."``.  Only numeric cells count (a
    date-time's ``40.000Z`` or ``15.06.2025 11:06`` does not); when a numeric cell with a ``.`` is what keeps a
    decimal-comma file from being read as one (``1.234,5``: a thousands point), the second item says where."""
    if sep == ",":
        return ".", None
    comma, point = False, None
    for i, ln in enumerate(lines[1:51], 2):
        for cell in ln.split(sep):
            cell = cell.strip().strip('"')
            if not _NUMERIC_CELL.fullmatch(cell):
                continue
            dotted = _DECIMAL_POINT.search(cell) is not None
            if point is None and dotted:
                point = f"line {i}: {cell!r}"
            comma = comma or bool(_DECIMAL_COMMA.fullmatch(cell)) or (dotted and "," in cell)
    if comma and point is None:
        return ",", None
    return ".", (point if comma else None)


#: Delimiters accepted besides ',' when the header holds none of the others (sniffed from the header).
OTHER_DELIMITERS = (";", "\t", "|")


def _excel_delimiter_hint(first: str, more: bool, name: str, notes: list[str]) -> str | None:
    """The delimiter a first line ``sep=;`` names (Excel writes and reads that line; it is not the header), noted,
    or None when ``first`` is no such line or nothing follows it (``more`` false)."""
    hint = re.fullmatch(r'\s*"?sep=(.)"?\s*', first) if more else None
    if hint is None or hint.group(1) not in (",", *OTHER_DELIMITERS):
        return None
    notes.append(f"{name}: the first line {'sep=' + hint.group(1)!r} is Excel's delimiter hint, not the header; removed, "
                 f"the fields read with {hint.group(1)!r}")
    return hint.group(1)


def _sniff_delimiter(header: str, name: str, notes: list[str]) -> str:
    if "," in header:
        return ","
    found = [d for d in OTHER_DELIMITERS if d in header]
    if len(found) == 1:
        notes.append(f"{name}: the fields are separated by {found[0]!r}, not ','; read with that delimiter")
        return found[0]
    return ","


def _field_count_problems(lines: list[str], n_head: int, sep: str, name: str) -> list[str]:
    """Data lines (not the last: see :func:`llmrca.dataset.strict.last_row_problem`) whose field count differs from the header's,
    and lines with an unbalanced quote; line numbers count the header as line 1."""
    import csv

    short: list[int] = []
    long: list[int] = []
    quotes: list[int] = []
    for i, ln in enumerate(lines[1:-1], 2):
        if not ln.strip():
            continue
        if '"' in ln:
            if ln.count('"') % 2:
                quotes.append(i)
                continue
            k = len(next(csv.reader([ln], delimiter=sep), []))
        else:
            k = ln.count(sep) + 1
        if k < n_head:
            short.append(i)
        elif k > n_head:
            long.append(i)
    out = []
    if quotes:
        out.append(
            f"{name}: line {quotes[0]} has an unbalanced quote '\"' ({len(quotes)} such line(s)); an opening quote without its closing "
            "quote swallows the following fields: remove the stray quote or close it"
        )
    if short:
        out.append(
            f"{name}: line {short[0]} has fewer fields than the header's {n_head} ({len(short)} such line(s)); the row lost cells "
            "(they are not missing values): repair or delete the line, or export the file again"
        )
    if long:
        out.append(
            f"{name}: line {long[0]} has more fields than the header's {n_head} ({len(long)} such line(s)); check the delimiter and "
            "quoting (a decimal comma in a comma-separated file?), or export the file again"
        )
    return out


def _header_for_checks(names: list[str]) -> list[str]:
    """Header names minus what the reader repairs itself: a leading saved index (empty / ``Unnamed: 0``) and repeats of ``time``."""
    out = list(names)
    if out and (out[0] == "" or out[0].startswith("Unnamed: ")):
        out = out[1:]
    seen_time = False
    kept = []
    for n in out:
        if n == "time":
            if seen_time:
                continue
            seen_time = True
        kept.append(n)
    return kept


def read_metrics_file(path: Path, name: str, folder: Path, notes: list[str]) -> tuple[pd.DataFrame, list[str]]:
    """Read one metrics CSV safely and check what cannot be repaired: ``(frame as read, problems)``.

    The file is read through :mod:`llmrca.dataset.safe_io` (regular files
    only, inside ``folder``, at most :data:`~llmrca.dataset.safe_io.MAX_CSV_BYTES`),
    must be UTF-8 (a leading BOM is removed, noted), and may use ``;``, tab
    or ``|`` instead of ``,`` (sniffed from the header, noted).  Problems
    (:mod:`llmrca.dataset.strict`): rows with more or fewer fields than the
    header, unbalanced quotes, a truncated last row, duplicated or invisible
    column names, infinite times, booleans / mixed text / numbers written as
    text in a metric column.  Raises :class:`CaseValidationError` when the
    file cannot be read at all.
    """
    import csv

    from llmrca.dataset import strict
    from llmrca.dataset.safe_io import MAX_CSV_BYTES, read_bytes_bounded

    raw, _ = decompress_bounded(read_bytes_bounded(path, MAX_CSV_BYTES, name, root=folder), name, MAX_CSV_BYTES, notes)
    text = _decode_csv(raw, name, notes, strict=True)
    del raw
    lines = text.splitlines()
    while lines and not lines[-1].strip():
        lines.pop()
    if not lines or not lines[0].strip():
        return pd.DataFrame(), [f"{name} is empty (no header row); a metrics file needs a header 'time,<component>_<metric>,...' and rows"]
    n_comment = 0
    while n_comment < len(lines) and lines[n_comment].lstrip().startswith("#"):
        n_comment += 1  # an exporter's preamble ('# exported by grafana 10.2') above the header
    if 0 < n_comment < len(lines):
        last = lines[n_comment - 1].lstrip().lstrip("#").strip()
        fields = [f.strip() for f in last.split(",")]
        if "time" in fields and len(fields) == len(lines[n_comment].split(",")) > 1:
            # the header itself written as a comment (numpy.savetxt(..., header=...) prefixes it with '# ')
            notes.append(f"{name}: the header is written as a comment ({shown(lines[n_comment - 1].strip()[:60])}, as numpy.savetxt "
                         "writes it); read as the header" + (f", {n_comment - 1} comment line(s) above it skipped" if n_comment > 1 else ""))
            rest = text.split("\n", n_comment)[n_comment]
            lines = [last, *lines[n_comment:]]
            text = last + "\n" + rest
        else:
            notes.append(f"{name}: {n_comment} comment line(s) above the header skipped ({shown(lines[0].strip()[:60])})")
            lines = lines[n_comment:]
            text = text.split("\n", n_comment)[n_comment]
    hinted = _excel_delimiter_hint(lines[0], len(lines) > 1, name, notes)
    if hinted is not None:
        lines = lines[1:]
        text = text.split("\n", 1)[1]
        sep = hinted
    else:
        sep = _sniff_delimiter(lines[0], name, notes)
    names = next(csv.reader([lines[0]], delimiter=sep), [])
    # every line ending with the delimiter (an empty last column, as some spreadsheet exports write): ignored
    trailing = len(names) > 1 and names[-1] == "" and len(lines) > 1 and all(ln.rstrip("\r").endswith(sep) for ln in lines[1:] if ln.strip())
    decimal, mixed = _decimal_comma(lines, sep)
    problems = _field_count_problems(lines, len(names), sep, name)
    if len(lines) > 1:
        problems += strict.last_row_problem(lines[0], lines[-1], file=name, delimiter=sep, ends_with_newline=text.endswith(("\n", "\r")))
    buf = io.StringIO()
    csv.writer(buf, delimiter=sep, lineterminator="").writerow(_header_for_checks(names[:-1] if trailing else names))
    problems += strict.header_problems(buf.getvalue(), file=name, delimiter=sep)
    del lines
    if any("unbalanced quote" in p for p in problems):
        return pd.DataFrame(), problems  # pandas would merge lines: nothing sensible to read
    try:
        df = pd.read_csv(io.StringIO(text), sep=sep, on_bad_lines="skip", engine="c", low_memory=False, decimal=decimal)
    except pd.errors.EmptyDataError:
        return pd.DataFrame(), problems
    except (pd.errors.ParserError, ValueError, OverflowError, MemoryError) as e:
        return pd.DataFrame(), [*problems, f"{name} is not a readable CSV ({str(e)[:200]}); it must be a UTF-8 comma-separated file with a header row"]
    words = _missing_words(text, sep)
    if words:
        said = ", ".join(f"{w!r} ×{n}" for w, n in words.most_common())  # every spelling: one may be a real value
        notes.append(f"{name}: {sum(words.values())} cell(s) spelled as a missing value ({said}) were read as missing (NaN)")
    if trailing and len(df.columns) and df.iloc[:, -1].isna().all():
        df = df.iloc[:, :-1]
        notes.append(f"{name}: every line ends with {sep!r} (an empty last column); the empty column was ignored")
    if decimal == ",":
        notes.append(f"{name}: numbers use ',' as the decimal point (the fields are separated by {sep!r}); read as such")
    if "time" not in df.columns:
        alias = [c for c in df.columns if str(c).strip().lower() in TIME_ALIASES]
        if len(alias) == 1:
            df = df.rename(columns={alias[0]: "time"})
            notes.append(f"{name}: no 'time' column; {shown(str(alias[0]))} was read as 'time'")
    if (long := _long_format_problem(df, name)) is not None:  # said instead of the repeated times it causes
        return pd.DataFrame(), [*problems, long]
    problems += strict.time_problems(df, file=name)
    typed = strict.metric_type_problems(df, file=name)
    if typed and mixed:  # say once why the decimal commas were not read, before the columns it left as text
        typed.insert(0, f"{name}: numbers are written with a decimal comma, but a number also holds a '.' ({mixed}: a "
                        "thousands separator?), so the commas were not read as decimal points; write plain numbers "
                        "without thousands separators")
    problems += typed
    return df, problems


#: column names of a long ("tidy") metrics table: one row per (time, series) with the series' labels in columns
_LONG_VALUE = frozenset({"value", "val", "metric_value", "sample_value", "_value"})
_LONG_LABEL = frozenset({"metric", "metric_name", "name", "__name__", "series", "_field", "_measurement", "kpi", "kpi_name",
                         "service", "service_name", "component", "pod", "pod_name", "container", "instance", "job", "cmdb_id",
                         "host", "hostname", "node"})


def _long_format_problem(df: pd.DataFrame, name: str) -> str | None:
    """A problem when ``df`` is a long table (``time, service, metric, value``: one row per sample of a series, as a
    Prometheus / InfluxDB / Grafana long export or a database dump writes it) rather than the wide one llmrca reads."""
    cols = {str(c).strip().lower(): str(c) for c in df.columns}
    value = [cols[c] for c in cols if c in _LONG_VALUE]
    if len(value) != 1 or "time" not in df.columns or not pd.api.types.is_numeric_dtype(df[value[0]]):
        return None
    rest = [str(c) for c in df.columns if str(c) not in ("time", value[0])]
    # the series' labels: text columns (service, host, metric, unit, ...); a numeric column beside them is a wide table's
    labels = [c for c in rest if not pd.api.types.is_numeric_dtype(df[c])]
    if not labels or len(labels) != len(rest) or not df["time"].duplicated().any():
        return None
    labels = [c for c in labels if c.strip().lower() in _LONG_LABEL] or labels  # a unit column does not name the series
    idx = ", ".join(repr(c) for c in labels)
    return (f"{name} is a long table (columns {', '.join(map(repr, df.columns))}: one row per sample, the series named by "
            f"{idx}); llmrca reads wide tables, one row per time and one column per series named '<component>_<metric>'. "
            f"Pivot it first, e.g. with pandas: df.pivot_table(index='time', columns=[{idx}], values={value[0]!r}), then "
            "join each column's labels with '_' (component first)")


def _truth_from_folder(folder: Path) -> tuple[str | None, str | None]:
    """Ground truth from folder names -> (component, fault).

    ``<component>_<fault>/<rep>`` (or ``<component>_<fault>`` itself) splits at
    the first ``_`` (RCAEval's rule); a name without ``_`` such as RCD's
    ``carts-db-cpu`` splits at the last ``-`` whose suffix is a known fault
    spelling (:data:`~llmrca.model.FAULT_ALIASES`), since service names may
    contain ``-`` themselves.  A relative path is read as an absolute one (``rank .`` inside a case folder).
    """
    folder = Path(os.path.abspath(folder))
    got = _folder_truth(folder)
    return (got[1], got[2]) if got is not None else (None, None)


def _hyphen_truth(part: str) -> tuple[str, str] | None:
    """``carts-db-memory-leak`` -> ``("carts-db", "memory")``: split where the longest suffix that is a known fault
    spelling starts (``carts-db-network-loss`` -> ``("carts-db", "packet-loss")``, not ``carts-db-network``)."""
    pieces = part.split("-")
    for i in range(1, len(pieces)):
        suffix = "-".join(pieces[i:]).lower()
        if suffix in FAULT_ALIASES:
            return "-".join(pieces[:i]), normalize_fault_type(suffix)
        if (ft := _fault_label(suffix)) in KNOWN_FOLDER_FAULTS:  # a known fault with parameters: orders-db-cpu-stress-100
            return "-".join(pieces[:i]), ft
    return None


def _folder_truth(folder: Path) -> tuple[str, str, str, str] | None:
    """``(folder name, component, fault type, "_" or "-")`` from the case folder's own name or its parent's.

    A name that gives a known fault type wins, the case folder's first, whether written ``<component>_<fault>``
    (RCAEval) or ``<component>-<fault>`` (RCD): ``study_x/carts-cpu`` and ``orders-memleak/rep_1`` read as the
    names that hold the fault.  Otherwise ``<component>_<label>`` with an unknown label: the case folder's own
    unless its label is a number (a repetition), then the parent's."""
    folder = Path(os.path.abspath(folder))
    from llmrca.dataset.artifact import run_truth

    if (art := run_truth(folder)) is not None:  # the artifact's run tree: <experiment>-<fault>-stress-<target>/results/...
        return art[0], art[1], art[2], "-"
    parts = (folder.name, folder.parent.name)
    for p in parts:
        comp, label = split_column(p)
        if label and _fault_label(label) in KNOWN_FOLDER_FAULTS:
            return p, comp, _fault_label(label), "_"
        if (h := _hyphen_truth(p)) is not None and "_" not in p:
            return p, h[0], h[1], "-"
    named = [(p, *split_column(p)) for p in parts]
    named = [(p, comp, label) for p, comp, label in named if label]
    for p, comp, label in named:
        if p == folder.name and not label.strip().isdigit():
            return p, comp, _fault_label(label), "_"
    if named:
        p, comp, label = named[-1]
        return p, comp, _fault_label(label), "_"
    return None


def _fused_components_warning(columns: Iterable[Any], fname: str) -> list[str]:
    """A warning when a component's columns all read as ``<more name>_<a metric other components have>``
    (``ts_order_service_cpu`` and ``ts_payment_service_cpu`` next to ``carts_cpu``): component names that hold
    ``_`` are cut at the first ``_`` (RCAEval's rule), so those services are read as one component ``ts``."""
    by_comp: dict[str, list[str]] = {}
    for c in map(str, columns):
        if c != "time":
            comp, metric = split_column(c)
            by_comp.setdefault(comp, []).append(metric)
    out = []
    for comp, metrics in by_comp.items():
        others = {m for k, ms in by_comp.items() if k != comp for m in ms}
        if not others:  # one component only: its columns may still be several services with the same metrics
            others = _repeated_tails(metrics)
            if not others:
                continue
        heads = set()
        for m in metrics:
            head = next((m[: i.start()] for i in re.finditer("_", m) if m[i.end():] in others), None)
            if head is None:
                break
            heads.add(head)
        else:
            if heads:
                names = sorted(f"{comp}_{h}" for h in heads)
                out.append(
                    f"warning: {fname}: every column of the component {comp!r} reads as '<name>_<metric>' with a metric the other "
                    f"components (or names) have ({', '.join(repr(n) for n in names[:4])}{' …' if len(names) > 4 else ''}): "
                    f"{'these look like components' if len(names) > 1 else 'this looks like a component'} whose name holds "
                    f"'_', cut at the first '_' (RCAEval's rule) into {comp!r}; rename the components without '_' (e.g. "
                    f"{names[0].replace('_', '-')!r}) in the column names"
                )
    return out


def _repeated_tails(metrics: list[str]) -> set[str]:
    """The metric names ``m`` such that ``metrics`` are ``<head>_<m>`` for two or more heads with the same set of
    ``m`` each (``auth_svc_cpu``, ``auth_svc_mem``, ``user_svc_cpu``, ``user_svc_mem``), else an empty set."""
    found: list[set[str]] = []
    for k in (1, 2, 3):
        by_head: dict[str, set[str]] = {}
        for m in metrics:
            toks = m.split("_")
            if len(toks) <= k:
                break
            by_head.setdefault("_".join(toks[:k]), set()).add("_".join(toks[k:]))
        else:
            tails = list(by_head.values())
            if len(tails) >= 2 and all(t == tails[0] for t in tails):
                found.append(tails[0])
    # the split whose metric names hold no '_' (auth_svc + cpu, not auth + svc_cpu), else the first that repeats
    return next((t for t in found if not any("_" in m for m in t)), found[0] if found else set())


def _underscore_component(folder: Path, columns: list[str]) -> list[str]:
    """A problem when the folder name's component holds ``_`` (``ray_worker_1_cpu``: a known fault label after the
    last ``_``s, and columns named ``ray_worker_1_*``): RCAEval's rule splits names at the first ``_``, so every
    ``ray_worker_N`` would be read as one component ``ray`` and any answer naming ``ray`` would count as a hit."""
    folder = Path(os.path.abspath(folder))
    for part in (folder.parent.name, folder.name):
        pieces = part.split("_")
        for i in range(len(pieces) - 1, 1, -1):
            name, label = "_".join(pieces[:i]), "_".join(pieces[i:])
            if _fault_label(label) in FAULT_ALIASES.values() and any(c.startswith(name + "_") for c in columns):
                fixed = name.replace("_", "-")
                return [
                    f"the folder name {part!r} and the columns {name + '_*'!r} name the component {name!r}, which holds '_': "
                    f"component and metric are split at the first '_' (RCAEval's rule), so it would be read as {pieces[0]!r} "
                    f"together with every other {pieces[0] + '_*'!r}; rename the component without '_' (e.g. {fixed!r}) in the "
                    "folder and column names"
                ]
    return []


#: Words that may follow a known fault spelling and add no other kind of fault: "more of it" (``memory-pressure``,
#: ``cpu_load``) or a parameter's name (``cpu-stress-workers-4``, ``network-delay-1s-jitter``); read as parameters
#: by :func:`_fault_label`.
_PARAMETER_WORDS = frozenset({
    "stress", "hog", "leak", "load", "burn", "pressure", "spike", "high", "exhaustion", "saturation", "chaos",
    "fault", "injection", "anomaly", "attack", "jitter", "rate", "percent", "pct", "workers", "cores", "threads",
    "size", "duration", "correlation",
})  # fmt: skip


def _fault_label(label: str) -> str:
    """A folder's fault label -> fault type: a known spelling (:data:`~llmrca.model.FAULT_ALIASES`; ``_`` and ``-``
    alike), else its longest known leading part when what follows it is parameters only — words that start with a
    digit (``cpu_stress_100`` -> ``cpu``, ``network-delay-100ms`` -> ``network``) or say only "more of it"
    or name a parameter (:data:`_PARAMETER_WORDS`: ``memory-pressure`` -> ``memory``) — else the label itself, its own fault type
    (``f3``, ``pod-kill``, ``network-partition``: a fault of another kind that merely starts with a known word)."""
    key = label.strip().lower().replace("_", "-")
    if key in FAULT_ALIASES:
        return FAULT_ALIASES[key]
    cuts = [m.start() for m in re.finditer("-", key)]
    for cut in reversed(cuts):
        head, rest = key[:cut], key[cut + 1 :].split("-")
        if head in FAULT_ALIASES and all(w and (w[0].isdigit() or w in _PARAMETER_WORDS) for w in rest):
            return FAULT_ALIASES[head]
    return _own_fault_label(key)


def _own_fault_label(key: str) -> str:
    """A fault label llmrca does not know, as one fault type whatever its spelling: ``-`` for ``_`` and its trailing
    parameters dropped (``network_corrupt_5pct`` and ``network-corrupt-10pct`` -> ``network-corrupt``), so that
    one kind of fault is one column of Table 1."""
    words = key.strip().lower().replace("_", "-").split("-")
    while len(words) > 1 and words[-1][:1].isdigit():
        words.pop()
    return "-".join(words)


def _fault_label_note(got: tuple[str, str, str, str] | None, ftype: str | None) -> list[str]:
    """A note when the folder's fault label (``got``: :func:`_folder_truth`'s answer) was read by its leading part
    (``cpu_stress_100`` as ``cpu``); none for a ``<component>-<fault>`` name, whose fault is a known spelling."""
    if got is not None and got[3] == "_":
        part = got[0]
        _, label = split_column(part)
        if label:
            key = label.strip().lower()
            if key.isdigit():  # '<component>_<rep>': a repetition number where the fault label goes
                return [f"the folder name {shown(part)} ends in {shown(label)}, a number, read as the fault type {ftype!r}: "
                        "cases are named '<component>_<fault>/<rep>' (e.g. 'ray-worker-1_cpu/1'); rename the folder, or give "
                        "the fault in case.json, so that per-fault scores name the fault"]
            if key in FAULT_ALIASES or key.replace("_", "-") in FAULT_ALIASES:
                return []
            if ftype == _own_fault_label(key) and ftype not in KNOWN_FOLDER_FAULTS:  # kept, said: a misspelt known type would split Table 1
                as_type = "" if ftype == key else f" (as {ftype!r}: '-' for '_', parameters left out)"
                return [f"the folder name's fault label {shown(label)} is not a fault type llmrca knows "
                        f"({', '.join(sorted(set(FAULT_ALIASES.values())))}); it is kept as a fault type of its own{as_type} "
                        "(its own column in Table 1); give the fault in case.json if it is one of those"]
            return [] if ftype == key else [f"the folder name's fault label {shown(label)} was read as fault {ftype!r} (its leading part)"]
    return []


def read_case(folder: str | Path, *, validate: bool = True, normalise: bool = True) -> Case:
    """Read one case folder in any accepted layout (see :mod:`llmrca.dataset.layouts`).

    With ``normalise`` (default) every repair of :mod:`llmrca.dataset.normalise`
    is applied and noted in ``case.meta["normalised"]``.  Raises
    :class:`CaseValidationError` listing every problem of the case at once,
    each naming its file (``data.csv: ...``, ``case.json: field fault.end ...``).

    Every file is read through :mod:`llmrca.dataset.safe_io` (regular files
    inside the case folder only, bounded sizes: a FIFO, a device, a symlink
    out of the folder or a permission error is a problem, never a hang or a
    traceback); ``case.json`` is checked against
    :mod:`llmrca.dataset.schema` (also against the data:
    :func:`~llmrca.dataset.schema.check_against_data`); each metrics file
    gets the checks of :mod:`llmrca.dataset.strict` before it is repaired;
    an ``inject_time.txt`` next to ``case.json``'s ``inject_time`` must hold
    a time that agrees with it.  ``validate=False`` skips only the checks of
    the case as a whole (:meth:`Case.problems`); file-level problems always
    raise, so a corrupt case is never returned.
    """
    folder = Path(folder)
    if not folder.is_dir():
        from llmrca.dataset.layouts import not_a_folder

        why = (not_a_folder(folder) if folder.exists()
               else f"{folder} is a symbolic link to {os.readlink(folder)}, which does not exist; fix or remove the link"
               if folder.is_symlink() else f"{folder} does not exist")
        raise CaseValidationError([why], where=str(folder))
    return _read_case(folder, normalise=normalise, validate=validate)


def _topology_from_mpg(path: Path, components: list[str], notes: list[str], folder: Path | None = None) -> Topology | None:
    """rca-llm's ``mpg.csv`` (``,source,destination``: source calls destination) as a Topology.

    The exporter (``export_rca_data.py`` ``mpg()``) also writes a row from every container to its node's
    kubelet (``<ip>:10250``); those service -> host rows are left out, as the artifact's own
    ``causality_graph`` leaves them out.  The entry is the node nobody calls; when several are (the mesh
    graph: the gateway and the operator), the one that calls the most components, if only one does.
    """
    name = path.name  # mpg.csv, or its compressed copy
    try:
        g = _read_csv(path, name, folder, notes)
    except CaseValidationError as e:
        notes.append(f"{NOT_USED_PREFIX}{name} unreadable ({e.problems[0]}); no call graph")
        return None
    if not {"source", "destination"} <= set(g.columns):
        notes.append(f"{NOT_USED_PREFIX}{name} has no source/destination columns (have {list(g.columns)}); no call graph")
        return None
    from llmrca.names import component_name_problem

    edges = [(str(a), str(b)) for a, b in zip(g["source"], g["destination"], strict=True) if pd.notna(a) and pd.notna(b)]
    hosts = [e for e in edges if re.fullmatch(r"[\w.\-\[\]:]+:\d+", e[1])]
    if hosts:
        edges = [e for e in edges if e not in hosts]
        notes.append(f"{name}: {len(hosts)} service -> host row(s) (e.g. {shown(hosts[0][1])}) left out of the call graph")
    bad = sorted({n for e in edges for n in e if component_name_problem(n) is not None})
    if bad:
        notes.append(f"{NOT_USED_PREFIX}{name} names {len(bad)} node(s) that are no valid component names (e.g. {shown(bad[0])}); no call graph")
        return None
    nodes = list(dict.fromkeys([*components, *(n for e in edges for n in e)]))
    heads = [n for n in nodes if any(a == n for a, _ in edges) and not any(b == n for _, b in edges)]
    fan = {n: sum(a == n for a, _ in edges) for n in heads}
    top = [n for n in heads if fan[n] == max(fan.values())] if heads else []
    notes.append(f"call graph read from {name} ({len(edges)} edges)")
    return Topology(nodes=tuple(nodes), edges=tuple(edges), entry=top[0] if len(top) == 1 else None)


def _read_case(folder: Path, *, normalise: bool = True, validate: bool = True) -> Case:
    from llmrca.dataset import strict
    from llmrca.dataset.layouts import detect_layout, present
    from llmrca.dataset.normalise import normalise_logs, normalise_metrics, normalise_traces, time_range, to_seconds
    from llmrca.dataset.safe_io import MAX_INJECT_TIME_BYTES, decode_text, read_bytes_bounded
    from llmrca.dataset.schema import CaseSpec, check_against_data, missing_metric_set_file, read_case_json

    problems: list[str] = []
    notes: list[str] = []
    spec: CaseSpec | None = None
    cj = folder / "case.json"
    has_cj = os.path.lexists(cj)
    if has_cj:
        spec, probs = read_case_json(cj, root=folder)
        problems += [_relative(p, folder) for p in probs]
        if spec is not None and _starts_with_bom(cj):
            notes.append("case.json: a UTF-8 byte-order mark at the start was ignored")
    layout = detect_layout(folder, {"metric_sets": spec.metric_sets} if spec is not None and spec.metric_sets else ({"case.json": True} if has_cj else None))
    problems += layout.problems
    if layout.unlistable:
        raise CaseValidationError(problems, where=str(folder))
    notes += unread_copy_notes(folder, layout)
    identity: dict[str, list[str]] = {}
    sets: dict[str, pd.DataFrame] = {}
    dropped: dict[str, set[str]] = {}  # file -> columns the reader left out (identity columns, one-sided RCD columns)
    raw_columns: dict[str, list[str]] = {}
    rcd_inject: float | None = None

    def metrics(fname: str) -> pd.DataFrame | None:
        try:
            df, probs = read_metrics_file(folder / fname, fname, folder, notes)
        except CaseValidationError as e:
            problems.extend(_relative(p, folder) for p in e.problems)
            return None
        problems.extend(probs)
        if df.empty and not probs:
            problems.append(f"{fname} has a header but no rows; the case has no data to analyse")
        if df.empty:
            return None
        raw_columns[fname] = [str(c) for c in df.columns]
        if normalise:
            before = [str(c) for c in df.columns]
            df, n, p, ident = normalise_metrics(df, fname)
            notes.extend(n)
            problems.extend(p)
            identity.update(ident)
            dropped[fname] = set(before) - {str(c) for c in df.columns}
        return df

    for set_name, fname in layout.metric_files.items():
        if layout.rcd_files is not None and set_name == "basic":
            parts = [df for f in layout.rcd_files if (df := metrics(f)) is not None]
            if len(parts) == 2:
                normal, anomalous = parts
                # a column in one file only has no normal (or no anomalous) data: every method would score it from
                # NaN on one side of the injection (or as the whole anomaly); kept out, with a warning
                one_sided = {f: [str(c) for c in df.columns if c != "time" and c not in other.columns]
                             for f, df, other in zip(layout.rcd_files, parts, parts[::-1], strict=True)}
                if any(one_sided.values()):
                    said = " and ".join(f"{len(cs)} only in {f} ({', '.join(cs[:5])}{' …' if len(cs) > 5 else ''})"
                                        for f, cs in one_sided.items() if cs)
                    notes.append(f"warning: RCD layout: the two files' columns differ: {said}; left out, since a column "
                                 "without data on both sides of the injection cannot be compared across it")
                    normal = normal.drop(columns=one_sided[layout.rcd_files[0]])
                    anomalous = anomalous.drop(columns=one_sided[layout.rcd_files[1]])
                    for f, cs in one_sided.items():  # a root cause left without columns is then said why
                        dropped.setdefault(f, set()).update(cs)
                if "time" in anomalous.columns and pd.api.types.is_numeric_dtype(anomalous["time"]):
                    rcd_inject = float(anomalous["time"].iloc[0])
                    notes.append(
                        f"RCD layout: {layout.rcd_files[0]} ({len(normal)} rows) + {layout.rcd_files[1]} ({len(anomalous)} rows); "
                        f"injection time = first anomalous row ({rcd_inject})"
                    )
                elif "time" not in anomalous.columns or "time" not in normal.columns:
                    lacking = " and ".join(f for f, df in zip(layout.rcd_files, parts, strict=True) if "time" not in df.columns)
                    problems.append(
                        f"RCD layout: {lacking} {'has' if ' and ' not in lacking else 'have'} no 'time' column, so the injection time "
                        "(the first anomalous row) and the order of the rows are unknown; add epoch seconds as 'time' to normal.csv "
                        "and anomalous.csv, or write the injection time into inject_time.txt next to a data.csv"
                    )
                sets[set_name] = pd.concat([normal, anomalous], ignore_index=True)
            continue
        if not os.path.lexists(folder / fname):
            if set_name != "basic" and spec is not None and spec.metric_sets:
                problems.append(missing_metric_set_file(set_name, fname, folder=folder))  # check_against_data's words: said once
            continue
        df = metrics(fname)
        if df is not None:
            sets[set_name] = df
    if layout.name == "rcaeval-re2":
        notes.append(f"RCAEval RE2/RE3 layout: {' + '.join(f'{f} as the {k} set' for k, f in layout.metric_files.items())}")
    from llmrca.dataset.artifact import is_run_folder, merge_run_latency, run_inject_time, run_logs, run_traces

    art_run = is_run_folder(folder)  # the paper's artifact's rca-collector-results: read as its preparation reads it
    if art_run and normalise and "basic" in sets:
        sets["basic"] = merge_run_latency(folder, sets["basic"], notes)
    # injection time: case.json, else inject_time.txt, else (RCD) the first anomalous row;
    # an inject_time.txt next to case.json's inject_time is checked too (garbage or a disagreement is a problem)
    inject: float | None = None
    it = present(folder, "inject_time.txt") or folder / "inject_time.txt"  # or inject_time.txt.gz, ...
    txt_value: float | None = None
    if os.path.lexists(it):
        try:
            raw_it = read_bytes_bounded(it, MAX_INJECT_TIME_BYTES, it.name, root=folder)
            raw_it, _ = decompress_bounded(raw_it, it.name, MAX_INJECT_TIME_BYTES, notes)
            wide = _wide_unicode(raw_it)
            if wide is not None:  # one number in UTF-16 / UTF-32 (PowerShell's "> file"): read it as what it is
                raw_txt = raw_it.decode(wide[0], errors="replace").lstrip("\ufeff").strip()
                notes.append(f"{it.name}: read as {wide[0].upper()} text (save it as UTF-8)")
            else:
                raw_txt = decode_text(raw_it).text.strip()
        except CaseValidationError as e:
            problems.extend(_relative(p, folder) for p in e.problems)
        else:
            if len(raw_txt) > 2 and raw_txt[0] == raw_txt[-1] and raw_txt[0] in "\"'":  # jq without -r, a JSON string
                notes.append(f"{it.name}: the quotes around {shown(raw_txt)} were removed")
                raw_txt = raw_txt[1:-1].strip()
            txt_value, n, prob = to_seconds(raw_txt, it.name)
            if prob:
                problems.append(
                    f"{it.name} holds {shown(raw_txt)}, not a number of epoch seconds nor an RFC 3339 time; "
                    "write the injection time, e.g. 1750000300"
                )
            elif spec is None or spec.inject_time is None:
                notes.extend(n)
    if spec is not None and spec.inject_time is not None:
        inject, n, prob = to_seconds(spec.inject_time, "case.json inject_time")
        notes.extend(n)
        if prob:
            problems.append(prob)
        elif txt_value is not None and inject is not None and abs(txt_value - inject) > 1e-3:
            problems.append(
                f"inject_time.txt says {txt_value} s but case.json inject_time says {inject} s; "
                "they must agree: correct inject_time.txt or delete it (case.json is what llmrca uses)"
            )
    elif txt_value is not None:
        inject = txt_value
        if rcd_inject is not None and abs(txt_value - rcd_inject) > 1e-3:
            problems.append(
                f"{it.name} says {txt_value} s but the RCD pair's injection time, its first anomalous row, is {rcd_inject} s; "
                f"they must agree: delete {it.name} (the RCD layout needs none) or move the rows between "
                f"{layout.rcd_files[0] if layout.rcd_files else 'normal.csv'} and {layout.rcd_files[1] if layout.rcd_files else 'anomalous.csv'}"
            )
    elif art_run and not os.path.lexists(it) and not (has_cj and spec is None):
        inject, said = run_inject_time(folder)
        (notes if inject is not None else problems).append(said if inject is not None else f"no inject_time.txt, and {said}")
    elif (
        not os.path.lexists(it)
        and rcd_inject is None
        and layout.rcd_files is None
        and not any("the RCD layout needs both" in p for p in layout.problems)  # half a pair: said with the layout
        and not (has_cj and spec is None)
    ):
        problems.append(
            "no inject_time.txt in the case folder; write the injection time (epoch seconds or RFC 3339), "
            "or use the RCD layout normal.csv + anomalous.csv (the injection is the first anomalous row)"
        )
    if inject is None and rcd_inject is not None:
        inject = rcd_inject
    logs = traces = None
    ref = time_range(sets["basic"]) if "basic" in sets else None
    if (logs_file := present(folder, "logs.csv")) is not None:
        logs = _read_text_csv(logs_file, "logs", notes, folder)
        if logs is not None and normalise:
            logs, n = normalise_logs(logs, ref=ref)
            notes += _not_used_last(n, logs is None)
        if logs is not None and logs.empty:  # a header and no line: nothing a method can read, said as such
            notes.append(f"{NOT_USED_PREFIX}{logs_file.name} has a header but no rows; the case is used without logs")
    elif art_run and (logs := run_logs(folder, notes)) is not None and normalise:
        logs, n = normalise_logs(logs, ref=ref)
        notes += _not_used_last(n, logs is None)
    if (traces_file := present(folder, "traces.csv")) is not None:
        traces = _read_text_csv(traces_file, "traces", notes, folder)
        if traces is not None and normalise:
            traces, n = normalise_traces(traces, ref=ref)
            notes += _not_used_last(n, traces is None)
        if traces is not None and traces.empty:
            notes.append(f"{NOT_USED_PREFIX}{traces_file.name} has a header but no rows; the case is used without traces")
    elif art_run and (traces := run_traces(folder, notes)) is not None and normalise:
        traces, n = normalise_traces(traces, where="deepflow-traces-request-list.csv", ref=ref)
        notes += _not_used_last(n, traces is None)
    fault = spec.fault.to_record() if spec is not None and spec.fault is not None else None
    if fault is not None and normalise:  # fault.start / fault.end in the unit inject_time was written in (ms, µs, ns)
        fault, n, probs = fault_times_in_seconds(fault)
        notes += n
        problems += probs
    roots: list[str] | None = list(spec.root_causes) if spec is not None and spec.root_causes is not None else None
    if spec is not None and spec.fault is not None and spec.fault.type == NO_FAULT and spec.fault.type_given != NO_FAULT:
        notes.append(f"case.json: fault.type {shown(spec.fault.type_given)} was read as 'none' (a healthy case, nothing injected)")
    if fault is not None and fault.type == NO_FAULT and roots is None:
        roots = []
        notes.append("case.json has no root_causes; a healthy case (fault.type 'none') has none: [] (no root cause) was used")
    in_healthy_folder = HEALTHY_FOLDER in (folder.parent.name, folder.name)
    if fault is None and not roots and in_healthy_folder and not (has_cj and spec is None):
        fault = FaultRecord.healthy(inject, None)  # healthy/<rep>: nothing injected
        if has_cj:
            notes.append(f"case.json has no fault; fault 'none' (nothing injected) was taken from the folder name {HEALTHY_FOLDER}/")
        if roots is None:
            roots = []
            if has_cj:
                notes.append(f"case.json has no root_causes; [] (no root cause) was taken from the folder name {HEALTHY_FOLDER}/")
    if spec is not None and spec.fault is not None:
        notes += _folder_disagreement(folder, spec.fault.to_record(), in_healthy_folder)
    # a case.json that says "no ground truth" (fault null, root_causes []: collected without one) is not completed
    # from folder names: any folder a collected case is written under (my_cases/c1) would give a made-up truth
    unlabelled = has_cj and spec is not None and fault is None and roots == []
    truth_from = ""  # the folder name the root cause was read from, if it was
    if (fault is None or roots is None) and not (has_cj and spec is None) and not unlabelled:
        got = _folder_truth(folder)
        comp, ftype = (got[1], got[2]) if got is not None else (None, None)
        if fault is None and comp is not None and ftype is not None:
            fault = FaultRecord(type=ftype, target=comp, start=inject)
            notes += _fault_label_note(got, ftype)
            if has_cj:
                notes.append(f"case.json has no fault; fault {ftype!r} on {comp!r} was taken from the folder name")
        if roots is None and comp is not None:
            roots = [comp]
            truth_from = got[0] if got is not None else ""
            if has_cj:
                notes.append(f"case.json has no root_causes; the ground truth {comp!r} was taken from the folder name")
        if comp is not None:
            p = component_name_problem(comp)
            if p is not None:
                problems.append(f"the folder name gives the root cause {p}; rename the folder '<component>_<fault>/<rep>'")
            if fault is not None and fault.target == comp:
                problems += _underscore_component(folder, [str(c) for df in sets.values() for c in df.columns])
    roots = roots or []
    if not sets:
        raise CaseValidationError([*(problems or ["no metrics in the case folder"]), *_unread_hints(notes)], where=str(folder))
    basic_name = "basic" if "basic" in sets else next(iter(sets))
    basic = sets[basic_name]
    comps = components_of(basic.columns)
    notes += _fused_components_warning(basic.columns, layout.metric_files.get(basic_name, "data.csv").replace("+", " and "))
    if spec is not None:
        set_comps = {k: components_of(df.columns) for k, df in sets.items()}
        problems += [_relative(p, folder) for p in check_against_data(spec, comps, folder, file="case.json", set_components=set_comps)]
        problems += _metric_set_files_problems(spec.metric_sets or {}, raw_columns)
    left_out: dict[str, str] = {}  # component -> the file whose columns of it were left out (not the basic set's)
    if spec is None and not has_cj:
        # the case's components are the basic set's (RCAEval reads only that file); another set's columns of other
        # components (an RE2 metrics.csv that also holds the load generator) are left out of it, said, not refused
        for k, df in list(sets.items()):
            if k == basic_name:
                continue
            have = components_of(df.columns)
            extra = [c for c in have if c not in set(comps)]
            lacking = [c for c in comps if c not in set(have)]
            fname = layout.metric_files.get(k, k)
            if extra and len(extra) == len(have):
                problems.append(
                    f"metric set {k!r} ({fname}) holds none of the basic set's components ({', '.join(extra[:5])} against "
                    f"{', '.join(comps[:5])}); expected the same components in every metric set (re-export both from the same run)"
                )
                continue
            if extra:
                left_out.update(dict.fromkeys(extra, fname))
                sets[k] = df[[c for c in df.columns if c == "time" or split_column(str(c))[0] not in set(extra)]]
                notes.append(f"{fname}: the columns of {len(extra)} component(s) the basic set does not have "
                             f"({', '.join(extra[:5])}{' …' if len(extra) > 5 else ''}) were left out of the {k!r} set: "
                             f"the case's components are those of {layout.metric_files.get(basic_name, 'the basic set')}")
            if lacking:
                notes.append(f"{fname}: {len(lacking)} component(s) of the basic set have no column in the {k!r} set "
                             f"({', '.join(lacking[:5])}{' …' if len(lacking) > 5 else ''}); a method that reads that set cannot name them")
    for fname, gone in dropped.items():
        kept = [c for k, df in sets.items() if layout.metric_files.get(k) == fname for c in df.columns] or list(basic.columns)
        problems += strict.dropped_root_cause_problems(roots, kept, gone, file=fname)
    topo = spec.topology.to_topology() if spec is not None and spec.topology is not None else None
    if topo is None and (mpg_file := present(folder, "mpg.csv")) is not None:
        topo = _topology_from_mpg(mpg_file, comps, notes, folder)
    if spec is not None and spec.inject_time is not None:  # where the injection time came from, for the advice
        inject_from = "case.json's inject_time"
    elif txt_value is not None:
        inject_from = it.name
    else:
        inject_from = "the first anomalous row" if inject is not None else ""
    for set_name, df in sets.items():  # every metric set: rank --metric-set extended scores on its own rows
        notes += _short_window_notes(df, inject, layout.metric_files.get(set_name, f"metric set {set_name!r}").replace("+", " and "), inject_from)
    meta = dict(spec.meta) if spec is not None else {}
    earlier = list((spec.normalised if spec is not None else None) or meta.pop("normalised", None) or [])
    earlier = [n for n in earlier if not is_warning_note(str(n))]  # said again below when they still hold
    if identity:
        meta["identity"] = {**meta.get("identity", {}), **identity}
    if layout.name != "llmrca":
        meta.setdefault("layout", layout.name)
    if earlier or notes:
        meta["normalised"] = list(dict.fromkeys([*earlier, *notes]))  # a note an import recorded and said again now: once
    if truth_from:  # where the ground truth came from: named when it is no component of the case
        meta["truth_from_folder"] = truth_from
    case = Case(
        metrics=basic,
        inject_time=inject if inject is not None else float("nan"),
        name=(spec.name if spec is not None else None) or _case_name(folder),
        logs=logs,
        traces=traces,
        fault=fault,
        root_causes=frozenset(roots),
        topology=topo,
        meta=meta,
        metric_sets=sets,
        metric_set=basic_name,
    )
    if problems or validate:
        # one pass: the file-level problems plus everything the case itself shows, each naming its file
        more = case.problems() if inject is not None else [p for s, df in sets.items() for p in _frame_only(s, df)]
        if any("'time' is not numeric" in p for p in problems):  # already said, with the row
            more = [p for p in more if "'time' is not numeric" not in p]
        for set_name, fname in layout.metric_files.items():
            fname = fname.replace("+", " and ")  # the RCD pair: "normal.csv and anomalous.csv: ..."
            more = [f"{fname}: {p[len(f'metric set {set_name!r}: '):]}" if p.startswith(f"metric set {set_name!r}: ") else p for p in more]
        if layout.rcd_files is not None and any(p.startswith("RCD layout: ") and "no 'time' column" in p for p in problems):
            more = [p for p in more if "no 'time' column" not in p]  # said once, with the layout
        # a column the strict checks already explained (booleans, mixed text, ...) needs no second, vaguer sentence
        more = [p for p in more if not ((m := _NOT_NUMERIC.search(p)) and any(f"column {m.group(1)} " in q for q in problems))]
        if inject_from == "the first anomalous row":
            advice = "the injection time is the RCD pair's first anomalous row: export more normal rows"
        else:
            advice = f"check {inject_from}" if inject_from else "check the injection time"
        more = [p.replace(NORMAL_ROWS_ADVICE, f"{advice}, or export data from before the fault") for p in more]
        if left_out and (gone := [r for r in (roots or []) if r in left_out]):  # its columns are in the other file only
            more = [p + (f"; {', '.join(gone)} has columns in {left_out[gone[0]]} only, which were left out: the case's "
                         f"components are those of {layout.metric_files.get(basic_name, 'the basic set')} (add the root "
                         "cause's columns there)" if "are not components of the case" in p else "") for p in more]
        if problems or more:
            err = CaseValidationError([*(_tz_side(p, notes) for p in dict.fromkeys([*problems, *more])), *_unread_hints(notes)], where=str(folder))
            # what validate / import would say next once these are mended, said now (one pass); rank needs no truth
            # (not with a case.json that could not be read: it is where the truth would be, and is named already)
            err.truth_problem = ground_truth_problem(case) if not (has_cj and spec is None) else None
            raise err
    return case


def _unread_hints(notes: list[str]) -> list[str]:
    """The warnings about a compressed copy not read among ``notes``, said with the problems of a case that
    cannot be read (the copy may be the good one: ``data.csv`` damaged, ``data.csv.gz`` beside it)."""
    return [n.removeprefix("warning: ") for n in notes if n.startswith(UNREAD_COPY_PREFIX) and "is in the folder too and is read instead" in n]


#: Fewer rows than this on one side of the injection time is warned about: a robust z-score (BARO, N-Sigma)
#: then rests on one or two samples, and a causal test (PC, Granger) has nothing to test.
MIN_WINDOW_ROWS = 3


def _short_window_notes(df: pd.DataFrame, inject: float | None, fname: str, inject_from: str = "inject_time.txt") -> list[str]:
    """A warning note when the injection time leaves exactly 2 rows before it (fewer is a problem:
    :func:`llmrca.model.frame_problems`) or fewer than :data:`MIN_WINDOW_ROWS` from it on (an inject time on
    the last row, a time zone slip of a few minutes).  ``inject_from`` names where the injection time came
    from (``inject_time.txt``, ``case.json's inject_time``, ``the first anomalous row``).  An injection time
    outside the data is a problem said elsewhere; this is only about one that is inside but near an end."""
    if inject is None or "time" not in df.columns or not len(df):
        return []
    t = pd.to_numeric(df["time"], errors="coerce").dropna()
    if not len(t) or not (isinstance(inject, float | int) and t.min() < inject <= t.max()):
        return []
    before, after = int((t < inject).sum()), int((t >= inject).sum())
    at = f"{inject:.0f}" if float(inject).is_integer() else f"{inject}"
    has, its = ("have", "their") if " and " in fname else ("has", "its")
    if inject_from == "the first anomalous row":
        check = "the injection time is the first anomalous row: export more rows into the shorter file"
    else:
        check = f"check {inject_from}, or export " + "{fix}"
    out = []
    if MIN_NORMAL_ROWS <= before < MIN_WINDOW_ROWS:
        out.append(f"{SHORT_WINDOW_PREFIX}{fname} {has} only {before} of {its} {len(t)} rows before the injection time ({at}); "
                   f"methods take the normal behaviour from {before} samples: " + check.format(fix="earlier data"))
    if after < MIN_WINDOW_ROWS:
        out.append(f"{SHORT_WINDOW_PREFIX}{fname} {has} only {after} of {its} {len(t)} rows at or after the injection time ({at}); "
                   f"methods score the fault on {after} sample(s): " + check.format(fix="data after the fault"))
    return out


#: Notes that start with this are warnings that case.json and the folder name disagree (``dataset validate``
#: prints them every time, as warnings), not repairs; other "warning: " notes (a log file read with
#: replacements) are repairs of what was read.
WARNING_PREFIX = "warning: case.json says "
#: A warning that the injection time leaves a window of fewer than :data:`MIN_WINDOW_ROWS` rows (said every time).
SHORT_WINDOW_PREFIX = "warning: short window: "
#: A warning that a compressed copy of a case file sits next to the plain file, which is read instead.
UNREAD_COPY_PREFIX = "warning: not read: "
#: A warning that logs, traces or the call graph could not be read and the case is used without them.
NOT_USED_PREFIX = "warning: not used: "

#: A warning that bytes after the end of a compressed file's data were ignored (as ``gzip -d`` does).
TRAILING_PREFIX = "warning: trailing bytes: "


def is_warning_note(note: str) -> bool:
    """True for a note that warns about the case as it is (said every time it is read, never recorded in
    case.json), not a repair of what was read."""
    return note.startswith((WARNING_PREFIX, SHORT_WINDOW_PREFIX, UNREAD_COPY_PREFIX, NOT_USED_PREFIX, TRAILING_PREFIX, TIME_WARNING_PREFIX))


#: The files that can hold a case's metrics, in any layout (:mod:`llmrca.dataset.layouts`).
METRIC_FILE_NAMES: tuple[str, ...] = ("data.csv", "data_extended.csv", "simple_metrics.csv", "metrics.csv", "normal.csv", "anomalous.csv")


def warning_lines(notes: list[str] | None) -> list[str]:
    """The warnings among a case's reading ``notes`` (:func:`is_warning_note`), without their ``warning: ``
    prefix and each once, in order: what rank, evaluate and validate say about the case as it is."""
    return list(dict.fromkeys(n.removeprefix("warning: ") for n in notes or [] if is_warning_note(n)))


def unread_copy_notes(folder: Path, layout: Any = None) -> list[str]:
    """A warning per case file that is not read: a compressed copy (``data.csv.gz``) beside the plain file
    or beside another copy read instead (``data.csv.zip``; they may hold different data), a compressed
    ``case.json`` (read only plain), and, given the folder's ``layout`` (a :class:`~llmrca.dataset.layouts.Layout`),
    a metrics file that is none of its metric sets (``simple_metrics.csv`` beside ``data.csv``)."""
    from llmrca.dataset.layouts import _stand_ins, compressed_markers, plain_name

    try:
        names = {p.name for p in folder.iterdir()}
    except OSError:
        return []
    read_as = _stand_ins(names)
    out = []
    for z in compressed_markers(names):
        plain = plain_name(z)
        if plain == "case.json" and plain not in names:
            out.append(f"{UNREAD_COPY_PREFIX}{printable(z)}: case.json is read only as plain JSON; decompress it, or the case is read "
                       "from its other files without it")
        elif read_as.get(plain) not in (None, z):
            other = read_as[plain]
            kept = (f"{printable(z)} is a link: an import copies it only when it points inside the dataset" if (folder / z).is_symlink()
                    else f"an import keeps {printable(z)} as it is")
            out.append(f"{UNREAD_COPY_PREFIX}{printable(z)}: {printable(other)} is in the folder too and is read instead; "
                       f"remove the copy you do not mean ({kept})")
    if layout is not None and layout.metric_files:
        used = {f for v in layout.metric_files.values() for f in str(v).split("+")}
        how = (f"case.json's metric_sets name {', '.join(sorted(used))}" if layout.name == "llmrca"
               else f"the case is read as {layout.name} from {', '.join(printable(u) for u in sorted(used))}")
        for m in METRIC_FILE_NAMES:
            held = read_as.get(m)
            if held is not None and held not in used and not (folder / held).is_dir():
                out.append(f"{UNREAD_COPY_PREFIX}{printable(held)}: {how}, and {printable(held)} is none of its metric sets; "
                           f"remove it if it is not this case's, or name it in case.json's metric_sets (an import keeps it as it is)")
    return out


def _folder_disagreement(folder: Path, fault: FaultRecord, in_healthy_folder: bool) -> list[str]:
    """A warning note when ``case.json``'s fault and the folder name tell different ground truths (case.json wins)."""
    said = "nothing injected (fault.type 'none')" if fault.type == NO_FAULT else f"fault {fault.type!r} on {fault.target!r}"
    if in_healthy_folder:
        if fault.type == NO_FAULT:
            return []
        named = f"the folder name {HEALTHY_FOLDER}/ says nothing was injected"
    else:
        comp, ftype = _truth_from_folder(folder)
        if comp is None or ftype not in KNOWN_FOLDER_FAULTS or (ftype == fault.type and comp == fault.target):
            return []
        named = f"the folder name says fault {ftype!r} on {comp!r}"
    return [f"{WARNING_PREFIX}{said} but {named}; case.json is used: correct whichever is wrong"]


#: Fault types a folder name must give before a disagreement with case.json is reported (so ``run_1`` is no fault).
KNOWN_FOLDER_FAULTS: frozenset[str] = frozenset(FAULT_ALIASES.values())


def ground_truth_problem(case: Case) -> str | None:
    """Why ``case`` cannot be scored (no root cause and not a healthy case), or None.

    The one rule ``dataset validate``, ``dataset import`` and ``evaluate`` share: a case needs root causes
    (``case.json`` ``root_causes`` or a ``<component>_<fault>/<rep>`` folder) or must be a healthy case
    (``fault.type`` ``"none"`` or a ``healthy/<rep>`` folder).
    """
    if case.root_causes or case.healthy:
        return None
    if case.fault is None and (case.meta.get("collection") is not None):
        return ("no ground truth: the case was collected without one (case.json: fault null, root_causes []); give "
                "fault and root_causes in case.json (or collect it again with --fault-type and --target) to score it")
    return (
        "no ground truth: neither case.json (fault, root_causes) nor the folder name gives one; add case.json with "
        "fault and root_causes, or name the folder <component>_<fault>/<rep> (healthy/<rep> for a case with nothing injected)"
    )


def _offset_example(problem: str) -> str:
    """`` (e.g. 2025-06-15T17:06:40+02:00)``: the data's first time as written, with the offset the shift found,
    read from a time-zone-shift problem; '' when it does not say them."""
    import time as _t

    first = re.search(r"outside the data \(([-\d.]+) \.\.", problem)
    by = re.search(r"moved by ([+-])(\d+) h(?: (\d+) min)?", problem)
    if first is None or by is None:
        return ""
    stamp = _t.strftime("%Y-%m-%dT%H:%M:%S", _t.gmtime(float(first.group(1))))
    return f" (e.g. {stamp}{by.group(1)}{int(by.group(2)):02d}:{int(by.group(3) or 0):02d})"


def _tz_side(problem: str, notes: list[str]) -> str:
    """A time-zone-shift problem completed with which side's times had no UTC offset (from the reading notes)."""
    if "time-zone shift" not in problem:
        return problem
    naive = list(dict.fromkeys(n.split(":", 1)[0] for n in notes if "no UTC offset" in n))
    advice = "; write the injection time in UTC epoch seconds or as RFC 3339 with its offset"
    if naive and not any("inject" in side for side in naive) and advice in problem:
        # the injection time carried its offset (or is epoch seconds): the times written without one are to fix
        return problem.replace(advice, "") + (
            f"; {', '.join(naive)} wrote {'its' if len(naive) == 1 else 'their'} times without a UTC offset, read as "
            f"UTC: write them in UTC or with their offset{_offset_example(problem)}")
    if naive:
        return problem + f" (read without a UTC offset, as UTC: {', '.join(naive)})"
    dated = [n.split(":", 1)[0] for n in notes if "date-time" in n and ("converted to epoch seconds" in n)]
    if dated:
        return problem + f" (read with the UTC offset written in {', '.join(dict.fromkeys(dated))}: check it is the offset of the clock that wrote it)"
    return problem + " (both the data's times and the injection time are epoch numbers: one of them was made from local time)"


_NOT_NUMERIC = re.compile(r"column ('.*') is not numeric; convert it or drop it$")


def _metric_set_files_problems(metric_sets: dict[str, str], raw_columns: dict[str, list[str]]) -> list[str]:
    """``case.json`` ``metric_sets`` against the files: one file per set, and the basic set's columns a subset
    of the extended set's (the extended set is the basic one plus more metrics, see :mod:`llmrca.telemetry.catalogue`)."""
    out = []
    by_file: dict[str, list[str]] = {}
    for k, f in metric_sets.items():
        by_file.setdefault(f, []).append(k)
    for f, names in by_file.items():
        if len(names) > 1:
            out.append(f"case.json: field metric_sets names {f!r} for the sets {names}; expected one file per set (basic: data.csv, extended: data_extended.csv)")
    b, e = metric_sets.get("basic"), metric_sets.get("extended")
    if b and e and b != e and b in raw_columns and e in raw_columns:
        extra = [c for c in raw_columns[b] if c not in set(raw_columns[e])]
        if extra:
            ext = set(raw_columns[e])
            why = (f"are metric_sets.basic and metric_sets.extended swapped, or were columns dropped from {e}?" if ext < set(raw_columns[b])
                   else f"a column renamed or dropped in one file only? name it alike in {b} and {e}, or re-export both from the same run")
            out.append(
                f"case.json: metric set 'basic' ({b}) has {len(extra)} column(s) the 'extended' set ({e}) lacks (e.g. {shown(extra[0])}); "
                f"expected the extended set to hold every basic column plus more: {why}"
            )
    return out


def _starts_with_bom(path: Path) -> bool:
    from llmrca.dataset.safe_io import DatasetInputError, open_regular

    try:
        with open_regular(path, path.name) as fh:
            return fh.read(3) == b"\xef\xbb\xbf"
    except DatasetInputError:
        return False


def _relative(problem: str, folder: Path) -> str:
    """A problem with the case folder's path shortened to the file name (the caller names the case)."""
    import re

    prefix = re.escape(str(folder) + os.sep)
    problem = re.sub(rf"(\S+) {prefix}(\1)\b", r"\1", problem)  # "data.csv /x/case/data.csv is a FIFO" -> "data.csv is a FIFO"
    return problem.replace(str(folder) + os.sep, "")


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
    ``inject_time.txt``) or of :data:`~llmrca.dataset.layouts.PARTIAL_MARKERS` (``logs.csv``, ``traces.csv``:
    a case whose metrics are missing); whether it can be read is decided by :func:`read_case`,
    so a folder that cannot be read is reported, never silently skipped.
    """
    from llmrca.dataset.layouts import CASE_MARKERS, PARTIAL_MARKERS, compressed_markers

    root = Path(root)
    markers = {*CASE_MARKERS, *PARTIAL_MARKERS}
    if any((root / m).is_file() for m in CASE_MARKERS):
        return [root]
    unlistable: list[Path] = []  # a folder that cannot be listed is reported by read_case, never skipped silently
    found: list[Path] = []
    seen: set[str] = set()  # real paths walked: a link back to an ancestor (a loop) is not walked again
    # symbolic links to folders are followed (a dataset assembled from links to cases kept elsewhere); a folder
    # reached twice through links is walked once per path but never into a loop (see symlinked_duplicates)
    for d, dirs, files in os.walk(root, onerror=lambda e: unlistable.append(Path(e.filename)), followlinks=True):
        real = os.path.realpath(d)
        if real in seen and any(os.path.realpath(a) == real for a in Path(d).parents):
            dirs[:] = []  # a loop: the folder is one of its own ancestors
            continue
        seen.add(real)
        if markers.intersection(files) or compressed_markers(files):  # a compressed data.csv.gz counts as data.csv
            found.append(Path(d))
        else:  # a link to a folder that is gone (os.walk lists it among the files): reported by read_case, not skipped
            found.extend(Path(d) / f for f in files if os.path.islink(os.path.join(d, f)) and not os.path.exists(os.path.join(d, f)))
    return sorted({*found, *(u for u in unlistable if u != root)}, key=_natural_key)


def symlinked_duplicates(folders: list[Path]) -> dict[Path, Path]:
    """Case folders that are the same folder as an earlier one in ``folders`` (reached through a symbolic link):
    ``{later: first}``.  Both are read and scored; validate and evaluate say so (the case then counts twice)."""
    first: dict[str, Path] = {}
    out: dict[Path, Path] = {}
    for f in folders:
        real = os.path.realpath(f)
        if real in first:
            out[f] = first[real]
        else:
            first[real] = f
    return out


def _natural_key(p: Path) -> list[Any]:
    import re

    return [int(t) if t.isdigit() else t for t in re.split(r"(\d+)", str(p))]


class Dataset:
    """A folder of cases with a ``dataset.json`` manifest (optional for imports)."""

    def __init__(self, root: str | Path) -> None:
        self.root = Path(root).absolute()  # a relative folder must not be joined to the root twice
        if not self.root.exists():
            raise FileNotFoundError(f"dataset {self.root} does not exist")
        if not self.root.is_dir():
            from llmrca.dataset.layouts import not_a_folder

            raise NotADirectoryError(not_a_folder(self.root))
        mf = self.root / "dataset.json"
        self.manifest: dict[str, Any] = {}
        #: problems of ``dataset.json`` (it is then ignored: cases are found by their files)
        self.manifest_problems: list[str] = []
        if os.path.lexists(mf):
            from llmrca.dataset.schema import read_dataset_json

            spec, self.manifest_problems = read_dataset_json(mf, root=self.root)
            if spec is not None:
                self.manifest = spec.model_dump(by_alias=True, exclude_unset=True)
        self._dirs = find_case_dirs(self.root)

    def __len__(self) -> int:
        return len(self._dirs)

    def case_dirs(self) -> list[Path]:
        return list(self._dirs)

    def case_id(self, folder: Path) -> str:
        """Stable id of a case: its path relative to the dataset root; a case folder given as the root is named
        ``<its parent>/<its name>`` (``ray-worker-1_cpu/1``), as in a dataset and as ``llmrca rank`` names it,
        and so is a repetition folder (a number) right under the root, a fault folder given as the dataset."""
        rel = folder.relative_to(self.root)
        if len(rel.parts) == 1 and rel.name.isdigit():
            return f"{self.root.resolve().name}/{rel.name}"
        if str(rel) != ".":
            return str(rel)
        parent = folder.resolve().parent.name
        return f"{parent}/{folder.name}" if parent else folder.name

    def load(self, folder: Path | str) -> Case:
        folder = Path(folder)
        if not folder.is_absolute():
            folder = self.root / folder
        case = read_case(folder)
        case.name = self.case_id(folder)
        return case

    def iter_cases(self) -> Iterator[tuple[Path, Case | CaseValidationError]]:
        """Yield (folder, case) or (folder, error): a bad case never stops the loop.

        Any other exception while reading one case (a reader bug) becomes a
        :class:`CaseValidationError` that says so (``UNEXPECTED`` in its text),
        so it is reported with the case instead of ending the loop.
        """
        for d in self._dirs:
            try:
                yield d, self.load(d)
            except CaseValidationError as e:
                yield d, e
            except (Exception, RecursionError) as e:  # reported with the case, never a traceback
                yield d, CaseValidationError([f"{UNEXPECTED} ({type(e).__name__}: {str(e)[:300]}); please report it with the case"], where=str(d))

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


#: Folder (group) name of healthy cases (nothing injected): ``healthy/<rep>``.
HEALTHY_FOLDER = "healthy"


def case_folder_name(case: Case) -> str:
    """``<target>_<fault>``, or :data:`HEALTHY_FOLDER` for a healthy case."""
    if case.healthy:
        return HEALTHY_FOLDER
    target = case.fault.target if case.fault else (sorted(case.root_causes)[0] if case.root_causes else "none")
    ftype = case.fault.type if case.fault else "none"
    return f"{target}_{ftype}"


def add_case(case: Case, root: Path, counts: dict[str, int] | None = None) -> dict[str, Any]:
    """Write ``case`` as the next repetition of its ``<target>_<fault>`` folder.

    The folder name comes from data (the fault target and type); it goes
    through :func:`llmrca.dataset.safe_io.safe_child`, so a target such as
    ``../../x`` raises :class:`~llmrca.dataset.safe_io.DatasetInputError`
    instead of writing outside ``root``.
    """
    from llmrca.dataset.safe_io import safe_child

    group = case_folder_name(case)
    safe_child(root, group, "case folder name (fault target + '_' + fault type)")
    counts = counts if counts is not None else {}
    if group not in counts:
        existing = [int(p.name) for p in (root / group).glob("*") if p.name.isdigit()] if (root / group).exists() else []
        counts[group] = max(existing, default=0)
    counts[group] += 1
    folder = root / group / str(counts[group])
    case.name = f"{group}/{counts[group]}"
    write_case(case, folder)
    entry = {
        "path": f"{group}/{counts[group]}",
        "fault": case.fault_type,
        "target": case.fault.target if case.fault else None,
        "root_causes": sorted(case.root_causes),
    }
    if case.healthy:
        entry["healthy"] = True
    return entry


def write_manifest(root: Path, entries: list[dict[str, Any]], info: dict[str, Any] | None = None) -> None:
    from llmrca import __version__

    write_json(
        root / "dataset.json",
        {"schema": SCHEMA_VERSION, "llmrca": __version__, **(info or {}), "n_cases": len(entries), "cases": entries},
    )
