"""Fingerprints that make a stored result belong to one dataset, one case content and one method config.

A record in ``results.jsonl`` is reused on resume only when all three match
the run about to be made:

* ``dataset_fp``: the dataset's resolved folder and its manifest
  (``dataset.json`` without the case list, the case count and the campaign's
  wall time).  Another folder, or a dataset regenerated with other settings,
  is another dataset (the runner recognises records of the same dataset
  copied or moved with its results folder: ``runner._adopt_moved``).
* ``case_fp``: SHA-256 over the name, size and bytes of every file directly
  in the case folder (dot-files excepted), so any edit of ``data.csv``,
  ``case.json``, ... makes the case new.  Content is hashed, not sizes and
  modification times: an edit that keeps the size within the mtime
  granularity, or a copy that keeps mtimes, must still count.
* ``config_hash``: the method name, its complete config dict, a forced metric
  set, and the version of the code that runs it (``llmrca.__version__``, and
  the method class's ``version`` attribute when it has one).

All three are short hex strings (16 hex digits = 64 bits); ``FP_VERSION``
is stored with each record so that a later change of the recipe makes old
records stale instead of wrongly trusted.
"""

from __future__ import annotations

import hashlib
import json
import os
import stat
from pathlib import Path
from typing import Any

#: recipe version of the fingerprints; records with another (or none) are stale
FP_VERSION = 1
_HEX = 16
#: manifest keys that do not identify the dataset (they change when cases are added or rerun)
_VOLATILE_MANIFEST_KEYS = frozenset({"cases", "n_cases", "wall_s"})


def _digest(obj: Any) -> str:
    blob = json.dumps(obj, sort_keys=True, default=str, separators=(",", ":"))
    return hashlib.sha256(blob.encode()).hexdigest()[:_HEX]


def case_fingerprint(case_dir: str | Path) -> str:
    """SHA-256 (first 16 hex digits) of every regular, non-dot file directly in ``case_dir``.

    Each file contributes its name, its size in bytes and the SHA-256 of its
    bytes, in name order.  Files are opened through
    :func:`llmrca.dataset.safe_io.open_regular`, so a FIFO, socket or device
    is never opened (it contributes its kind, e.g. ``a FIFO (named pipe)``)
    and the parent can never block on one; a file larger than
    :data:`llmrca.dataset.safe_io.MAX_CSV_BYTES` (which the reader refuses
    anyway) contributes its size and modification time instead of its bytes.
    A folder that cannot be listed for lack of permission gets a
    fingerprint of that fact (its runs then report the case as invalid);
    other ``OSError`` of the listing are raised.  An unreadable file
    contributes its error text instead (the run itself will then report the
    case as invalid).
    """
    from llmrca.dataset.safe_io import MAX_CSV_BYTES, DatasetInputError, file_kind, open_regular

    h = hashlib.sha256()
    try:
        entries = sorted(Path(case_dir).iterdir(), key=lambda q: q.name)
    except PermissionError as e:  # the run reports the case as invalid; the evaluation goes on
        return hashlib.sha256(f"unlistable: {e.strerror}".encode()).hexdigest()[:_HEX]
    for p in entries:
        if p.name.startswith("."):
            continue
        try:
            st = os.stat(p)
        except OSError as e:
            h.update(f"{p.name}\0-1\0unreadable: {e.strerror}\n".encode())
            continue
        if stat.S_ISDIR(st.st_mode):
            continue
        if not stat.S_ISREG(st.st_mode):
            h.update(f"{p.name}\0-1\0{file_kind(st.st_mode)}\n".encode())
            continue
        size = st.st_size
        if size > MAX_CSV_BYTES:
            d = f"too large, modified {st.st_mtime_ns}"
        else:
            try:
                with open_regular(p, p.name) as fh:
                    d = hashlib.file_digest(fh, "sha256").hexdigest()
            except DatasetInputError as e:
                d, size = f"unreadable: {e.problems[0]}", -1
            except OSError as e:
                d, size = f"unreadable: {e.strerror}", -1
        h.update(f"{p.name}\0{size}\0{d}\n".encode())
    return h.hexdigest()[:_HEX]


def dataset_identity(root: str | Path, manifest: dict[str, Any]) -> dict[str, Any]:
    """What identifies a dataset: its resolved folder and its manifest minus the volatile keys.  A campaign's
    ``complete`` counts as true: the dataset of an unfinished campaign is the same dataset once it is finished
    (its stored runs are kept and the cases added since are run); the digest of a finished one is unchanged."""
    kept = {k: v for k, v in manifest.items() if k not in _VOLATILE_MANIFEST_KEYS}
    if "complete" in kept:
        kept["complete"] = True
    return {"root": str(Path(root).resolve()), "manifest": kept}


def dataset_fingerprint(root: str | Path, manifest: dict[str, Any]) -> str:
    """16 hex digits over :func:`dataset_identity`."""
    return _digest(dataset_identity(root, manifest))


def config_fingerprint(method: str, config: dict[str, Any], metric_set: str | None, code_version: str) -> str:
    """16 hex digits over the method name, its full config, a forced metric set and the code version."""
    return _digest({"method": method, "config": config, "metric_set": metric_set, "code": code_version, "fp": FP_VERSION})


def method_code_version(method: str) -> str:
    """The version of the code that runs ``method``: ``llmrca.__version__``, plus ``/<version>`` when the method's
    class declares a ``version``; for a method that is not llmrca's own (a plug-in, or a plug-in that replaced a
    built-in name) also ``/<target>@<digest>``: the registry row's ``module:Class`` and 12 hex digits of the SHA-256
    of the file that defines the class, so that editing a plug-in's code makes its stored runs stale on resume (a
    change in another module it imports does not: set the class's ``version`` for that)."""
    import llmrca
    from llmrca.errors import MissingDependency
    from llmrca.methods.registry import is_builtin, method_class, method_source

    try:
        v = getattr(method_class(method), "version", None)
    except (MissingDependency, ImportError, TypeError):
        v = None
    out = f"{llmrca.__version__}/{v}" if v else llmrca.__version__
    if not is_builtin(method):
        src = method_source(method)
        out += f"/{src['target']}@{src.get('digest') or 'unreadable'}"
    return out
