"""The declared schema of our own files: ``case.json`` and ``dataset.json``.

The fields are those documented in ``docs/dataset.md`` and written by
:func:`llmrca.dataset.io.case_json` and :func:`llmrca.dataset.io.write_manifest`.
The models are pydantic v2 models in strict mode (no silent coercion: ``"5"``
is not a number and ``1`` is not a name) with unknown fields refused where
the format is ours alone.

Entry points (pure; they never raise on bad input):

* :func:`parse_json_text` - JSON text -> value, with the nesting depth bounded
  *before* parsing (so 100k nested lists give a message, not RecursionError)
  and duplicate keys reported.
* :func:`parse_case_json` - a parsed ``case.json`` -> ``(CaseSpec | None, problems)``.
* :func:`check_against_data` - the checks that need the case's data
  (root causes are columns; ``metric_sets`` files exist and hold the same
  components).
* :func:`parse_dataset_json` - a parsed ``dataset.json`` -> ``(DatasetSpec | None, problems)``.
* :func:`read_case_json`, :func:`read_dataset_json`, :func:`read_inject_time` -
  the file on disk -> ``(value | None, problems)``: bounded, safe reading
  (:mod:`llmrca.dataset.safe_io`) plus the parsing above, in one call.

Every problem is one sentence naming the file, the field path
(``fault.end``, ``topology.nodes[2]``), what was found and what is expected.
"""

from __future__ import annotations

import json
import math
import os
import re
from collections import Counter
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Annotated, Any

import numpy as np
from pydantic import AfterValidator, BaseModel, ConfigDict, Field, PrivateAttr, ValidationError, model_validator
from pydantic_core import PydanticCustomError

from llmrca.model import FAULT_ALIASES, FAULT_TYPES, NO_FAULT, FaultRecord, Topology, components_of, normalize_fault_type
from llmrca.names import component_name_problem, file_name_problem, invisible_characters, shown

#: Versions of ``case.json`` / ``dataset.json`` this code reads.
KNOWN_SCHEMA_VERSIONS: frozenset[int] = frozenset({1})

#: Deepest nesting of arrays/objects accepted in our JSON files (ours nest 4 deep).
MAX_JSON_DEPTH = 64

#: Fault types known by name: the paper's four and RCAEval's spellings (:data:`llmrca.model.FAULT_ALIASES`).
KNOWN_FAULT_TYPES: frozenset[str] = frozenset(FAULT_TYPES) | frozenset(FAULT_ALIASES) | frozenset(FAULT_ALIASES.values())

#: Any other fault type must look like a short lowercase identifier (``f6``, ``pod-kill``, ``io:latency``).
FAULT_TYPE_PATTERN = re.compile(r"^[a-z][a-z0-9]*(?:[-.:][a-z0-9]+)*$")
MAX_FAULT_TYPE_CHARS = 40

#: Words that are placeholders or type names, not fault types (what a broken writer leaves behind).
PLACEHOLDER_FAULT_TYPES: frozenset[str] = frozenset(
    {"str", "string", "int", "float", "bool", "boolean", "none", "null", "nan", "inf", "object", "dict", "list", "type",
     "unknown", "undefined", "na", "n.a", "tbd", "todo", "fault", "true", "false", "any", "value", "default"}
)

#: At most this many problems are listed per file (then one sentence counts the rest).
MAX_PROBLEMS = 50

#: Metric set names: lowercase identifiers (``basic``, ``extended``).
METRIC_SET_PATTERN = re.compile(r"^[a-z][a-z0-9-]{0,39}$")


# -- field-level rules (run inside pydantic, so they are reported with type errors) ---------------


def _component(v: str) -> str:
    p = component_name_problem(v)
    if p is not None:
        raise PydanticCustomError("component_name", "a component name; " + p.replace("{", "{{").replace("}", "}}"))
    return v


#: Other spellings of :data:`~llmrca.model.NO_FAULT` (a healthy case) that ``fault.type`` may hold; read as
#: ``"none"`` with a note (:meth:`FaultSpecModel.type_given`).
HEALTHY_TYPE_SYNONYMS: frozenset[str] = frozenset({"healthy"})


def _fault_type(v: str) -> str:
    if v == NO_FAULT:  # exactly "none" marks a healthy case (nothing injected); "None", "NONE" stay placeholder words
        return v
    if v.strip().lower() in HEALTHY_TYPE_SYNONYMS:
        return NO_FAULT
    t = normalize_fault_type(v)
    if t in KNOWN_FAULT_TYPES:
        return t
    if not t:
        raise PydanticCustomError("fault_type", "a fault type such as 'cpu', 'memory', 'network' or 'gpu'; it is empty")
    if t in PLACEHOLDER_FAULT_TYPES:
        raise PydanticCustomError("fault_type", "a fault type such as 'cpu', 'memory', 'network' or 'gpu'; this is a placeholder word, not a fault type")
    if len(t) > MAX_FAULT_TYPE_CHARS or not FAULT_TYPE_PATTERN.match(t):
        raise PydanticCustomError(
            "fault_type",
            f"a fault type: 'cpu', 'memory', 'network', 'gpu', a known RCAEval label, or a short lowercase identifier "
            f"(letters, digits, '-', at most {MAX_FAULT_TYPE_CHARS} characters)",
        )
    return t


def _plain_text(v: str) -> str:
    bad = invisible_characters(v)
    if bad:
        raise PydanticCustomError("plain_text", "text without invisible or control characters (found " + ", ".join(bad) + ")")
    return v


def _finite(v: float | None) -> float | None:
    if v is not None and not math.isfinite(v):
        raise PydanticCustomError("finite_number", "a finite number")
    return v


def _metric_sets(v: dict[str, str]) -> dict[str, str]:
    errors = []
    for k, f in v.items():
        if not METRIC_SET_PATTERN.match(k):
            errors.append(f"set name {shown(k)} is not a lowercase identifier such as 'basic' or 'extended'")
        p = file_name_problem(f)
        if p is not None:
            errors.append(f"file of set {shown(k)}: {p}")
    if errors:
        raise PydanticCustomError("metric_sets", "metric set names mapped to plain file names inside the case folder; " + "; ".join(errors).replace("{", "{{").replace("}", "}}"))
    return v


Component = Annotated[str, AfterValidator(_component)]
FaultType = Annotated[str, AfterValidator(_fault_type)]
PlainText = Annotated[str, Field(max_length=1000), AfterValidator(_plain_text)]
EpochSeconds = Annotated[float, AfterValidator(_finite)]
Edge = Annotated[list[Component], Field(min_length=2, max_length=2)]

_STRICT = ConfigDict(strict=True, extra="forbid", allow_inf_nan=False, frozen=True)


class FaultSpecModel(BaseModel):
    """``case.json`` ``fault``: what was injected where, asked and achieved parameters, the window."""

    model_config = _STRICT
    type: FaultType
    target: Component | None  # null only for a healthy case (type "none")
    requested: dict[str, Any] = Field(default_factory=dict)
    achieved: dict[str, Any] = Field(default_factory=dict)
    start: EpochSeconds | None = None
    end: EpochSeconds | None = None
    _type_given: Any = PrivateAttr(default=None)

    @model_validator(mode="wrap")
    @classmethod
    def _keep_given_type(cls, data: Any, handler: Any) -> FaultSpecModel:
        m = handler(data)
        if isinstance(data, dict):
            m._type_given = data.get("type")
        return m

    @property
    def type_given(self) -> Any:
        """``fault.type`` as written in the file (before ``mem`` -> ``memory``, ``healthy`` -> ``none``)."""
        return self._type_given

    def to_record(self) -> FaultRecord:
        """The :class:`llmrca.model.FaultRecord` this describes (type already normalised)."""
        return FaultRecord(type=self.type, target=self.target, requested=dict(self.requested), achieved=dict(self.achieved), start=self.start, end=self.end)


class TopologySpec(BaseModel):
    """``case.json`` ``topology``: nodes, ``[caller, callee]`` edges, the entry node."""

    model_config = _STRICT
    nodes: list[Component]
    edges: list[Edge] = Field(default_factory=list)
    entry: Component | None = None

    def to_topology(self) -> Topology:
        """The :class:`llmrca.model.Topology` this describes."""
        return Topology(nodes=tuple(self.nodes), edges=tuple((e[0], e[1]) for e in self.edges), entry=self.entry)


class CaseSpec(BaseModel):
    """A valid ``case.json``. Every field may be absent (the readers fall back to
    ``inject_time.txt`` and the folder name); ``schema`` absent means version 1.

    ``fault.type`` is normalised (``mem`` -> ``memory``, see
    :func:`llmrca.model.normalize_fault_type`).  ``normalised`` lists the
    repairs the reader made when it wrote the case (one note per repair).
    """

    model_config = _STRICT
    schema_: int | None = Field(default=None, alias="schema")
    name: PlainText | None = None
    inject_time: EpochSeconds | None = None
    fault: FaultSpecModel | None = None
    root_causes: list[Component] | None = None
    topology: TopologySpec | None = None
    metric_sets: Annotated[dict[str, str], AfterValidator(_metric_sets)] | None = None
    meta: dict[str, Any] = Field(default_factory=dict)
    normalised: list[PlainText] = Field(default_factory=list)


class ManifestEntry(BaseModel):
    """One ``dataset.json`` ``cases`` entry. Writers add keys (``seed``, ``achieved``): extra keys are kept."""

    model_config = ConfigDict(strict=True, extra="allow", allow_inf_nan=False, frozen=True)
    path: str
    fault: FaultType | None = None
    target: Component | None = None
    root_causes: list[Component] = Field(default_factory=list)


class DatasetSpec(BaseModel):
    """A valid ``dataset.json``. Writers add campaign fields (``backend``, ``seed``, ``protocol``...): extra keys are kept."""

    model_config = ConfigDict(strict=True, extra="allow", allow_inf_nan=False, frozen=True)
    schema_: int | None = Field(default=None, alias="schema")
    llmrca: str | None = None
    n_cases: Annotated[int, Field(ge=0)] | None = None
    cases: list[ManifestEntry] = Field(default_factory=list)


# -- expectations per field, for messages ------------------------------------------------------

_EXPECT = {
    "schema": f"an integer format version ({', '.join(map(str, sorted(KNOWN_SCHEMA_VERSIONS)))})",
    "name": "a case id string such as 'ray-worker-1_cpu/1'",
    "inject_time": "a number of epoch seconds",
    "fault": "an object {type, target, requested, achieved, start, end} or null",
    "fault.type": "a fault type string such as 'cpu', 'memory', 'network' or 'gpu'",
    "fault.target": "a component name string such as 'ray-worker-1'",
    "fault.requested": "an object of fault parameters, e.g. {\"workers\": 16}",
    "fault.achieved": "an object of measured values",
    "fault.start": "a number of epoch seconds or null",
    "fault.end": "a number of epoch seconds or null",
    "root_causes": "a list of component names, e.g. [\"ray-worker-1\"]",
    "root_causes[]": "a component name string such as 'ray-worker-1'",
    "topology": "an object {nodes, edges, entry} or null",
    "topology.nodes": "a list of component names",
    "topology.nodes[]": "a component name string",
    "topology.edges": "a list of [caller, callee] pairs",
    "topology.edges[]": "a [caller, callee] pair of component names",
    "topology.edges[][]": "a component name string",
    "topology.entry": "a component name string (a node) or null",
    "metric_sets": "an object mapping a set name to a file name, e.g. {\"basic\": \"data.csv\"}",
    "metric_sets[]": "a file name string such as 'data.csv'",
    "meta": "an object (provenance: backend, seed, ...)",
    "normalised": "a list of notes (strings)",
    "normalised[]": "a note string",
    "llmrca": "the llmrca version string that wrote the file",
    "n_cases": "a non-negative integer (the number of entries in cases)",
    "cases": "a list of {path, fault, target, root_causes} objects",
    "cases[]": "an object {path, fault, target, root_causes}",
    "cases[].path": "a case folder path relative to the dataset, e.g. 'ray-worker-1_cpu/1'",
    "cases[].fault": "a fault type string or null",
    "cases[].target": "a component name string or null",
    "cases[].root_causes": "a list of component names",
    "cases[].root_causes[]": "a component name string",
}

_TYPE_WORD = {
    "string_type": "a string",
    "int_type": "an integer",
    "float_type": "a number",
    "bool_type": "true or false",
    "list_type": "a list",
    "dict_type": "an object",
    "model_type": "an object",
    "model_attributes_type": "an object",
}

_JSON_TYPE = {str: "a string", bool: "a boolean", int: "an integer", float: "a number", list: "a list", dict: "an object", type(None): "null"}


def _found(value: object) -> str:
    if value is None:
        return "null"
    kind = _JSON_TYPE.get(type(value), type(value).__name__)
    if isinstance(value, list | dict):
        return f"{kind} of {len(value)} item{'s' if len(value) != 1 else ''}"
    return f"{kind} {shown(value)}"


def _path(loc: Sequence[int | str]) -> tuple[str, str]:
    """pydantic loc -> ('topology.nodes[2]', 'topology.nodes[]'): the path and its pattern with list indices blanked."""
    out, pattern = "", ""
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
            pattern += "[]"
        else:
            key = "schema" if part == "schema_" else str(part)
            out += ("." if out else "") + key
            pattern += ("." if pattern else "") + key
    return out, pattern


def _capped(probs: list[str], file: str) -> list[str]:
    if len(probs) <= MAX_PROBLEMS:
        return probs
    return [*probs[:MAX_PROBLEMS], f"{file}: ... and {len(probs) - MAX_PROBLEMS} more problems of the same kinds"]


def _sentences(err: ValidationError, file: str, data: object) -> list[str]:
    out: list[str] = []
    for e in err.errors(include_url=False):
        if len(out) > MAX_PROBLEMS:
            out.append("")  # counted, not formatted
            continue
        loc = list(e["loc"])
        # metric_sets values: pydantic puts the key in the loc; show it as metric_sets.<key>
        path, pattern = _path(loc)
        if pattern.startswith("metric_sets.") and pattern.count(".") == 1:
            pattern = "metric_sets[]"
        typ = e["type"]
        expected = _EXPECT.get(pattern, "")
        if typ == "missing":
            out.append(f"{file}: field {path} is missing; expected {expected or 'it to be present'}")
        elif typ == "extra_forbidden":
            where = path.rsplit(".", 1)[0] if "." in path else "the top level"
            out.append(
                f"{file}: field {path} is not a field of {where} ({_found(e['input'])}); remove it"
                + (" or move it under meta" if "." not in path else "")
                + " (see docs/dataset.md)"
            )
        elif typ in {"component_name", "fault_type", "plain_text", "metric_sets"}:
            out.append(f"{file}: field {path} is {_found(e['input'])}; expected {e['msg']}")
        elif typ == "finite_number":
            out.append(f"{file}: field {path} is {_found(e['input'])}; expected a finite number ({expected or 'no NaN or infinity'})")
        elif typ in _TYPE_WORD:
            exp = expected or _TYPE_WORD[typ]
            out.append(f"{file}: field {path} is {_found(e['input'])}; expected {exp}")
        else:
            out.append(f"{file}: field {path} is {_found(e['input'])}; expected {expected + ' - ' if expected else ''}{e['msg'].lower()}")
    return _capped(out, file)


# -- JSON text ------------------------------------------------------------------------------------

_STRING = re.compile(rb'"(?:[^"\\]|\\.)*"', re.DOTALL)


def json_depth(text: str | bytes) -> int:
    """Deepest nesting of ``[``/``{`` in JSON text, ignoring brackets inside strings.

    Linear in the text length (one regex pass to blank strings, one numpy
    cumulative sum); does not parse, so it is safe on any input.
    """
    raw = text.encode("utf-8", "surrogatepass") if isinstance(text, str) else text
    raw = _STRING.sub(b'""', raw)
    b = np.frombuffer(raw, dtype=np.uint8)
    if b.size == 0:
        return 0
    step = ((b == ord("[")) | (b == ord("{"))).astype(np.int32) - ((b == ord("]")) | (b == ord("}"))).astype(np.int32)
    return int(np.cumsum(step).max(initial=0))


def parse_json_text(text: str | bytes, *, file: str, max_depth: int = MAX_JSON_DEPTH) -> tuple[Any, list[str]]:
    """Parse JSON text safely: ``(value, [])`` or ``(None, problems)``.

    ``text`` may be ``bytes`` (UTF-8/16/32 detected as :func:`json.loads`
    does) or ``str``; a leading byte-order mark is accepted.  Refuses
    nesting deeper than ``max_depth`` before parsing (no
    RecursionError), NaN/Infinity literals (not JSON), integers too long to
    convert, and duplicate keys in an object (the last would silently win).
    Never raises.  ``file`` names the file in the messages.
    """
    if isinstance(text, str):
        text = text.removeprefix("\ufeff")  # a BOM left by an editor; bytes input is detected by json itself
    depth = json_depth(text)
    if depth > max_depth:
        return None, [f"{file}: JSON nested {depth} levels deep; expected at most {max_depth} (our files nest 4 deep): the file is not a case/dataset description"]
    dups: list[str] = []

    def pairs(items: list[tuple[str, Any]]) -> dict[str, Any]:
        d: dict[str, Any] = {}
        for k, v in items:
            if k in d:
                dups.append(k)
            d[k] = v
        return d

    def constant(name: str) -> Any:
        raise ValueError(f"{name} is not a JSON number")

    try:
        value = json.loads(text, object_pairs_hook=pairs, parse_constant=constant)
    except json.JSONDecodeError as e:
        return None, [f"{file}: not valid JSON ({e.msg} at line {e.lineno} column {e.colno}); fix the syntax or regenerate the file"]
    except UnicodeDecodeError as e:
        return None, [f"{file}: not UTF-8 text (byte {e.start}); save it as UTF-8"]
    except (ValueError, RecursionError) as e:
        return None, [f"{file}: not valid JSON ({shown(str(e), 120)}); fix the value or regenerate the file"]
    if dups:
        return None, [f"{file}: key {shown(k)} appears more than once in an object; keep one" for k in dict.fromkeys(dups)]
    return value, []


# -- case.json ------------------------------------------------------------------------------------


def parse_case_json(data: object, *, file: str = "case.json") -> tuple[CaseSpec | None, list[str]]:
    """Validate a parsed ``case.json`` (``json.loads`` output, or :func:`parse_json_text`'s).

    Returns ``(spec, [])`` when valid, else ``(None, problems)`` with every
    problem found (types, names, values, cross-field rules), each a sentence
    naming ``file``, the field path, what was found and what is expected.
    Never raises on any input.

    Cross-field rules: a known ``schema`` version; ``fault.start`` <
    ``fault.end``; ``fault.target`` in ``root_causes``; ``fault.type`` is not a
    component name; topology edges and entry name nodes; topology nodes are
    unique; root causes and the target are topology nodes (when the topology
    lists nodes).  Checks that need the data are in :func:`check_against_data`.
    """
    if not isinstance(data, dict):
        return None, [f"{file}: the file holds {_found(data)}; expected a JSON object with fields schema, name, inject_time, fault, root_causes, topology, metric_sets, meta"]
    try:
        spec = CaseSpec.model_validate(data)
    except ValidationError as e:
        return None, _sentences(e, file, data)
    except RecursionError:
        return None, [f"{file}: nested too deeply; expected at most {MAX_JSON_DEPTH} levels"]
    probs = _capped(_case_rules(spec, file), file)
    return (None, probs) if probs else (spec, [])


def _case_rules(spec: CaseSpec, file: str) -> list[str]:
    out: list[str] = []
    if spec.schema_ is not None and spec.schema_ not in KNOWN_SCHEMA_VERSIONS:
        out.append(f"{file}: field schema is {spec.schema_}; expected a known format version ({', '.join(map(str, sorted(KNOWN_SCHEMA_VERSIONS)))}): upgrade llmrca or rewrite the file")
    f = spec.fault
    names = set(spec.root_causes or ())
    if spec.topology is not None:
        names |= set(spec.topology.nodes)
    if f is not None and f.type == NO_FAULT:
        if f.target is not None:
            out.append(f"{file}: field fault.target is {shown(f.target)} but fault.type is 'none' (a healthy case, nothing injected); expected null")
        if spec.root_causes:
            out.append(f"{file}: field root_causes is {spec.root_causes} but fault.type is 'none' (a healthy case); expected [] (no root cause)")
        if f.achieved.get("injected") is True:
            out.append(
                f"{file}: field fault.achieved.injected is true but fault.type is 'none' (a healthy case, nothing injected); "
                "expected false: set fault.type to what was injected (with its target and root_causes), or injected to false"
            )
    elif f is not None and f.target is None:
        out.append(f"{file}: field fault.target is null; expected a component name such as 'ray-worker-1' (null only for a healthy case, fault.type 'none')")
    if f is not None:
        if f.target is not None:
            names.add(f.target)
        if f.start is not None and f.end is not None:
            from llmrca.dataset.normalise import epoch_unit

            # each is read by its own magnitude (ms, µs, ns -> s), as the reader converts them: compared as seconds
            (_, ds), (_, de) = epoch_unit(float(f.start)), epoch_unit(float(f.end))
            if not float(f.start) / ds < float(f.end) / de:
                out.append(f"{file}: field fault.end is {f.end}, not after fault.start {f.start}; expected start < end (epoch seconds)")
        if f.target is not None and spec.root_causes is not None and f.target not in spec.root_causes:
            out.append(f"{file}: field fault.target is {shown(f.target)}, which is not in root_causes {spec.root_causes}; expected the injected component among the root causes")
        if f.type in names:
            out.append(f"{file}: field fault.type is {shown(f.type)}, a component name; expected a fault type such as 'cpu' (are type and target swapped?)")
    t = spec.topology
    if t is not None:
        nodes = set(t.nodes)
        dup = sorted(n for n, k in Counter(t.nodes).items() if k > 1) if len(nodes) != len(t.nodes) else []
        if dup:
            out.append(f"{file}: field topology.nodes lists {dup} more than once; expected each node once")
        for i, (a, b) in enumerate(t.edges):
            for end, n in (("caller", a), ("callee", b)):
                if n not in nodes:
                    out.append(f"{file}: field topology.edges[{i}] {end} is {shown(n)}, not a node; expected a name in topology.nodes")
        if t.entry is not None and t.entry not in nodes:
            out.append(f"{file}: field topology.entry is {shown(t.entry)}, not a node; expected a name in topology.nodes")
        if nodes:
            for i, r in enumerate(spec.root_causes or ()):
                if r not in nodes:
                    out.append(f"{file}: field root_causes[{i}] is {shown(r)}, not a node of topology.nodes; expected one of the case's components")
            if f is not None and f.target is not None and f.target not in nodes and (spec.root_causes is None or f.target in spec.root_causes):
                out.append(f"{file}: field fault.target is {shown(f.target)}, not a node of topology.nodes; expected one of the case's components")
    return out


def missing_metric_set_file(set_name: str, fname: str, file: str = "case.json", folder: Path | None = None) -> str:
    """The one sentence for a ``metric_sets`` entry whose file is not in the case folder (``folder``, when
    given, is looked at for a compressed copy of it, ``data.csv.gz``, which the sentence then names).

    The layout detection (the basic set), the reader (the other sets) and :func:`check_against_data` all say it
    in these words, so a case reader that meets it twice lists it once (the caller names the case folder)."""
    from llmrca.dataset.layouts import present

    held = present(Path(folder), fname) if folder is not None else None
    copy = held.name if held is not None and held.name != fname else None
    if copy is not None:
        fix = f"{shown(copy)} is there: decompress it, or name it in metric_sets.{set_name}"
    elif set_name == "basic":
        fix = "add the file or correct the name (a case needs its basic metrics)"
    else:
        fix = "add the file or remove the entry"
    return f"{file}: field metric_sets.{set_name} names {shown(fname)}, which does not exist in the case folder; {fix}"


def _underscored_hint(name: str, components: list[str]) -> str:
    """A hint when the data seems to spell component ``name`` with ``_`` (``ray_worker_1_cpu`` for ``ray-worker-1``),
    which the first-``_`` rule reads as a shorter component (``ray``); else ``""``."""
    spelt = name.replace("-", "_").replace(".", "_")
    if spelt == name:
        return ""
    for c in components:
        if spelt.startswith(c + "_"):
            return (f" (the columns seem to spell it {spelt + '_*'!r}, with '_': component and metric are split at the first "
                    f"'_', RCAEval's rule, so they are read as the component {c!r}; name them {name + '_<metric>'!r})")
    return ""


def check_against_data(
    spec: CaseSpec,
    components: Iterable[str],
    folder: str | os.PathLike[str] | None = None,
    *,
    file: str = "case.json",
    set_components: dict[str, Iterable[str]] | None = None,
) -> list[str]:
    """Checks of a valid ``case.json`` against the case's data.

    ``components`` are the components of the basic metric set (from its
    columns, :func:`llmrca.model.components_of`).  Problems returned: a root
    cause or the fault target that is no component of the data; a
    ``fault.type`` equal to a component name; a ``metric_sets`` file missing
    from ``folder``, not a regular file, outside the folder, or holding other
    components than the basic set.  The components of each set are taken from
    ``set_components[name]`` when given (the reader already read the file),
    else from the file's header (read bounded, never the whole file).
    Returns sentences; never raises.
    """
    from llmrca.dataset.safe_io import DatasetInputError, read_first_line

    comps = list(dict.fromkeys(components))
    cset = set(comps)
    out: list[str] = []
    listed = ", ".join(comps[:10]) + (f" and {len(comps) - 10} more" if len(comps) > 10 else "")
    basic_file = (spec.metric_sets or {}).get("basic", "data.csv")
    for r in spec.root_causes or ():
        if r not in cset:
            out.append(f"{file}: root cause {shown(r)} is not a component of {basic_file} (components: {listed}); expected a component that has metric columns '<component>_<metric>'"
                       + _underscored_hint(r, comps))
    f = spec.fault
    if f is not None and f.target is not None:
        if f.target not in cset and (spec.root_causes is None or f.target not in spec.root_causes):
            out.append(f"{file}: field fault.target {shown(f.target)} is not a component of {basic_file} (components: {listed}); expected one of them")
        if f.type in cset:
            out.append(f"{file}: field fault.type is {shown(f.type)}, a component of {basic_file}; expected a fault type such as 'cpu' (are type and target swapped?)")
    if folder is None or not spec.metric_sets:
        return out
    for set_name, fname in spec.metric_sets.items():
        path = Path(folder) / fname
        if set_components is not None and set_name in set_components:
            other = list(dict.fromkeys(set_components[set_name]))
        else:
            if not os.path.lexists(path):
                out.append(missing_metric_set_file(set_name, fname, file, folder))
                continue
            try:
                header = read_first_line(path, what=f"metric set {set_name!r} file", root=folder)
            except DatasetInputError as e:
                out.append(f"{file}: field metric_sets.{set_name}: {e.problems[0]}")
                continue
            import csv

            other = components_of(next(csv.reader([header]), []))
        if set_name != "basic" and set(other) != cset:
            extra, missing = sorted(set(other) - cset), sorted(cset - set(other))
            out.append(
                f"{file}: metric set {set_name!r} ({fname}) holds other components than {basic_file}"
                + (f": extra [{', '.join(shown(x) for x in extra[:5])}]" if extra else "")
                + (f"{',' if extra else ':'} missing [{', '.join(shown(x) for x in missing[:5])}]" if missing else "")
                + "; expected the same components in every metric set (re-export both from the same run)"
            )
    return out


# -- dataset.json -----------------------------------------------------------------------------------


def manifest_path_problem(path: str) -> str | None:
    """Why a ``dataset.json`` case ``path`` is not a relative folder inside the dataset, or ``None``."""
    if not path:
        return "empty"
    if path.startswith(("/", "\\")) or re.match(r"^[A-Za-z]:", path):
        return f"{shown(path)} is an absolute path"
    for part in path.split("/"):
        p = file_name_problem(part)
        if p is not None:
            return f"{shown(path)} has a bad part: {p}"
    return None


def parse_dataset_json(data: object, *, file: str = "dataset.json") -> tuple[DatasetSpec | None, list[str]]:
    """Validate a parsed ``dataset.json``: ``(spec, [])`` or ``(None, problems)``; never raises.

    Rules beyond the types: a known ``schema`` version; ``n_cases`` equal to
    the number of entries; each ``cases[i].path`` a relative path of plain
    names (no ``..``, not absolute), listed once; ``target`` in
    ``root_causes``.  Extra top-level and entry fields written by campaigns
    are kept.
    """
    if not isinstance(data, dict):
        return None, [f"{file}: the file holds {_found(data)}; expected a JSON object with fields schema, llmrca, n_cases, cases"]
    try:
        spec = DatasetSpec.model_validate(data)
    except ValidationError as e:
        return None, _sentences(e, file, data)
    except RecursionError:
        return None, [f"{file}: nested too deeply; expected at most {MAX_JSON_DEPTH} levels"]
    out: list[str] = []
    if spec.schema_ is not None and spec.schema_ not in KNOWN_SCHEMA_VERSIONS:
        out.append(f"{file}: field schema is {spec.schema_}; expected a known format version ({', '.join(map(str, sorted(KNOWN_SCHEMA_VERSIONS)))})")
    if spec.n_cases is not None and spec.n_cases != len(spec.cases):
        out.append(f"{file}: field n_cases is {spec.n_cases} but cases lists {len(spec.cases)} entries; expected them to agree (rewrite the manifest)")
    seen: set[str] = set()
    for i, c in enumerate(spec.cases):
        p = manifest_path_problem(c.path)
        if p is not None:
            out.append(f"{file}: field cases[{i}].path {p}; expected a folder relative to the dataset such as 'ray-worker-1_cpu/1'")
        elif c.path in seen:
            out.append(f"{file}: field cases[{i}].path {shown(c.path)} is listed more than once; expected each case once")
        seen.add(c.path)
        if c.target is not None and c.root_causes and c.target not in c.root_causes:
            out.append(f"{file}: field cases[{i}].target {shown(c.target)} is not in its root_causes {c.root_causes}; expected the injected component among them")
    out = _capped(out, file)
    return (None, out) if out else (spec, [])


# -- files on disk: safe reading + parsing in one call -------------------------------------------------


def _read(path: str | os.PathLike[str], max_bytes: int, what: str, root: str | os.PathLike[str] | None) -> tuple[bytes | None, list[str]]:
    from llmrca.dataset.safe_io import DatasetInputError, read_bytes_bounded

    try:
        return read_bytes_bounded(path, max_bytes, what, root=root), []
    except DatasetInputError as e:
        return None, list(e.problems)


def read_case_json(path: str | os.PathLike[str], *, root: str | os.PathLike[str] | None = None) -> tuple[CaseSpec | None, list[str]]:
    """Read, parse and validate a ``case.json`` file: ``(spec, [])`` or ``(None, problems)``.

    At most :data:`llmrca.dataset.safe_io.MAX_CASE_JSON_BYTES`; FIFOs,
    devices, unreadable files and (with ``root``) symlinks leaving ``root``
    are problems, not exceptions.  Messages name ``path``.  Never raises.
    """
    from llmrca.dataset.safe_io import MAX_CASE_JSON_BYTES

    raw, probs = _read(path, MAX_CASE_JSON_BYTES, "case.json", root)
    if raw is None:
        return None, probs
    data, probs = parse_json_text(raw, file=str(path))
    if probs:
        return None, probs
    return parse_case_json(data, file=str(path))


def read_dataset_json(path: str | os.PathLike[str], *, root: str | os.PathLike[str] | None = None) -> tuple[DatasetSpec | None, list[str]]:
    """Read, parse and validate a ``dataset.json`` file: ``(spec, [])`` or ``(None, problems)``; never raises."""
    from llmrca.dataset.safe_io import MAX_DATASET_JSON_BYTES

    raw, probs = _read(path, MAX_DATASET_JSON_BYTES, "dataset.json", root)
    if raw is None:
        return None, probs
    data, probs = parse_json_text(raw, file=str(path))
    if probs:
        return None, probs
    return parse_dataset_json(data, file=str(path))


def parse_inject_time(text: str, *, file: str = "inject_time.txt") -> tuple[float | None, list[str]]:
    """The number in an ``inject_time.txt``: ``(epoch_seconds, [])`` or ``(None, problems)``.

    One finite number, surrounding white space (and CRLF) allowed.  The
    unit is not converted here (milliseconds are detected by the reader from
    the magnitude).  A long content is cut in the message.  Never raises.
    """
    raw = text.strip()
    try:
        v = float(raw)
    except ValueError:
        return None, [f"{file} holds {shown(raw)}, not a number; expected the injection time in epoch seconds, e.g. 1700000000"]
    if not math.isfinite(v):
        return None, [f"{file} holds {shown(raw)}; expected a finite number of epoch seconds"]
    return v, []


def read_inject_time(path: str | os.PathLike[str], *, root: str | os.PathLike[str] | None = None) -> tuple[float | None, list[str]]:
    """Read ``inject_time.txt`` (at most 4 KiB, regular files only): ``(epoch_seconds, [])`` or ``(None, problems)``; never raises."""
    from llmrca.dataset.safe_io import MAX_INJECT_TIME_BYTES, decode_text

    raw, probs = _read(path, MAX_INJECT_TIME_BYTES, "inject_time.txt", root)
    if raw is None:
        return None, probs
    return parse_inject_time(decode_text(raw).text, file=str(path))
