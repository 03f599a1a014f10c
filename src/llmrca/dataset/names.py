"""Rules for names that come from data: component names, file names, column names.

A name read from a file is untrusted: it may carry characters that print as
nothing (zero-width space, a byte-order mark inside a name, bidi controls),
control characters (NUL, escape sequences), or path syntax (``../``, ``/``)
that would turn it into a path outside the output folder.  Each function here
is pure and returns a sentence fragment (or ``None``) that the caller puts
into its own message with the file and field it came from.

Unicode categories are from the Unicode Character Database
(https://www.unicode.org/reports/tr44/#General_Category_Values): ``Cc``
control, ``Cf`` format (zero-width space U+200B, BOM U+FEFF, bidi controls),
``Cs`` surrogate, ``Co`` private use, ``Cn`` unassigned, ``Zl``/``Zp`` line and
paragraph separators, ``Zs`` space separators (only the ASCII space is
accepted inside a name).
"""

from __future__ import annotations

import re
import unicodedata

#: Unicode general categories refused inside a name (see the module docstring).
REFUSED_CATEGORIES: frozenset[str] = frozenset({"Cc", "Cf", "Cs", "Co", "Cn", "Zl", "Zp", "Zs"})

#: Longest component name accepted (Kubernetes object names are at most 253 characters).
MAX_COMPONENT_CHARS = 253

#: Longest file name accepted, in UTF-8 bytes (the limit of common file systems).
MAX_FILE_NAME_BYTES = 255

_ASCII_CONTROL = re.compile(r"[\x00-\x1f\x7f]")


def invisible_characters(text: str, *, limit: int = 3) -> list[str]:
    """Characters of ``text`` that are invisible or control characters.

    Returns up to ``limit`` descriptions such as ``"U+200B ZERO WIDTH SPACE at
    position 3"`` (position counted from 0); an empty list when the text is
    clean.  The ASCII space is accepted; every other character of a category
    in :data:`REFUSED_CATEGORIES` is reported.  Linear in ``len(text)``; ASCII
    text takes one regular-expression scan.
    """
    out: list[str] = []
    if text.isascii():
        for m in _ASCII_CONTROL.finditer(text):
            out.append(_describe(m.group(), m.start()))
            if len(out) >= limit:
                break
        return out
    for i, ch in enumerate(text):
        if ch == " ":
            continue
        if unicodedata.category(ch) in REFUSED_CATEGORIES:
            out.append(_describe(ch, i))
            if len(out) >= limit:
                break
    return out


def _describe(ch: str, pos: int) -> str:
    code = ord(ch)
    name = unicodedata.name(ch, "") or {0: "NUL", 9: "TAB", 10: "LINE FEED", 13: "CARRIAGE RETURN", 27: "ESCAPE"}.get(code, "control character")
    return f"U+{code:04X} {name} at position {pos}"


def printable(name: str) -> str:
    """``name`` as it is when every character is printable, else :func:`shown` (quoted, control characters
    escaped): a file name from an archive or a folder never writes terminal escapes into a message."""
    return name if name.isprintable() else shown(name)


def shown(value: object, limit: int = 60) -> str:
    """A short, safe rendering of a value from data for a message.

    ``repr`` escapes control and invisible characters (so a zero-width space
    shows as ``\\u200b``), and anything longer than ``limit`` characters is cut
    with ``...`` and its length: a 1 MB field never becomes a 1 MB message.
    The result is plain text (no markup is interpreted by the caller's console
    as long as it prints it with markup off or escaped).
    """
    r = ascii(value) if isinstance(value, str) else repr(value)
    if len(r) > limit:
        size = len(value) if isinstance(value, str | bytes | list | dict | tuple) else None
        r = r[:limit] + "..." + (f" ({size} long)" if size is not None else "")
    return r


def component_name_problem(name: object) -> str | None:
    """Why ``name`` is not a valid component name, or ``None`` when it is.

    A component name is a non-empty string of at most
    :data:`MAX_COMPONENT_CHARS` characters, without ``_`` (RCAEval splits
    ``<component>_<metric>`` at the first ``_``), without path separators
    (``/``, ``\\``), not ``.`` or ``..``, without leading/trailing spaces and
    without invisible or control characters.  The fragment returned reads
    after "is ...", e.g. ``"'ray_worker' contains '_'; ..."``.
    """
    if not isinstance(name, str):
        return f"{shown(name)} is a {type(name).__name__}, not a string"
    if not name:
        return "empty; a component needs a name such as 'ray-worker-1'"
    if len(name) > MAX_COMPONENT_CHARS:
        return f"{shown(name)} is longer than {MAX_COMPONENT_CHARS} characters"
    bad = invisible_characters(name)
    if bad:
        return f"{shown(name)} contains invisible or control characters ({', '.join(bad)}); retype the name"
    if "_" in name:
        return (
            f"{shown(name)} contains '_'; component names must not contain '_' "
            "(a column '<component>_<metric>' splits at the first '_'): rename it, e.g. 'ray-worker-1'"
        )
    if "/" in name or "\\" in name:
        return f"{shown(name)} contains a path separator ('/' or '\\'); a component name must be a plain name such as 'ray-worker-1'"
    if name in {".", ".."}:
        return f"{shown(name)} is a path, not a component name"
    if name != name.strip():
        return f"{shown(name)} has leading or trailing spaces; remove them"
    return None


def file_name_problem(name: object) -> str | None:
    """Why ``name`` is not a plain file name inside a folder, or ``None``.

    A plain file name is a non-empty string without ``/`` or ``\\``, not
    ``.``/``..``, not absolute (``C:`` drive prefixes included), without NUL
    or other control/invisible characters, at most
    :data:`MAX_FILE_NAME_BYTES` bytes in UTF-8.  Used for ``metric_sets``
    values and for folder names built from data (``<target>_<fault>``).
    """
    if not isinstance(name, str):
        return f"{shown(name)} is a {type(name).__name__}, not a string"
    if not name:
        return "empty; give a file name such as 'data.csv'"
    if "\x00" in name:
        return f"{shown(name)} contains a NUL character"
    if name.startswith(("/", "\\")) or re.match(r"^[A-Za-z]:", name):
        return f"{shown(name)} is an absolute path; give a file name inside the case folder, such as 'data.csv'"
    if "/" in name or "\\" in name:
        return f"{shown(name)} contains a path separator; give a plain file name inside the case folder, such as 'data.csv'"
    if name in {".", ".."}:
        return f"{shown(name)} names a folder, not a file inside the case folder"
    if len(name.encode("utf-8", "surrogatepass")) > MAX_FILE_NAME_BYTES:
        return f"{shown(name)} is longer than {MAX_FILE_NAME_BYTES} bytes"
    bad = invisible_characters(name)
    if bad:
        return f"{shown(name)} contains invisible or control characters ({', '.join(bad)}); rename the file"
    return None
