"""Extract the served version's ``openAPIV3Schema`` from a CustomResourceDefinition YAML into JSON.

Usage: ``python extract.py CRD.yaml OUT.json``.  Descriptions are dropped (they
are documentation, not constraints); every other keyword is kept as published.
"""

from __future__ import annotations

import json
import sys
from typing import Any

import yaml


def strip(node: Any) -> Any:
    """The schema without ``description`` keywords (recursively)."""
    if isinstance(node, dict):
        return {k: strip(v) for k, v in node.items() if k != "description" or not isinstance(v, str)}
    if isinstance(node, list):
        return [strip(v) for v in node]
    return node


def main(src: str, dst: str) -> None:
    docs = [d for d in yaml.safe_load_all(open(src)) if d]
    crd = next(d for d in docs if d.get("kind") == "CustomResourceDefinition")
    spec = crd["spec"]
    version = next(v for v in spec["versions"] if v.get("storage"))
    out = {
        "group": spec["group"],
        "kind": spec["names"]["kind"],
        "version": version["name"],
        "openAPIV3Schema": strip(version["schema"]["openAPIV3Schema"]),
    }
    with open(dst, "w") as f:
        json.dump(out, f, separators=(",", ":"), sort_keys=True)
        f.write("\n")


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
