"""The reliability suite: every malformed input gets a clear answer, and nothing corrupt is scored.

The seeded generator of ``tests/malformed.py`` makes >= 1,000 malformed
variants of one valid case (45 kinds, each labelled ``repair`` or
``reject``).  They are written as the cases of a few datasets, each with
valid cases beside them; every dataset is checked once with
``validate_dataset`` and evaluated once with three cheap methods (nsigma,
baro, llm-rca) under a short per-run timeout.  For every variant:

* an answer: the case is valid or listed with problems, never missing, no
  ``Traceback`` and no reader bug (``UNEXPECTED``) in any message;
* ``reject``: refused with a message naming the file concerned; every
  method's record is ``invalid_case`` (recorded once per method, never
  ``ok``, never a fallback ranking);
* ``repair``: read, with a note when the reader changed something, and
  ranked by every method;
* the valid cases beside the variants are ranked by every method.
"""

from __future__ import annotations

import json
import os
import shutil
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from llmrca.cli import app
from llmrca.dataset.io import UNEXPECTED, Dataset, add_case, read_case, write_case
from llmrca.dataset.safe_io import DatasetInputError
from llmrca.dataset.validate import DatasetCheck, import_tree, validate_dataset
from llmrca.evaluate.runner import run_evaluation
from llmrca.synthetic import make_case

sys.path.insert(0, str(Path(__file__).parent))
from malformed import KINDS, expectation, note_expected, variants

pytestmark = pytest.mark.timeout(400)  # the whole batch (build, validate, evaluate) takes ~35 s here

N_DATASETS = 4
METHODS = ["nsigma", "baro", "llm-rca"]
RUN_TIMEOUT_S = 30.0
VALID_PER_DATASET = 2

#: The file a reject variant's message must name, per kind (fs-* and encoding kinds: from the variant name).
KIND_FILE = {
    "case-json-": "case.json",
    "name-invisible-root": "case.json",
    "name-underscore-component": "case.json",
    "name-path-traversal": "case.json",
    "inject-time-bad": "inject_time.txt",
    "csv-": "data.csv",
    "time-": "data.csv",
    "name-": "data.csv",
    "encoding-not-utf8-data": "data.csv",
}


def _file_of(name: str) -> str:
    kind, _, what = name.partition("/")
    if kind.startswith("fs-"):
        return next(f for f in ("data.csv", "case.json", "inject_time.txt") if f in what)
    return next(f for prefix, f in KIND_FILE.items() if kind.startswith(prefix))


def _as_root() -> bool:
    return os.geteuid() == 0


class Batch:
    """The variants as cases of a few datasets, validated and evaluated once."""

    def __init__(self, base: Path) -> None:
        case = make_case(root="ray-worker-1", fault="cpu", seed=0, n_normal=20, n_anomal=6, traces_per_step=1)
        self.valid_src = write_case(case, base / "valid" / "ray-worker-1_cpu" / "1")
        self.roots = [base / f"ds{k}" for k in range(N_DATASETS)]
        self.variant_of: dict[tuple[int, str], str] = {}  # (dataset, case id) -> variant name
        self.valid_ids: list[tuple[int, str]] = []
        t0 = time.perf_counter()
        for i, (name, mutate) in enumerate(variants(self.valid_src, np.random.default_rng(0))):
            k = i % N_DATASETS
            cid = f"v{i:04d}/ray-worker-1_cpu/1"
            folder = self.roots[k] / cid
            shutil.copytree(self.valid_src, folder)
            mutate(folder)
            self.variant_of[(k, cid)] = name
        for k, root in enumerate(self.roots):
            for j in range(VALID_PER_DATASET):
                cid = f"valid{j}/ray-worker-1_cpu/1"
                shutil.copytree(self.valid_src, root / cid)
                self.valid_ids.append((k, cid))
        self.build_s = time.perf_counter() - t0
        t0 = time.perf_counter()
        self.checks: list[DatasetCheck] = [validate_dataset(r) for r in self.roots]
        self.validate_s = time.perf_counter() - t0
        t0 = time.perf_counter()
        self.records: dict[tuple[int, str], list[dict[str, Any]]] = {}
        for k, root in enumerate(self.roots):
            out = base / f"eval{k}"
            run_evaluation(root, METHODS, out, jobs=2, timeout_s=RUN_TIMEOUT_S, progress=False)
            for line in (out / "results.jsonl").read_text().splitlines():
                r = json.loads(line)
                self.records.setdefault((k, r["case"]), []).append(r)
        self.evaluate_s = time.perf_counter() - t0

    def answer(self, k: int, cid: str) -> tuple[str, list[str]]:
        chk = self.checks[k]
        if cid in chk.valid:  # repairs, and warnings (logs or traces that could not be used: "not used: ...")
            return "valid", chk.notes.get(cid, []) + chk.warnings.get(cid, [])
        if cid in chk.problems:
            return "invalid", chk.problems[cid]
        return "missing", []


@pytest.fixture(scope="module")
def batch(tmp_path_factory: pytest.TempPathFactory) -> Batch:
    b = Batch(tmp_path_factory.mktemp("reliability"))
    counts = Counter((expectation(n).name, expectation(n).expect) for n in b.variant_of.values())
    print(f"\n{len(b.variant_of)} variants of {len(KINDS)} kinds; build {b.build_s:.1f} s, validate {b.validate_s:.1f} s, evaluate {b.evaluate_s:.1f} s")
    print("per kind:", dict(sorted(counts.items())))
    return b


@pytest.mark.slow
def test_more_than_a_thousand_variants_of_every_kind(batch: Batch) -> None:
    names = list(batch.variant_of.values())
    assert len(names) >= 1000 and len(set(names)) == len(names)
    assert {expectation(n).name for n in names} == set(KINDS)


@pytest.mark.slow
def test_every_variant_gets_an_answer_without_traceback(batch: Batch) -> None:
    for (k, cid), name in batch.variant_of.items():
        got, msgs = batch.answer(k, cid)
        assert got != "missing", name
        for m in msgs:
            assert "Traceback" not in m and UNEXPECTED not in m, (name, m)
            assert len(m) < 2000, (name, m[:200])  # long values are cut, never a 1 MB message


@pytest.mark.slow
def test_rejects_are_refused_with_a_message_naming_the_file(batch: Batch) -> None:
    seen = 0
    for (k, cid), name in batch.variant_of.items():
        kind = expectation(name)
        if kind.expect != "reject" or (kind.name == "fs-unreadable" and _as_root()):
            continue  # root reads unreadable files: see test_unreadable_files_as_a_normal_user
        got, msgs = batch.answer(k, cid)
        assert got == "invalid", (name, msgs)
        assert msgs and any(_file_of(name) in m for m in msgs), (name, msgs)
        seen += 1
    assert seen > 700


@pytest.mark.slow
def test_repairs_are_read_and_carry_their_note(batch: Batch) -> None:
    seen = noted = 0
    for (k, cid), name in batch.variant_of.items():
        if expectation(name).expect != "repair":
            continue
        got, notes = batch.answer(k, cid)
        assert got == "valid", (name, notes)
        if note_expected(name):
            assert notes, name
            noted += 1
        seen += 1
    assert seen > 150 and noted > 80


@pytest.mark.slow
def test_nothing_corrupt_is_scored_and_valid_cases_are(batch: Batch) -> None:
    for (k, cid), name in batch.variant_of.items():
        recs = batch.records.get((k, cid), [])
        assert sorted(r["method"] for r in recs) == sorted(METHODS), (name, [r["method"] for r in recs])  # once per method
        kind = expectation(name)
        for r in recs:
            assert "Traceback" not in str(r.get("error")), (name, r["error"])
            assert r["status"] != "timeout", (name, r["method"])  # nothing hangs a worker
            if kind.expect == "reject" and not (kind.name == "fs-unreadable" and _as_root()):
                assert r["status"] != "ok" and r["error_kind"] == "invalid_case", (name, r["method"], r["status"])
                assert r["ranking"] is None and r["fallback_ranking"] is None, name
            elif kind.expect == "repair":
                assert r["status"] == "ok", (name, r["method"], r["error"])
    for k, cid in batch.valid_ids:
        recs = batch.records[(k, cid)]
        assert {r["method"]: r["status"] for r in recs} == dict.fromkeys(METHODS, "ok")
        assert all(r["ranking"][0] == "ray-worker-1" for r in recs if r["method"] == "baro"), recs


@pytest.mark.slow
def test_unreadable_files_as_a_normal_user(batch: Batch) -> None:
    """fs-unreadable variants, checked by user nobody (root reads every file): a message, no PermissionError."""
    if not _as_root():
        pytest.skip("the batch already ran as a normal user")
    base = Path(tempfile.mkdtemp(prefix="llmrca-perm-"))
    try:
        base.chmod(0o755)
        names = {n: m for n, m in variants(batch.valid_src, np.random.default_rng(0)) if n.startswith("fs-unreadable/")}
        for i, mutate in enumerate(names.values()):
            folder = base / "ds" / f"v{i}" / "ray-worker-1_cpu" / "1"
            shutil.copytree(batch.valid_src, folder)
            mutate(folder)
        for d in [base / "ds", *(p for p in (base / "ds").rglob("*") if p.is_dir())]:
            d.chmod(0o755)
        validate_dataset(base / "ds")  # as root: imports every module the child needs (nobody cannot read site-packages)
        out = _as_nobody(lambda: json.dumps(validate_dataset(base / "ds").problems))
        problems = json.loads(out)
        assert len(problems) == len(names)
        for i, name in enumerate(names):
            msgs = problems[f"v{i}/ray-worker-1_cpu/1"]
            assert any(f"{_file_of(name)}" in m and "permission denied" in m for m in msgs), (name, msgs)
    finally:
        shutil.rmtree(base, ignore_errors=True)


def _as_nobody(fn: Any) -> str:
    """``fn()``'s string result, computed in a forked child running as user nobody (65534)."""
    r, w = os.pipe()
    pid = os.fork()
    if pid == 0:
        os.close(r)
        try:
            os.setgroups([])
            os.setgid(65534)
            os.setuid(65534)
            out = fn()
        except BaseException as e:
            out = json.dumps({"raised": f"{type(e).__name__}: {e}"})
        os.write(w, out.encode())
        os._exit(0)
    os.close(w)
    chunks = []
    while chunk := os.read(r, 1 << 16):
        chunks.append(chunk)
    os.close(r)
    os.waitpid(pid, 0)
    return b"".join(chunks).decode()


# -- single behaviours (fast) -------------------------------------------------------------------


def _dataset(root: Path, n: int = 3) -> list[Path]:
    folders = []
    for i, comp in enumerate(["ray-worker-1", "ray-worker-2", "ray-worker-3", "ray-head"][:n]):
        c = make_case(root=comp, fault="cpu", seed=i, n_normal=20, n_anomal=6)
        folders.append(write_case(c, root / f"{comp}_cpu" / "1"))
    return folders


def test_dataset_validate_with_one_broken_case_reports_every_other_case(tmp_path: Path) -> None:
    """CLI: a FIFO as data.csv, a column named like terminal markup: every case answered, text printed literally."""
    folders = _dataset(tmp_path / "ds", 4)
    (folders[1] / "data.csv").unlink()
    os.mkfifo(folders[1] / "data.csv")
    df = pd.read_csv(folders[2] / "data.csv")
    df["ray-head_[red]x[/red]"] = ["oops", *range(len(df) - 1)]  # numbers mixed with text
    df.to_csv(folders[2] / "data.csv", index=False)
    t0 = time.perf_counter()
    res = CliRunner().invoke(app, ["dataset", "validate", str(tmp_path / "ds")])
    assert time.perf_counter() - t0 < 60  # the FIFO is refused, never read
    assert res.exit_code == 1 and (res.exception is None or isinstance(res.exception, SystemExit)), res.output
    out = res.output
    assert "Traceback" not in out
    assert "2 valid case(s), 2 with problems" in out
    assert "ray-worker-2_cpu/1:" in out and "data.csv is a FIFO (named pipe), not a regular file" in out
    assert "column 'ray-head_[red]x[/red]' mixes numbers and text (row 0: 'oops'" in out  # literal, not styled away


def test_rank_prints_names_from_data_literally(tmp_path: Path) -> None:
    c = make_case(root="ray-worker-1", fault="cpu", seed=0, n_normal=20, n_anomal=6)
    folder = write_case(c, tmp_path / "ray-worker-1_cpu" / "1")
    df = pd.read_csv(folder / "data.csv")
    df["[bold]evil_cpu"] = np.linspace(0, 1, len(df))
    df.to_csv(folder / "data.csv", index=False)
    spec = json.loads((folder / "case.json").read_text())
    spec["topology"] = None  # the components are then the data's
    (folder / "case.json").write_text(json.dumps(spec))
    res = CliRunner().invoke(app, ["rank", str(folder), "-m", "nsigma", "-q"], terminal_width=200)
    assert res.exit_code == 0, res.output
    assert "[bold]evil" in res.output  # a component in the ranking table, printed as it is
    df["[red]x[/red]_cpu"] = 1.0  # '/' in a component: refused, and the error prints the name literally
    df.to_csv(folder / "data.csv", index=False)
    res = CliRunner().invoke(app, ["rank", str(folder), "-m", "nsigma", "-q"], terminal_width=400)
    assert res.exit_code == 2 and "Traceback" not in res.output
    assert "column '[red]x[/red]_cpu': its component '[red]x[/red]' contains a path separator" in " ".join(res.output.split())


@pytest.mark.slow  # ~6 s to validate, most of the rest writing the 100k-column CSV
def test_validation_is_linear_in_the_number_of_columns(tmp_path: Path) -> None:
    """100k columns (with a duplicated name and a text cell among them) validate in seconds, not minutes."""
    rows, n = 30, 100_000
    names = [f"c{j % 1000}-x_m{j}" for j in range(n)]
    names[0] = "ray-worker-1_cpu"
    block = pd.DataFrame(np.random.default_rng(0).normal(size=(rows, n)), columns=names)
    df = pd.concat([pd.DataFrame({"time": 1_700_000_000 + 5 * np.arange(rows)}), block], axis=1)
    d = tmp_path / "wide" / "ray-worker-1_cpu" / "1"
    d.mkdir(parents=True)
    df.to_csv(d / "data.csv", index=False)
    (d / "inject_time.txt").write_text("1700000100\n")
    t0 = time.perf_counter()
    chk = validate_dataset(tmp_path / "wide")
    took = time.perf_counter() - t0
    assert chk.valid == ["ray-worker-1_cpu/1"] and took < 60, took
    text = (d / "data.csv").read_text().split("\n")
    text[0] = text[0].replace("c7-x_m7,", "c5-x_m5,", 1)  # a repeated column name
    cells = text[3].split(",")
    cells[500] = "n/a?"  # text among numbers
    text[3] = ",".join(cells)
    (d / "data.csv").write_text("\n".join(text))
    t0 = time.perf_counter()
    chk = validate_dataset(tmp_path / "wide")
    took = time.perf_counter() - t0
    msgs = chk.problems["ray-worker-1_cpu/1"]
    assert any("column 'c5-x_m5' appears 2 times in the header (columns 7, 9)" in m for m in msgs), msgs
    assert any("mixes numbers and text (row 2: 'n/a?'" in m for m in msgs), msgs
    assert took < 60, took


def test_import_never_follows_a_symlink_out_of_the_source(tmp_path: Path) -> None:
    src = tmp_path / "src"
    folders = _dataset(src, 2)
    secret = tmp_path / "secret.txt"
    secret.write_text("not yours\n")
    os.symlink(secret, folders[0] / "notes.txt")  # an extra file linking out: not copied
    (folders[0] / "readme.txt").write_text("kept\n")
    (folders[1] / "data.csv").rename(tmp_path / "outside.csv")
    os.symlink(tmp_path / "outside.csv", folders[1] / "data.csv")  # the metrics linking out: the case is skipped
    rep = import_tree(src, tmp_path / "dst")
    assert rep.imported == ["ray-worker-1_cpu/1"]
    assert "data.csv" in rep.problems["ray-worker-2_cpu/1"][0] and "points outside" in rep.problems["ray-worker-2_cpu/1"][0]
    out = tmp_path / "dst" / "ray-worker-1_cpu" / "1"
    assert (out / "readme.txt").read_text() == "kept\n" and not (out / "notes.txt").exists()
    assert any(n.startswith("notes.txt not copied:") and "points outside" in n for n in rep.kept["ray-worker-1_cpu/1"])


def test_a_fault_target_never_becomes_a_path_outside_the_output(tmp_path: Path) -> None:
    c = make_case(root="ray-worker-1", fault="cpu", seed=0, n_normal=20, n_anomal=6)
    for bad in ("../../x", "../", "/etc", "a\\..\\..\\x"):
        c.fault = type(c.fault)(type="cpu", target=bad)
        with pytest.raises(DatasetInputError) as ei:
            add_case(c, tmp_path / "out")
        assert "case folder name" in ei.value.problems[0]
    assert not (tmp_path / "x_cpu").exists() and not list(tmp_path.rglob("*_cpu"))


def test_inject_time_txt_garbage_or_disagreeing_is_reported_next_to_case_json(tmp_path: Path) -> None:
    (folder,) = _dataset(tmp_path / "ds", 1)
    assert json.loads((folder / "case.json").read_text())["inject_time"] is not None
    (folder / "inject_time.txt").write_text("garbage\n")
    msgs = validate_dataset(tmp_path / "ds").problems["ray-worker-1_cpu/1"]
    assert msgs == ["inject_time.txt holds 'garbage', not a number of epoch seconds nor an RFC 3339 time; write the injection time, e.g. 1750000300"]
    inject = json.loads((folder / "case.json").read_text())["inject_time"]
    (folder / "inject_time.txt").write_text(f"{inject + 60}\n")
    msgs = validate_dataset(tmp_path / "ds").problems["ray-worker-1_cpu/1"]
    assert len(msgs) == 1 and msgs[0].startswith(f"inject_time.txt says {float(inject + 60)} s but case.json inject_time says {float(inject)} s")


def test_case_json_contradictions_are_refused_with_the_fix(tmp_path: Path) -> None:
    folders = _dataset(tmp_path / "ds", 2)
    spec = json.loads((folders[0] / "case.json").read_text())
    spec["fault"]["target"] = "ray-worker-2"  # contradicts root_causes
    (folders[0] / "case.json").write_text(json.dumps(spec))
    df = pd.read_csv(folders[1] / "data.csv")
    df.drop(columns=[c for c in df.columns if c.startswith("nginx-gateway_")]).to_csv(folders[1] / "data_extended.csv", index=False)
    spec = json.loads((folders[1] / "case.json").read_text())
    spec["metric_sets"] = {"basic": "data.csv", "extended": "data_extended.csv"}
    (folders[1] / "case.json").write_text(json.dumps(spec))
    chk = validate_dataset(tmp_path / "ds")
    (a,) = chk.problems["ray-worker-1_cpu/1"]
    assert a.startswith("case.json: field fault.target is 'ray-worker-2', which is not in root_causes ['ray-worker-1']")
    b, c = chk.problems["ray-worker-2_cpu/1"]
    assert b.startswith("case.json: metric set 'extended' (data_extended.csv) holds other components than data.csv: missing ['nginx-gateway']")
    assert c.startswith("case.json: metric set 'basic' (data.csv) has 6 column(s) the 'extended' set (data_extended.csv) lacks (e.g. 'nginx-gateway_")


def test_a_log_row_with_an_unbalanced_quote_is_dropped_and_llm_rca_runs(tmp_path: Path) -> None:
    from llmrca.evaluate.single import rank_case

    c = make_case(root="ray-worker-1", fault="cpu", seed=0, n_normal=20, n_anomal=6, with_logs=True)
    folder = write_case(c, tmp_path / "ray-worker-1_cpu" / "1")
    lines = (folder / "logs.csv").read_text().splitlines()
    t, comp, _ = lines[3].split(",", 2)
    lines[3] = f'{t},{comp},"unclosed message'  # the quote opens a field that never closes
    (folder / "logs.csv").write_text("\n".join(lines) + "\n")
    case = read_case(folder)
    assert len(case.logs) == len(lines) - 2  # header and the bad line
    assert any("logs.csv: dropped 1 malformed line(s)" in n for n in case.meta["normalised"])
    out = rank_case(folder, "llm-rca")
    assert out.ranking.components[0] == "ray-worker-1"


def test_a_broken_dataset_json_is_reported_and_the_cases_still_checked_and_evaluated(tmp_path: Path) -> None:
    _dataset(tmp_path / "ds", 2)
    (tmp_path / "ds" / "dataset.json").write_text(json.dumps({"schema": 1, "n_cases": "two", "cases": [{"path": "../../etc"}]}))
    chk = validate_dataset(tmp_path / "ds")
    assert chk.valid == ["ray-worker-1_cpu/1", "ray-worker-2_cpu/1"]
    msgs = chk.problems["dataset.json"]
    assert any("field n_cases is a string 'two'" in m for m in msgs), msgs
    assert msgs[-1] == "dataset.json is ignored until fixed: cases are found by their files"
    assert Dataset(tmp_path / "ds").manifest == {}
    res = run_evaluation(tmp_path / "ds", ["nsigma"], tmp_path / "eval", jobs=1, timeout_s=30, progress=False)
    assert res.counts["ok"] == 2


def test_metric_sets_pointing_basic_at_the_extended_file_is_refused(tmp_path: Path) -> None:
    c = make_case(root="ray-worker-1", fault="cpu", seed=0, n_normal=20, n_anomal=6)
    ext = c.metrics.assign(**{"ray-worker-1_extra": 1.0, "ray-head_extra": 2.0})
    c.metric_sets = {"basic": c.metrics, "extended": ext}
    folder = write_case(c, tmp_path / "ds" / "ray-worker-1_cpu" / "1")
    assert read_case(folder).metric_sets["extended"].shape[1] == c.metrics.shape[1] + 2  # as written: valid
    spec = json.loads((folder / "case.json").read_text())
    spec["metric_sets"] = {"basic": "data_extended.csv", "extended": "data.csv"}
    (folder / "case.json").write_text(json.dumps(spec))
    (msg,) = validate_dataset(tmp_path / "ds").problems["ray-worker-1_cpu/1"]
    assert msg.startswith("case.json: metric set 'basic' (data_extended.csv) has 2 column(s) the 'extended' set (data.csv) lacks")
    spec["metric_sets"] = {"basic": "data_extended.csv", "extended": "data_extended.csv"}
    (folder / "case.json").write_text(json.dumps(spec))
    (msg,) = validate_dataset(tmp_path / "ds").problems["ray-worker-1_cpu/1"]
    assert msg.startswith("case.json: field metric_sets names 'data_extended.csv' for the sets ['basic', 'extended']")


@pytest.mark.slow
def test_cli_validate_and_import_of_a_batch_dataset_answer_every_case(batch: Batch, tmp_path: Path) -> None:
    """``dataset validate`` and ``dataset import`` on one batch dataset: exit 1 with a message per bad case, never a traceback;
    the import writes only inside its destination and only cases that validate."""
    k = 0
    ids = [cid for (kk, cid) in batch.variant_of if kk == k] + [cid for (kk, cid) in batch.valid_ids if kk == k]
    res = CliRunner().invoke(app, ["dataset", "validate", str(batch.roots[k])])
    assert res.exit_code == 1 and "Traceback" not in res.output
    n_bad = len(batch.checks[k].problems)
    assert f"{len(batch.checks[k].valid)} valid case(s), {n_bad} with problems" in res.output
    assert all(f"{cid}:" in res.output for cid in batch.checks[k].problems)
    before = sorted(p.name for p in tmp_path.parent.iterdir())
    dst = tmp_path / "imported"
    res = CliRunner().invoke(app, ["dataset", "import", str(batch.roots[k]), str(dst)])
    assert res.exit_code == 1 and "Traceback" not in res.output and UNEXPECTED not in res.output
    assert sorted(p.name for p in tmp_path.parent.iterdir()) == before  # nothing written beside the destination
    imported = {str(p.parent.relative_to(dst)) for p in dst.rglob("case.json")}
    assert imported == set(batch.checks[k].valid) and len(imported) + n_bad == len(ids)
    assert all(os.path.realpath(p).startswith(str(dst.resolve())) for p in dst.rglob("*"))  # no symlink copied out


def test_an_unlistable_case_folder_is_reported_not_skipped(tmp_path: Path) -> None:
    """A case folder user nobody cannot list: reported with the fix, the other cases checked."""
    if not _as_root():
        pytest.skip("needs root to switch to user nobody")
    base = Path(tempfile.mkdtemp(prefix="llmrca-perm-"))
    try:
        folders = _dataset(base / "ds", 2)
        for d in [base, *(p for p in base.rglob("*") if p.is_dir())]:
            d.chmod(0o755)
        for p in base.rglob("*"):
            if p.is_file():
                p.chmod(0o644)
        assert validate_dataset(base / "ds").valid  # as root: imports every module the child needs (nobody cannot read site-packages)
        folders[1].chmod(0)
        problems = json.loads(_as_nobody(lambda: json.dumps(validate_dataset(base / "ds").problems)))
        (msg,) = problems["ray-worker-2_cpu/1"]
        assert msg.startswith(f"cannot list the case folder {folders[1]}: Permission denied; make it readable")
        assert list(problems) == ["ray-worker-2_cpu/1"]
    finally:
        shutil.rmtree(base, ignore_errors=True)
