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


#: Labels that name the component a Prometheus series belongs to, in the order they are tried: the pod (cAdvisor,
#: kube-state-metrics and the Prometheus Operator's ``pod``; kubelet < 1.16 ``pod_name``; the kubernetes_sd example
#: relabelling's ``kubernetes_pod_name``), then the service, then the container.
COMPONENT_LABELS: tuple[str, ...] = ("pod", "pod_name", "kubernetes_pod_name", "service", "service_name", "container", "container_name")

_SERIES = re.compile(r"\s*([A-Za-z_:][A-Za-z0-9_:]*)?\s*\{(.*)\}\s*", re.DOTALL)
#: ``label="value"`` (the exposition format) or ``label='value'`` (PromQL accepts both quotes; some exports use it)
_LABEL = re.compile(r"""\s*([A-Za-z_][A-Za-z0-9_]*)\s*=\s*(?:"((?:[^"\\]|\\.)*)"|'((?:[^'\\]|\\.)*)')\s*(?:,|$)""")


def parse_series(text: str) -> tuple[str, dict[str, str]] | None:
    """``metric{label="value",...}`` as Prometheus prints a series (the text exposition format,
    https://prometheus.io/docs/instrumenting/exposition_formats/) -> ``(metric, labels)``; ``None`` when
    ``text`` is not written so.  Label values are unescaped (``\\"``, ``\\\\``, ``\\n``)."""
    m = _SERIES.fullmatch(text)
    if not m:
        return None
    body, labels, pos = m.group(2), {}, 0
    while pos < len(body):
        lm = _LABEL.match(body, pos)
        if not lm or lm.end() == pos:
            if body[pos:].strip():
                return None
            break
        raw = lm.group(2) if lm.group(2) is not None else lm.group(3)
        labels[lm.group(1)] = re.sub(r"\\(.)", lambda e: "\n" if e.group(1) == "n" else e.group(1), raw)
        pos = lm.end()
    name = m.group(1) or labels.pop("__name__", None)  # the HTTP API's label set carries the name as __name__
    return (name, labels) if name and labels else None


#: The pod labels among :data:`COMPONENT_LABELS`: :data:`llmrca.telemetry.aliases.POD_LABELS` without
#: ``exported_pod`` (with ``pod`` beside it, ``pod`` names the exporter's pod, and a column is named after the pod it
#: was scraped from).  Written out here (this module imports nothing of llmrca); a test keeps the two lists alike.
_POD_LABELS: tuple[str, ...] = ("pod", "pod_name", "kubernetes_pod_name")
#: labels that name the workload a pod belongs to (a Deployment's pods are '<name>-<hash>')
_WORKLOAD_LABELS = ("service", "service_name", "container", "container_name", "app", "app_kubernetes_io_name")


def series_columns(columns: list[str]) -> tuple[dict[str, str], dict[str, str]]:
    """Name the columns written as Prometheus series ``<component>_<metric>``.

    Returns ``(renames, unresolved)``: ``renames`` maps each series column whose component label
    (:data:`COMPONENT_LABELS`, first present) gives a valid component name and a name no other column has to
    ``<component>_<metric>`` (a name already so prefixed by the component, ``orders_cpu{pod="orders-7f9c"}``, keeps
    its prefix); ``unresolved`` maps every other series column to why it was not named (a sentence fragment).  Columns not written as series are in neither.
    """
    parsed: dict[str, tuple[str, dict[str, str]]] = {}
    for c in columns:
        p = parse_series(c) if "{" in c else None
        if p is not None:
            parsed[c] = p
    renames: dict[str, str] = {}
    unresolved: dict[str, str] = {}
    # a pod of a workload whose service / container label names that workload (pod "carts-7f9c5d4b8-x2x9z",
    # container "carts"): named by the workload, when it is the workload's only pod in the columns (replicas keep
    # their pod names: one name for two pods would merge them)
    workload: dict[str, str] = {}
    for c, (_, labels) in parsed.items():
        pod = next((labels[k] for k in _POD_LABELS if labels.get(k)), None)
        base = next((labels[k] for k in _WORKLOAD_LABELS if pod and labels.get(k) and pod.startswith(labels[k] + "-")), None)
        if base is not None and component_name_problem(base) is None:
            workload[c] = base
    pods_of: dict[str, set[str]] = {}
    base_of_pod: dict[str, str] = {}
    for c, base in workload.items():
        labels = parsed[c][1]
        pod = next(labels[k] for k in _POD_LABELS if labels.get(k))
        pods_of.setdefault(base, set()).add(pod)
        base_of_pod[pod] = base
    for c, (_, labels) in parsed.items():  # the pod's other series (no workload label on them) follow its name
        pod = next((labels[k] for k in _POD_LABELS if labels.get(k)), None)
        if c not in workload and pod in base_of_pod:
            workload[c] = base_of_pod[pod]
    for c, (metric, labels) in parsed.items():
        label = next((k for k in COMPONENT_LABELS if labels.get(k)), None)
        if label is None:
            unresolved[c] = f"it has none of the labels {', '.join(COMPONENT_LABELS)} to name its component"
        elif (why := component_name_problem(labels[label])) is not None:
            unresolved[c] = f"its {label} label {why}"
        else:
            value, head = labels[label], metric.split("_", 1)[0]
            if c in workload and len(pods_of[workload[c]]) == 1:
                value = workload[c]
            # already '<component>_<metric>' with its labels kept (orders_container_cpu...{pod="orders-7f9c"}): the
            # pod is the component's (a Deployment's pods are named '<deployment>-<hash>'), so the prefix names it
            renames[c] = metric if "_" in metric and (value == head or value.startswith(head + "-")) else f"{value}_{metric}"
    plain = {c for c in columns if c not in parsed}
    by_name: dict[str, list[str]] = {}
    for c, new in renames.items():
        by_name.setdefault(new, []).append(c)
    for new, cs in by_name.items():
        if len(cs) > 1:
            keys = sorted({k for c in cs for k in parsed[c][1]})
            differ = [k for k in keys if len({parsed[c][1].get(k) for c in cs}) > 1]
            for c in cs:
                renames.pop(c)
                unresolved[c] = (f"{len(cs)} series are {new!r} (they differ in the label{'s' if len(differ) > 1 else ''} "
                                 f"{', '.join(differ)}): aggregate them into one column, or name each")
        elif new in plain:
            renames.pop(cs[0])
            unresolved[cs[0]] = f"the column {new!r} exists already"
    return renames, unresolved
