"""Validate Kubernetes objects: built-in kinds against Kubernetes' OpenAPI schemas, custom resources against CRD schemas.

* Built-in kinds (``v1``, ``apps/v1``, ``batch/v1``, ``rbac.authorization.k8s.io/v1``): the JSON schemas of
  Kubernetes :data:`K8S_VERSIONS` shipped by the ``kubernetes-validate`` package (``test`` extra), in their
  strict form (an unknown field is an error, as ``kubectl apply --validate=strict`` makes it).
* Custom resources (``RayService``, ``StressChaos``, ``NetworkChaos``, ``ServiceMonitor``, ``PodMonitor``):
  the ``openAPIV3Schema`` of the served version of each operator's published CRD, stored as JSON in a folder
  (the repository's ``tests/data/crds/``, see its README for the releases).  Kubernetes prunes unknown fields
  of a custom resource and server-side field validation (``fieldValidation=Strict``) rejects them; here
  every object schema with ``properties`` and without ``additionalProperties`` or
  ``x-kubernetes-preserve-unknown-fields`` rejects unknown fields the same way.

:func:`validate_object` returns the problems (empty: valid); :class:`SchemaError` is raised by :func:`check_object`.
"""

from __future__ import annotations

import functools
import json
import os
import re
from collections.abc import Iterable
from pathlib import Path
from typing import Any

#: Kubernetes minor versions every built-in object is validated against.
K8S_VERSIONS: tuple[str, ...] = ("1.31", "1.34")

#: The repository's CRD schema folder (``LLMRCA_CRD_DIR`` overrides it).
DEFAULT_CRD_DIR = Path(__file__).resolve().parents[4] / "tests" / "data" / "crds"

_DNS_SUBDOMAIN = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$")
_LABEL_VALUE = re.compile(r"^(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?$")


class SchemaError(ValueError):
    """An object does not validate; the message names the object, the field path and the schema."""


def crd_dir() -> Path:
    """The folder of CRD schema JSON files (``LLMRCA_CRD_DIR`` or the repository's ``tests/data/crds``)."""
    return Path(os.environ.get("LLMRCA_CRD_DIR") or DEFAULT_CRD_DIR)


def _strict(node: Any) -> Any:
    """A copy of a structural CRD schema in which objects with ``properties`` reject unknown fields."""
    if isinstance(node, list):
        return [_strict(v) for v in node]
    if not isinstance(node, dict):
        return node
    out = {k: _strict(v) for k, v in node.items()}
    if "properties" in out and "additionalProperties" not in out and not out.get("x-kubernetes-preserve-unknown-fields"):
        out["additionalProperties"] = False
    return out


@functools.lru_cache(maxsize=8)
def crd_schemas(folder: str) -> dict[tuple[str, str], dict[str, Any]]:
    """``{(apiVersion, kind): strict schema}`` of every ``*.json`` in ``folder`` (written by ``extract.py``).

    Raises :class:`SchemaError` when the folder has none.
    """
    out: dict[tuple[str, str], dict[str, Any]] = {}
    for p in sorted(Path(folder).glob("*.json")):
        d = json.loads(p.read_text())
        schema = _strict(d["openAPIV3Schema"])
        # metadata is checked by _check_meta; the CRD says only "type: object"
        out[(f"{d['group']}/{d['version']}", d["kind"])] = schema
    if not out:
        raise SchemaError(f"no CRD schema (*.json) in {folder}; set LLMRCA_CRD_DIR to the folder tests/data/crds of the repository")
    return out


@functools.lru_cache(maxsize=64)
def _crd_validator(folder: str, api_version: str, kind: str) -> Any:
    import jsonschema

    schema = crd_schemas(folder).get((api_version, kind))
    if schema is None:
        return None
    return jsonschema.Draft7Validator(schema, format_checker=None)


def _check_meta(obj: dict[str, Any]) -> list[str]:
    m = obj.get("metadata")
    if not isinstance(m, dict):
        return ["metadata: missing"]
    bad = []
    name = m.get("name")
    if not isinstance(name, str) or len(name) > 253 or not _DNS_SUBDOMAIN.match(name):
        bad.append(f"metadata.name: {name!r} is not a DNS-1123 subdomain")
    for key in ("labels", "annotations"):
        for k, v in (m.get(key) or {}).items():
            if not isinstance(v, str):
                bad.append(f"metadata.{key}.{k}: value {v!r} is not a string")
            elif key == "labels" and (len(v) > 63 or not _LABEL_VALUE.match(v)):
                bad.append(f"metadata.labels.{k}: {v!r} is not a valid label value")
    return bad


@functools.lru_cache(maxsize=128)
def _builtin_validator(version: str, api_version: str, kind: str) -> Any:
    """A validator of the strict schema of ``kind`` in Kubernetes ``version`` (kubernetes-validate's files), or None."""
    from llmrca.errors import require

    require("kubernetes_validate", "test", "validating Kubernetes objects")
    import jsonschema
    from kubernetes_validate import utils as kvu
    from referencing import Registry, Resource

    have = [v for v in kvu.all_versions() if kvu.major_minor(v) == version]
    if not have:
        raise SchemaError(f"kubernetes-validate {kvu.__version__} has no schemas for Kubernetes {version}; it has {kvu.all_versions()[0]}..{kvu.latest_version()}")
    folder = f"kubernetes-json-schema/v{have[-1]}-local-strict"
    group = re.sub(r"^([^./]*)(?:\.[^/]*)?/", r"\1-", api_version)
    try:
        schema = kvu.schema_contents(f"{folder}/{kind.lower()}-{group}.json", version)
    except FileNotFoundError:
        return None
    defs = kvu.schema_contents(f"{folder}/_definitions.json", version)
    registry = Resource.from_contents(schema) @ (Resource.from_contents(defs) @ Registry())
    return jsonschema.Draft202012Validator(schema, registry=registry)


def _builtin_problems(obj: dict[str, Any], versions: Iterable[str]) -> list[str] | None:
    """Every problem against Kubernetes' schemas of ``versions``; None when the kind is not a built-in one."""
    out = []
    for v in versions:
        val = _builtin_validator(v, obj["apiVersion"], obj["kind"])
        if val is None:
            return None
        for e in sorted(val.iter_errors(obj), key=lambda e: [str(x) for x in e.path]):
            path = ".".join(str(x) for x in e.path) or "(root)"
            out.append(f"Kubernetes {v}: {path}: {e.message}")
    return out


def validate_object(obj: dict[str, Any], *, versions: Iterable[str] = K8S_VERSIONS, crds: str | Path | None = None) -> list[str]:
    """Problems of ``obj`` (a Kubernetes object as a dict); empty when it validates.

    Custom resources are checked against the CRD schemas in ``crds`` (default :func:`crd_dir`), every other
    kind against Kubernetes ``versions``.  A kind known to neither is a problem (nothing is waved through).
    """
    if not isinstance(obj, dict) or "apiVersion" not in obj or "kind" not in obj:
        return ["not a Kubernetes object (apiVersion and kind are required)"]
    where = f"{obj['kind']} {obj.get('metadata', {}).get('name', '?')}"
    bad = [f"{where}: {p}" for p in _check_meta(obj)]
    val = _crd_validator(str(crds or crd_dir()), obj["apiVersion"], obj["kind"])
    if val is not None:
        for e in sorted(val.iter_errors(obj), key=lambda e: list(e.path)):
            path = ".".join(str(x) for x in e.path) or "(root)"
            bad.append(f"{where}: CRD schema: {path}: {e.message}")
        return bad
    probs = _builtin_problems(obj, versions)
    if probs is None:
        return [*bad, f"{where}: no schema for {obj['apiVersion']} {obj['kind']} (neither Kubernetes {', '.join(versions)} nor a CRD in {crds or crd_dir()})"]
    return [*bad, *(f"{where}: {p}" for p in probs)]


def check_object(obj: dict[str, Any], **kw: Any) -> None:
    """Raise :class:`SchemaError` listing every problem of ``obj`` (see :func:`validate_object`)."""
    probs = validate_object(obj, **kw)
    if probs:
        raise SchemaError("; ".join(probs[:10]) + (f" (+{len(probs) - 10} more)" if len(probs) > 10 else ""))
