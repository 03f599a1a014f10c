"""Reading untrusted dataset files without hanging, exhausting memory or leaving the folder.

A case folder comes from anywhere (an import, a download, a colleague's
disk).  Its files may be FIFOs that never deliver an end of file, devices
such as ``/dev/zero`` that never end, files far larger than their kind ever
is, files the user cannot read, or symlinks that point outside the dataset.
Names read from data (a fault target, a ``metric_sets`` entry) may be
``../../x``.  Every function here turns such an input into a
:class:`DatasetInputError` whose message names the file and says what to do;
none of them prints anything.

Order of checks when opening: the path must stay inside ``root`` after
symlinks are resolved (when a root is given), ``os.stat`` must show a regular
file (``S_ISREG``) *before* the file is opened (opening a FIFO for reading
blocks until a writer appears), the file is opened with ``O_NONBLOCK`` as a
second guard, and ``os.fstat`` on the open descriptor checks again (the file
could have been swapped between the two calls).  Sizes are checked against
the limit from ``st_size`` first and then while reading (a file that grows
is cut off at the limit and refused).

See ``stat(2)``, ``open(2)`` (``O_NONBLOCK`` on FIFOs) and ``inode(7)`` for the
file-type bits.
"""

from __future__ import annotations

import errno
import os
import stat
from pathlib import Path
from typing import BinaryIO, NamedTuple

from llmrca.model import CaseValidationError
from llmrca.names import file_name_problem, shown

KiB = 1024
MiB = 1024 * KiB
GiB = 1024 * MiB

#: Largest ``inject_time.txt`` read: it holds one number.
MAX_INJECT_TIME_BYTES = 4 * KiB
#: Largest ``case.json`` read.
MAX_CASE_JSON_BYTES = 16 * MiB
#: Largest ``dataset.json`` read (a manifest lists every case; 100k cases fit).
MAX_DATASET_JSON_BYTES = 64 * MiB
#: Default largest CSV file (metrics, logs, traces); callers pass their own cap.
MAX_CSV_BYTES = 2 * GiB
#: Longest first line (CSV header) read by :func:`read_first_line` by default.
MAX_HEADER_BYTES = 64 * MiB


class DatasetInputError(CaseValidationError):
    """A dataset file cannot be read safely; the message names the file and the fix.

    A subclass of :class:`llmrca.model.CaseValidationError` (one problem), so
    every caller that already reports invalid cases reports this one too.
    ``path`` is the file concerned.
    """

    def __init__(self, message: str, *, path: str | os.PathLike[str]) -> None:
        self.path = str(path)
        super().__init__([message], where=str(Path(path).parent) if str(path) else "")


class BoundedText(NamedTuple):
    """Text read by :func:`read_text_bounded`.

    ``replaced`` is the number of U+FFFD replacement characters inserted for
    bytes that were not valid in the encoding (0 when the text was clean); ``bom`` is True when a leading UTF-8 byte-order mark
    was removed.
    """

    text: str
    replaced: int
    bom: bool


def _size(n: int) -> str:
    for unit, f in (("GiB", GiB), ("MiB", MiB), ("KiB", KiB)):
        if n >= f:
            return f"{n / f:.1f} {unit}"
    return f"{n} bytes"


_KIND = (
    (stat.S_ISFIFO, "a FIFO (named pipe)"),
    (stat.S_ISSOCK, "a socket"),
    (stat.S_ISCHR, "a character device"),
    (stat.S_ISBLK, "a block device"),
    (stat.S_ISDIR, "a folder"),
)


def file_kind(mode: int) -> str:
    """``"a regular file"``, ``"a FIFO (named pipe)"``, ``"a socket"``, ... for an ``st_mode``."""
    if stat.S_ISREG(mode):
        return "a regular file"
    for test, name in _KIND:
        if test(mode):
            return name
    return "not a regular file"


def inside(root: str | os.PathLike[str], path: str | os.PathLike[str]) -> bool:
    """True when ``path``, with every symlink resolved, lies inside ``root`` (or is it).

    Both are resolved with ``os.path.realpath``; a relative ``path`` is taken
    relative to the current directory (not to ``root``).  Never raises for
    missing files (they resolve lexically).
    """
    r = os.path.realpath(root)
    p = os.path.realpath(path)
    return p == r or p.startswith(r.rstrip(os.sep) + os.sep)


def _os_error(e: OSError, path: str | os.PathLike[str], what: str) -> DatasetInputError:
    if isinstance(e, FileNotFoundError):
        if os.path.islink(path):  # the link is there, what it points to is not
            return DatasetInputError(f"{what} {path} is a broken link (to {os.readlink(path)}, which does not exist); "
                                     "replace it with the real file", path=path)
        return DatasetInputError(f"{what} {path} does not exist; add it or check the path", path=path)
    if isinstance(e, PermissionError):
        return DatasetInputError(
            f"{what} {path} cannot be read: permission denied; make it readable (chmod a+r, or check the folders' permissions) or run as its owner",
            path=path,
        )
    if e.errno == errno.ELOOP:
        return DatasetInputError(f"{what} {path} is a symlink loop; replace it with the real file", path=path)
    if e.errno == errno.ENAMETOOLONG:
        return DatasetInputError(f"the path of {what} {shown(str(path), 80)} is too long for the file system", path=path)
    return DatasetInputError(f"{what} {path} cannot be read ({e.strerror or e}); check the file and the disk", path=path)


def check_regular(path: str | os.PathLike[str], what: str = "file", *, root: str | os.PathLike[str] | None = None) -> os.stat_result:
    """``os.stat`` of ``path`` (symlinks followed) after checking it is a regular file.

    Raises :class:`DatasetInputError` when ``path`` resolves outside ``root``
    (if given), does not exist, cannot be stat-ed (permission), or is a FIFO,
    socket, device or folder.  ``what`` names the file in the message
    (``"data.csv"``, ``"inject_time.txt"``).  Never opens the file.
    """
    if os.path.islink(path) and not os.path.exists(path):  # broken: say so, not where it points
        raise DatasetInputError(f"{what} {path} is a broken link (to {os.readlink(path)}, which does not exist); "
                                "replace it with the real file", path=path)
    if root is not None and not inside(root, path):
        raise DatasetInputError(
            f"{what} {path} points outside {root} (to {os.path.realpath(path)}); a dataset may only hold its own files: copy the file in instead of linking it",
            path=path,
        )
    try:
        st = os.stat(path)
    except OSError as e:
        raise _os_error(e, path, what) from None
    if not stat.S_ISREG(st.st_mode):
        raise DatasetInputError(
            f"{what} {path} is {file_kind(st.st_mode)}, not a regular file; llmrca only reads regular files (copy the data into a file)",
            path=path,
        )
    return st


def open_regular(path: str | os.PathLike[str], what: str = "file", *, root: str | os.PathLike[str] | None = None) -> BinaryIO:
    """Open ``path`` for binary reading, refusing anything but a regular file.

    Checks with :func:`check_regular` before opening, opens with
    ``O_RDONLY | O_NONBLOCK | O_NOCTTY | O_CLOEXEC`` and checks the open
    descriptor with ``fstat`` again.  Returns an unbuffered-by-us binary file
    object (the caller closes it, e.g. in a ``with`` block).  Raises
    :class:`DatasetInputError` for every refusal and for ``OSError`` on open.
    """
    check_regular(path, what, root=root)
    flags = os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_NOCTTY", 0) | getattr(os, "O_CLOEXEC", 0)
    try:
        fd = os.open(path, flags)
    except OSError as e:
        raise _os_error(e, path, what) from None
    try:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode):
            raise DatasetInputError(f"{what} {path} is {file_kind(st.st_mode)}, not a regular file (it changed while being opened)", path=path)
        return os.fdopen(fd, "rb")
    except BaseException:
        os.close(fd)
        raise


def _too_big(path: str | os.PathLike[str], what: str, size: int | None, max_bytes: int) -> DatasetInputError:
    got = f"is {_size(size)}" if size is not None else f"is larger than {_size(max_bytes)}"
    return DatasetInputError(
        f"{what} {path} {got}; llmrca reads at most {_size(max_bytes)} from a {what} (it is most likely not the right file; check it, or raise the limit)",
        path=path,
    )


def read_bytes_bounded(path: str | os.PathLike[str], max_bytes: int, what: str = "file", *, root: str | os.PathLike[str] | None = None) -> bytes:
    """The whole content of the regular file ``path``, at most ``max_bytes`` bytes.

    Raises :class:`DatasetInputError` when the file is not a regular file
    (FIFO, socket, device such as ``/dev/zero``, folder), is outside ``root``,
    is unreadable, or holds more than ``max_bytes`` bytes (checked on
    ``st_size`` before reading and again while reading).
    """
    st = check_regular(path, what, root=root)
    if st.st_size > max_bytes:
        raise _too_big(path, what, st.st_size, max_bytes)
    with open_regular(path, what, root=root) as f:
        try:
            data = f.read(max_bytes + 1)
        except OSError as e:
            raise _os_error(e, path, what) from None
    if len(data) > max_bytes:
        raise _too_big(path, what, None, max_bytes)
    return data


def decode_text(data: bytes, encoding: str = "utf-8") -> BoundedText:
    """Decode ``data``; invalid bytes become U+FFFD and are counted; a leading UTF-8 BOM is removed."""
    bom = data.startswith(b"\xef\xbb\xbf") and encoding.replace("-", "").replace("_", "").lower() in {"utf8", "utf8sig"}
    if bom:
        data = data[3:]
    try:
        return BoundedText(data.decode(encoding), 0, bom)
    except UnicodeDecodeError:
        pass
    text = data.decode(encoding, errors="replace")
    # count what was replaced (U+FFFD already in valid input is not counted)
    clean = data.decode(encoding, errors="ignore")
    return BoundedText(text, max(1, text.count("\ufffd") - clean.count("\ufffd")), bom)


def read_text_bounded(
    path: str | os.PathLike[str], max_bytes: int, what: str = "file", *, root: str | os.PathLike[str] | None = None, encoding: str = "utf-8"
) -> BoundedText:
    """:func:`read_bytes_bounded`, then decoded (see :func:`decode_text`).

    Returns ``BoundedText(text, replaced, bom)``: ``replaced`` > 0 means
    the file was not valid ``encoding`` and the caller should record a note
    (e.g. "logs.csv: 12 bytes that are not UTF-8 were replaced").  Raises
    what :func:`read_bytes_bounded` raises.
    """
    return decode_text(read_bytes_bounded(path, max_bytes, what, root=root), encoding)


def read_first_line(
    path: str | os.PathLike[str], max_bytes: int = MAX_HEADER_BYTES, what: str = "file", *, root: str | os.PathLike[str] | None = None
) -> str:
    """The first line of a regular file (a CSV header), without its line ending.

    Reads in 1 MiB chunks up to ``max_bytes``; raises :class:`DatasetInputError`
    when no line end appears within ``max_bytes`` in a file longer than that,
    and for what :func:`open_regular` refuses.  Decoded as UTF-8 with
    replacement; a leading BOM is removed.
    """
    buf = bytearray()
    with open_regular(path, what, root=root) as f:
        while len(buf) <= max_bytes:
            chunk = f.read(MiB)
            if not chunk:
                break
            nl = chunk.find(b"\n")
            if nl >= 0:
                buf += chunk[:nl]
                break
            buf += chunk
        else:
            raise DatasetInputError(f"the first line of {what} {path} is longer than {_size(max_bytes)}; is it a CSV file with a header row?", path=path)
    return decode_text(bytes(buf).rstrip(b"\r")).text


def read_last_lines(
    path: str | os.PathLike[str], n: int = 2, max_bytes: int = MAX_HEADER_BYTES, what: str = "file", *, root: str | os.PathLike[str] | None = None
) -> tuple[list[str], bool]:
    """The last ``n`` non-empty lines of a regular file and whether the file ends with a line end.

    Reads backwards from the end in 1 MiB chunks, at most ``max_bytes``
    (lines longer than that come back cut at the front).  Returns
    ``(lines, ends_with_newline)``; lines are decoded as UTF-8 with
    replacement, without line endings, oldest first.  Used to spot a
    truncated last CSV row without reading the whole file.
    """
    with open_regular(path, what, root=root) as f:
        end = f.seek(0, os.SEEK_END)
        pos = end
        buf = b""
        while pos > 0 and end - pos < max_bytes and buf.count(b"\n") <= n + 1:
            step = min(MiB, pos, max_bytes - (end - pos))
            pos -= step
            f.seek(pos)
            buf = f.read(step) + buf
    ends_nl = buf.endswith(b"\n")
    lines = [ln.rstrip(b"\r") for ln in buf.split(b"\n")]
    lines = [ln for ln in lines if ln.strip()]
    return [decode_text(ln).text for ln in lines[-n:]], ends_nl


def safe_child(root: str | os.PathLike[str], name: object, what: str = "name") -> Path:
    """``root / name`` for a ``name`` taken from data, guaranteed to stay strictly inside ``root``.

    ``name`` must be a plain file or folder name (see
    :func:`llmrca.names.file_name_problem`: no ``..``, no absolute
    path, no separator, no NUL or invisible characters).  If ``root / name``
    already exists as a symlink that resolves outside ``root``, it is refused
    too.  Returns the path (not resolved); raises :class:`DatasetInputError`
    naming ``what`` (e.g. ``"fault target"``) otherwise.
    """
    problem = file_name_problem(name)
    if problem is not None:
        raise DatasetInputError(f"{what} {problem}; it cannot be used as a file or folder name", path=Path(root))
    child = Path(root) / str(name)
    if not inside(root, child) or os.path.realpath(child) == os.path.realpath(root):
        raise DatasetInputError(f"{what} {shown(name)} resolves to {os.path.realpath(child)}, outside {root}; remove the symlink", path=child)
    return child
