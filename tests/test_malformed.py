"""The malformed-variant generator: >= 1,000 distinct, deterministic variants; our own parsers reject the ones they own."""

from __future__ import annotations

import json
import shutil
import sys
from pathlib import Path

import numpy as np
import pytest

from llmrca.dataset.io import write_case
from llmrca.dataset.safe_io import (
    MAX_CASE_JSON_BYTES,
    MAX_CSV_BYTES,
    MAX_INJECT_TIME_BYTES,
    DatasetInputError,
    read_bytes_bounded,
)
from llmrca.dataset.schema import check_against_data, parse_case_json, parse_json_text
from llmrca.dataset.strict import split_header
from llmrca.model import components_of
from llmrca.synthetic import make_case

sys.path.insert(0, str(Path(__file__).parent))
from malformed import KINDS, expectation, folder_digest, variants


@pytest.fixture(scope="module")
def valid(tmp_path_factory: pytest.TempPathFactory) -> Path:
    case = make_case(root="ray-worker-1", fault="cpu", seed=0, n_normal=20, n_anomal=6, traces_per_step=1)
    return write_case(case, tmp_path_factory.mktemp("valid") / "ray-worker-1_cpu" / "1")


@pytest.fixture(scope="module")
def applied(valid: Path, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """Every variant of seed 0 applied to its own copy of the valid case."""
    base = tmp_path_factory.mktemp("variants")
    out = {}
    for k, (name, mutate) in enumerate(variants(valid, np.random.default_rng(0))):
        folder = base / str(k) / "ray-worker-1_cpu" / "1"
        shutil.copytree(valid, folder)
        mutate(folder)
        out[name] = folder
    return out


def test_every_kind_is_documented() -> None:
    assert len(KINDS) >= 40
    for kind in KINDS.values():
        assert kind.expect in {"repair", "reject"} and len(kind.note) > 20, kind.name
    expects = {k.expect for k in KINDS.values()}
    assert expects == {"repair", "reject"}


def test_deterministic_and_distinct(valid: Path, applied: dict[str, Path]) -> None:
    names = [n for n, _ in variants(valid, np.random.default_rng(0))]
    assert len(names) >= 1000 and len(set(names)) == len(names)
    assert names == list(applied)  # same seed, same variants
    other = [n for n, _ in variants(valid, np.random.default_rng(1))]
    assert other != names  # the seed matters
    digests = {folder_digest(f) for f in applied.values()}
    assert len(digests) >= 1000, len(digests)
    assert folder_digest(valid) not in digests  # every variant changes something
    assert {expectation(n).name for n in names} == set(KINDS)  # every kind appears


def test_mutations_are_reproducible(valid: Path, applied: dict[str, Path], tmp_path: Path) -> None:
    """Applying the same-seed variant again gives the same folder content."""
    again = dict(variants(valid, np.random.default_rng(0)))
    for name in list(applied)[::50]:
        folder = tmp_path / name.replace("/", "-") / "c"
        shutil.copytree(valid, folder)
        again[name](folder)
        assert folder_digest(folder) == folder_digest(applied[name]) or "fs-symlink-out" in name, name  # symlink targets differ by folder


def _case_problems(folder: Path) -> list[str]:
    raw = read_bytes_bounded(folder / "case.json", MAX_CASE_JSON_BYTES, "case.json", root=folder)
    data, probs = parse_json_text(raw, file="case.json")
    if probs:
        return probs
    spec, probs = parse_case_json(data, file="case.json")
    if probs:
        return probs
    assert spec is not None
    header = (folder / "data.csv").read_text().splitlines()[0]
    return check_against_data(spec, components_of(split_header(header)), folder)


_SCHEMA_KINDS = [
    "case-json-wrong-type",
    "case-json-missing-required",
    "case-json-nested",
    "case-json-syntax",
    "case-json-bad-fault-type",
    "case-json-bad-values",
    "case-json-metric-sets-escape",
    "name-invisible-root",
    "name-underscore-component",
    "name-path-traversal",
]


def test_schema_rejects_every_case_json_variant(applied: dict[str, Path]) -> None:
    """The reject kinds that concern case.json are rejected by the schema, each with a message naming case.json; never an exception."""
    seen = 0
    for name, folder in applied.items():
        kind = expectation(name)
        if kind.name not in _SCHEMA_KINDS:
            continue
        assert kind.expect == "reject"
        probs = _case_problems(folder)
        assert probs and all(p.startswith("case.json") for p in probs), (name, probs)
        seen += 1
    assert seen > 200


def test_schema_accepts_repair_variants_of_case_json(applied: dict[str, Path]) -> None:
    """Variants that only drop optional fields or touch other files leave a valid case.json."""
    for name, folder in applied.items():
        if expectation(name).name in {"case-json-missing-optional", "csv-nan-cells", "logs-broken", "traces-broken", "encoding-crlf"}:
            assert _case_problems(folder) == [], name


def test_safe_io_refuses_every_file_system_variant(applied: dict[str, Path]) -> None:
    limits = {"data.csv": MAX_CSV_BYTES, "case.json": MAX_CASE_JSON_BYTES, "inject_time.txt": MAX_INJECT_TIME_BYTES}
    checked = 0
    for name, folder in applied.items():
        kind = expectation(name)
        if not kind.name.startswith("fs-") or kind.name == "fs-unreadable":  # root reads unreadable files; see test_safe_io
            continue
        target = next(t for t in limits if name.split("-", 2)[-1].split("/")[-1].startswith(t) or f"-{t}" in name)
        with pytest.raises(DatasetInputError) as ei:
            read_bytes_bounded(folder / target, limits[target], target, root=folder)
        assert target in ei.value.problems[0], name
        checked += 1
    assert checked == sum(1 for n in applied if n.startswith("fs-") and not n.startswith("fs-unreadable"))


def test_nested_case_json_is_bounded(applied: dict[str, Path]) -> None:
    for name, folder in applied.items():
        if name.startswith("case-json-nested/"):
            probs = _case_problems(folder)
            assert len(probs) == 1 and "levels deep; expected at most 64" in probs[0], name
            json.dumps(probs)  # plain strings
