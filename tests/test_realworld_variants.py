"""Inputs of the same kinds as /work/shared/cases/realworld, written differently.

Each test builds its input in ``tmp_path`` from a seeded synthetic case and
checks what the reader makes of it: rows, columns, units, the note recorded,
the problem's words, or the culprit ranked first.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from llmrca.cli import app
from llmrca.dataset import read_case
from llmrca.evaluate.single import rank_case
from llmrca.model import CaseValidationError
from llmrca.synthetic import make_case


def _case(tmp_path: Path, rel: str = "ray-worker-1_cpu/1", *, seed: int = 0, **kw):
    """A plain RE1-style case folder and the synthetic case it came from (72 rows, 1700000000..1700000355 s)."""
    c = make_case(root=kw.pop("root", "ray-worker-1"), fault=kw.pop("fault", "cpu"), seed=seed, with_logs=kw.pop("with_logs", False), with_traces=kw.pop("with_traces", False))
    d = tmp_path / rel
    d.mkdir(parents=True)
    (d / "inject_time.txt").write_text(f"{int(c.inject_time)}\n")
    return d, c


def _notes(case) -> str:
    return "\n".join(case.meta.get("normalised", []))


def _problems(folder: Path) -> str:
    with pytest.raises(CaseValidationError) as e:
        read_case(folder)
    return "\n".join(e.value.problems)


# -- rcallm-raw-export: a saved pandas index, however pandas named it -----------------------------


@pytest.mark.parametrize(
    ("how", "name", "span"),
    [
        ("sliced", "Unnamed: 0", "360..431"),  # df.iloc[360:].to_csv(): the index keeps its start
        ("named", "index", "0..71"),  # df.reset_index().to_csv(index=False)
        ("filtered", "Unnamed: 0", "0..142"),  # df[mask].to_csv(): gaps in the index
    ],
)
def test_saved_index_with_any_start_name_or_gaps_is_dropped(tmp_path: Path, how: str, name: str, span: str) -> None:
    d, c = _case(tmp_path)
    m = c.metrics.copy()
    m["time"] = pd.to_datetime(m["time"], unit="s").dt.strftime("%Y-%m-%d %H:%M:%S")
    m.index = {"sliced": range(360, 432), "named": range(72), "filtered": range(0, 144, 2)}[how]
    if how == "named":
        m.rename_axis("index").reset_index().to_csv(d / "data.csv", index=False)
    else:
        m.to_csv(d / "data.csv")
    case = read_case(d)
    assert list(case.metrics.columns) == list(c.metrics.columns)
    assert case.metrics.shape == (72, len(c.metrics.columns))
    assert case.metrics["time"].iloc[0] == pytest.approx(c.metrics["time"].iloc[0])
    assert f"dropped the saved pandas index column [{name!r}] ({span})" in _notes(case)
    assert rank_case(d, "nsigma").ranking.components[0] == "ray-worker-1"


def test_an_index_named_column_that_is_not_an_index_is_reported(tmp_path: Path) -> None:
    d, c = _case(tmp_path)
    m = c.metrics.copy()
    m.insert(1, "index", np.linspace(5.0, 1.0, len(m)))  # decreasing: not a saved index, not a metric name
    m.to_csv(d / "data.csv", index=False)
    assert "columns ['index'] are not '<component>_<metric>'" in _problems(d)


# -- rcaeval-dup-time: copies in another unit or format, three copies, copies that differ ----------


def _with_time_copies(d: Path, m: pd.DataFrame, *copies: pd.Series) -> None:
    out = m.copy()
    for i, s in enumerate(copies):
        out[f"__t{i}"] = s.to_numpy()
    text = out.to_csv(index=False)
    head, rest = text.split("\n", 1)
    (d / "data.csv").write_text(head.replace(",".join(f"__t{i}" for i in range(len(copies))), ",".join(["time"] * len(copies))) + "\n" + rest)


@pytest.mark.parametrize(
    ("copy", "how"),
    [
        (lambda t: (t * 1000).astype("int64"), " (written as epoch milliseconds, 'time' as epoch seconds)"),
        (lambda t: pd.to_datetime(t, unit="s").dt.strftime("%Y-%m-%dT%H:%M:%SZ"), " (written as date-time strings, 'time' as epoch seconds)"),
        (lambda t: t.map(lambda x: f"{x:.1f}"), ""),
    ],
)
def test_repeated_time_holding_the_same_instants_is_dropped(tmp_path: Path, copy, how: str) -> None:
    d, c = _case(tmp_path)
    _with_time_copies(d, c.metrics, copy(c.metrics["time"]))
    case = read_case(d)
    assert list(case.metrics.columns) == list(c.metrics.columns) and len(case.metrics) == 72
    assert f"the header repeats 'time' (read as 'time.1'); the copy equals 'time'{how} and was dropped" in _notes(case)


def test_three_time_copies_are_all_dropped(tmp_path: Path) -> None:
    d, c = _case(tmp_path)
    _with_time_copies(d, c.metrics, c.metrics["time"], c.metrics["time"])
    case = read_case(d)
    assert "time.1" not in case.metrics.columns and "time.2" not in case.metrics.columns
    assert _notes(case).count("the copy equals 'time' and was dropped") == 2


def test_time_copies_that_differ_are_one_plain_problem(tmp_path: Path) -> None:
    d, c = _case(tmp_path)
    _with_time_copies(d, c.metrics, (c.metrics["time"] - 7200).astype("int64"))
    problems = _problems(d)
    assert "the header repeats 'time' (the second is read as 'time.1') and the two differ (row 0: 1700000000 vs 1699992800)" in problems
    assert "np.float64" not in problems and "np.int64" not in problems
    assert "['time.1'] are not '<component>_<metric>'" not in problems  # said once, as the repeated header


# -- logs-non-utf8: other encodings and bytes; metric-only methods are never blocked -----------------


def _with_logs(tmp_path: Path, raw: bytes) -> tuple[Path, object]:
    d, c = _case(tmp_path, "ray-worker-1_memory/1", fault="memory", with_logs=True)
    c.metrics.to_csv(d / "data.csv", index=False)
    (d / "logs.csv").write_bytes(raw)
    return d, c


@pytest.mark.parametrize(("enc", "bom"), [("utf-16", True), ("utf-16-le", False), ("utf-32", True)])
def test_utf16_or_utf32_logs_are_decoded_and_never_block_the_case(tmp_path: Path, enc: str, bom: bool) -> None:
    logs = make_case(root="ray-worker-1", fault="memory", seed=0).logs
    d, c = _with_logs(tmp_path, logs.assign(message=logs["message"] + " caf\u00e9").to_csv(index=False).encode(enc))
    case = read_case(d)
    assert len(case.logs) == len(c.logs) and case.logs["message"].iloc[0].endswith(" caf\u00e9")
    assert case.logs["time"].iloc[0] == pytest.approx(c.logs["time"].iloc[0])
    label = {"utf-16": "UTF-16", "utf-16-le": "UTF-16-LE", "utf-32": "UTF-32"}[enc]
    assert f"warning: logs.csv is {label} text{' (byte-order mark)' if bom else ''}, not UTF-8; decoded as {label}" in _notes(case)
    assert rank_case(d, "nsigma").ranking.components[0] == "ray-worker-1"


def _pack(kind: str, raw: bytes, member: str = "x.csv") -> bytes:
    import bz2
    import gzip
    import io
    import lzma
    import zipfile

    if kind == "zip":
        buf = io.BytesIO()
        with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as zf:
            zf.writestr(member, raw)
        return buf.getvalue()
    return {"gzip": gzip.compress, "bzip2": bz2.compress, "xz": lzma.compress}[kind](raw)


@pytest.mark.parametrize("kind", ["gzip", "zip", "bzip2", "xz"])
def test_compressed_logs_are_read(tmp_path: Path, kind: str) -> None:
    logs = make_case(root="ray-worker-1", fault="memory", seed=0).logs
    d, _ = _with_logs(tmp_path, _pack(kind, logs.to_csv(index=False).encode()))
    case = read_case(d)
    assert len(case.logs) == len(logs) and (case.logs["message"] == logs["message"].to_numpy()).all()
    said = f"logs.csv: {kind}-compressed{' (its one file x.csv)' if kind == 'zip' else ''}; decompressed ("
    assert said in _notes(case), _notes(case)


def test_zstd_or_damaged_logs_leave_the_case_without_logs(tmp_path: Path) -> None:
    import gzip

    raw = gzip.compress(make_case(root="ray-worker-1", fault="memory", seed=0).logs.to_csv(index=False).encode())
    d, c = _with_logs(tmp_path, raw[: len(raw) // 2])  # a copy cut off halfway
    case = read_case(d)
    assert case.logs is None and case.metrics.shape == c.metrics.shape
    assert "warning: not used: logs.csv is gzip-compressed but cannot be decompressed (" in _notes(case) and "the case is used without logs" in _notes(case)
    (d / "logs.csv").write_bytes(b"\x28\xb5\x2f\xfd" + b"\x00" * 32)  # zstd's magic number
    assert ("warning: not used: logs.csv is zstd-compressed, which is not read; decompress it (zstd -dc logs.csv > logs.csv.tmp && "
            "mv logs.csv.tmp logs.csv) so the folder holds the plain logs.csv") in _notes(read_case(d))


def test_nul_bytes_in_logs_are_removed_and_counted(tmp_path: Path) -> None:
    logs = make_case(root="ray-worker-1", fault="memory", seed=0).logs
    d, _ = _with_logs(tmp_path, logs.to_csv(index=False).encode().replace(b"request", b"req\x00uest", 4))
    case = read_case(d)
    assert len(case.logs) == len(logs) and (case.logs["message"] == logs["message"].to_numpy()).all()
    assert "warning: logs.csv: 4 NUL byte(s) removed" in _notes(case)


# -- rcaeval-re2-layout: compressed case files (simple_metrics.csv.gz) are read as the plain file ---------


@pytest.mark.parametrize("kind", ["gzip", "zip", "bzip2", "xz"])
def test_compressed_metrics_files_are_read_and_imported_plain(tmp_path: Path, kind: str) -> None:
    """An RE2 case whose files are compressed copies (``simple_metrics.csv.gz``, ``metrics.csv.gz``; no
    inject_time.txt needed to find it) is read as the plain files would be, and `dataset import` writes
    the plain files, not the compressed copies beside them."""
    from llmrca.dataset.layouts import COMPRESSED_SUFFIXES

    suffix = {"gzip": ".gz", "zip": ".zip", "bzip2": ".bz2", "xz": ".xz"}[kind]
    assert suffix in COMPRESSED_SUFFIXES
    d, c = _case(tmp_path, "RE2-OB/ray-worker-1_cpu/1")
    for name in ("simple_metrics.csv", "metrics.csv"):
        (d / f"{name}{suffix}").write_bytes(_pack(kind, c.metrics.to_csv(index=False).encode(), member=name))
    case = read_case(d)
    assert case.metrics.shape == c.metrics.shape and np.allclose(case.metrics.to_numpy(float), c.metrics.to_numpy(float))
    assert set(case.metric_sets) == {"basic", "extended"} and case.meta["layout"] == "rcaeval-re2"
    member = " (its one file simple_metrics.csv)" if kind == "zip" else ""
    assert f"simple_metrics.csv{suffix}: {kind}-compressed{member}; decompressed (" in _notes(case)
    assert rank_case(d, "nsigma").ranking.components[0] == "ray-worker-1"
    r = CliRunner().invoke(app, ["dataset", "import", str(tmp_path / "RE2-OB"), str(tmp_path / "out")])
    assert r.exit_code == 0, r.output
    out = tmp_path / "out" / "ray-worker-1_cpu" / "1"
    assert sorted(p.name for p in out.iterdir()) == ["case.json", "data.csv", "data_extended.csv", "inject_time.txt"]


@pytest.mark.parametrize(("suffix", "kind"), [(".GZ", "gzip"), (".gzip", "gzip"), (".bzip2", "bzip2"), (".XZ", "xz"), (".lzma", "lzma")])
def test_compressed_suffixes_in_any_case_and_long_spellings_are_read(tmp_path: Path, suffix: str, kind: str) -> None:
    """``data.csv.GZ`` (a Windows export), ``data.csv.gzip``, ``.bzip2`` and LZMA-alone's ``.lzma`` (no magic
    number: its name says it) stand for data.csv as ``.gz`` does, and an import writes the plain file."""
    import lzma

    d, c = _case(tmp_path / "src")
    raw = c.metrics.to_csv(index=False).encode()
    packed = lzma.compress(raw, format=lzma.FORMAT_ALONE) if kind == "lzma" else _pack(kind, raw)
    (d / f"data.csv{suffix}").write_bytes(packed)
    case = read_case(d)
    assert np.allclose(case.metrics.to_numpy(float), c.metrics.to_numpy(float))
    assert f"data.csv{suffix}: {kind}-compressed; decompressed ({len(raw)} bytes)" in _notes(case)
    r = CliRunner().invoke(app, ["dataset", "import", str(tmp_path / "src"), str(tmp_path / "out")], terminal_width=400)
    assert r.exit_code == 0, r.output
    assert sorted(p.name for p in (tmp_path / "out" / "ray-worker-1_cpu" / "1").iterdir()) == ["case.json", "data.csv", "inject_time.txt"]
    if kind == "lzma":  # a .lzma that is no LZMA-alone stream is damaged, said as such
        (d / "data.csv.lzma").write_bytes(b"\x5d\x00\x00\x80\x00" + b"\xff" * 8 + b"garbage")
        assert "data.csv.lzma is lzma-compressed but cannot be decompressed (" in _problems(d)


@pytest.mark.parametrize("packing", ["tar.gz", "bztar", "xztar", "zip", "plain"])
def test_an_archive_given_where_a_folder_is_expected_says_what_it_is_and_how_to_extract_it(tmp_path: Path, packing: str) -> None:
    """A dataset or case packed as one file (``dataset.tar.gz``, ``dataset.zip``) passed to validate, rank,
    evaluate, import or describe is named for what it is, with the command that extracts it (exit 2); the
    same archive inside a folder that holds no case is named by validate."""
    import shutil

    d, c = _case(tmp_path / "ds")
    c.metrics.to_csv(d / "data.csv", index=False)
    if packing == "plain":
        archive = tmp_path / "data.csv"
        shutil.copy(d / "data.csv", archive)
        said = f"{archive} is a file, not a folder; pass the folder that holds the case(s)"
    else:
        archive = Path(shutil.make_archive(str(tmp_path / "dataset"), {"tar.gz": "gztar"}.get(packing, packing), tmp_path / "ds"))
        what, how = {"tar.gz": ("a gzip-compressed tar archive", "tar -xf"), "bztar": ("a bzip2-compressed tar archive", "tar -xf"),
                     "xztar": ("an xz-compressed tar archive", "tar -xf"), "zip": ("a zip archive", "unzip")}[packing]
        opt = "-d" if packing == "zip" else "-C"  # extracted beside the archive, wherever the command is run from
        said = f"{archive} is {what}, not a folder; extract it ({how} {archive} {opt} {archive.parent}) and pass the folder of cases it holds"
    for args in (["dataset", "validate", str(archive)], ["rank", str(archive), "-m", "nsigma"],
                 ["evaluate", str(archive), "--methods", "nsigma", "--out", str(tmp_path / "ev")],
                 ["dataset", "import", str(archive), str(tmp_path / "imp")], ["dataset", "describe", str(archive)]):
        r = CliRunner().invoke(app, args, terminal_width=1000)
        assert r.exit_code == 2 and said in r.output, (args, r.output)
    assert not (tmp_path / "ev").exists() and not (tmp_path / "imp").exists()
    if packing != "plain":
        holder = tmp_path / "holder" / "ray-worker-1_cpu" / "1"
        holder.mkdir(parents=True)
        shutil.copy(archive, holder / f"case{archive.name.removeprefix('dataset')}")
        inside = f"ray-worker-1_cpu/1/case{archive.name.removeprefix('dataset')}"
        for i in range(9):  # files sorted before it do not hide it
            (holder.parent.parent / f"a{i}.txt").write_text("notes\n")
        r = CliRunner().invoke(app, ["dataset", "validate", str(tmp_path / "holder")], terminal_width=1000)
        packed = tmp_path / "holder" / inside
        assert r.exit_code == 1 and f"{inside} is {what}: extract it ({how} {packed} {opt} {packed.parent}); then run the command again" in r.output, r.output
        r = CliRunner().invoke(app, ["rank", str(holder), "-m", "nsigma", "-q"], terminal_width=1000)  # the case folder itself
        name = inside.rsplit("/", 1)[1]
        assert r.exit_code == 2 and f"{name} is {what}: extract it ({how} {holder / name} {opt} {holder})" in r.output, r.output
        # beside readable cases: a warning from validate, import and evaluate, not silence
        shutil.copy(archive, tmp_path / "ds" / archive.name)
        want = (f"archive(s) not read: {archive.name} is {what}: extract it ({how} {tmp_path / 'ds' / archive.name} {opt} {tmp_path / 'ds'}); "
                "their cases are read only once extracted (then move the archive away to silence this)")
        r = CliRunner().invoke(app, ["dataset", "validate", str(tmp_path / "ds")], terminal_width=1000)
        assert r.exit_code == 0 and f"dataset: warning: {want}" in r.output, r.output
        r = CliRunner().invoke(app, ["dataset", "import", str(tmp_path / "ds"), str(tmp_path / "imp2")], terminal_width=1000)
        assert r.exit_code == 0 and f"dataset: {want.replace(str(tmp_path / 'ds'), str((tmp_path / 'ds').resolve()))}" in r.output, r.output
        r = CliRunner().invoke(app, ["evaluate", str(tmp_path / "ds"), "--methods", "nsigma", "--out", str(tmp_path / "ev2"), "-q"], terminal_width=1000)
        assert r.exit_code == 0 and "note: archive(s) not read: " in r.output, r.output


def test_a_metrics_file_that_is_none_of_the_layout_s_sets_is_warned_about(tmp_path: Path) -> None:
    """simple_metrics.csv beside data.csv (RE1 reads data.csv) may be another case's data: a warning on every
    read, in rank --json and in evaluate's notes; an import keeps it as it is."""
    import json

    d, c = _case(tmp_path / "ds")
    c.metrics.to_csv(d / "data.csv", index=False)
    other = make_case(root="ray-worker-2", fault="cpu", seed=1, with_logs=False, with_traces=False)
    other.metrics.to_csv(d / "simple_metrics.csv", index=False)
    want = "warning: not read: simple_metrics.csv: the case is read as rcaeval-re1 from data.csv, and simple_metrics.csv is none of its metric sets"
    assert want in _notes(read_case(d))
    r = CliRunner().invoke(app, ["rank", str(d), "-m", "nsigma", "--json", "-q"])
    assert any(w.startswith(want.removeprefix("warning: ")) for w in json.loads(r.stdout)["case_warnings"]), r.stdout
    r = CliRunner().invoke(app, ["evaluate", str(tmp_path / "ds"), "--methods", "nsigma", "--out", str(tmp_path / "ev"), "-q"], terminal_width=1000)
    assert r.exit_code == 0 and "note: 1 case(s) were read with warnings, e.g. ray-worker-1_cpu/1: not read: simple_metrics.csv" in r.output, r.output
    (d / "data.csv").write_text("oops\n")  # damaged: the problems name the file beside it that was not read
    (d / "simple_metrics.csv").unlink()
    import gzip

    (d / "data.csv.gz").write_bytes(gzip.compress(c.metrics.to_csv(index=False).encode()))
    said = _problems(d)
    assert "data.csv has a header but no rows" in said and "not read: data.csv.gz: data.csv is in the folder too and is read instead" in said, said


@pytest.mark.parametrize("kind", ["gzip", "bzip2", "xz"])
def test_bytes_after_the_compressed_data_are_a_warning_for_every_format(tmp_path: Path, kind: str) -> None:
    """As gzip -d: the data is read, the trailing bytes are said every time the case is read (rank --json
    case_warnings, never a repair, never recorded by an import, so the imported case says nothing)."""
    import json

    d, c = _case(tmp_path / "src")
    raw = c.metrics.to_csv(index=False).encode()
    suffix = {"gzip": ".gz", "bzip2": ".bz2", "xz": ".xz"}[kind]
    (d / f"data.csv{suffix}").write_bytes(_pack(kind, raw) + _pack(kind, b"") * (kind != "gzip") + b"junk!!!")
    case = read_case(d)
    assert np.allclose(case.metrics.to_numpy(float), c.metrics.to_numpy(float))
    want = f"warning: trailing bytes: data.csv{suffix}: 7 byte(s) after the end of the {kind} data were ignored"
    assert want in _notes(case), _notes(case)
    got = json.loads(CliRunner().invoke(app, ["rank", str(d), "-m", "nsigma", "--json", "-q"]).stdout)
    assert any(want.removeprefix("warning: ") in w for w in got["case_warnings"]) and not any("trailing" in n for n in got["case_repairs"])
    assert CliRunner().invoke(app, ["dataset", "import", str(tmp_path / "src"), str(tmp_path / "out")]).exit_code == 0
    assert "trailing" not in _notes(read_case(tmp_path / "out" / "ray-worker-1_cpu" / "1"))


def test_xz_stream_padding_is_a_multiple_of_four_zero_bytes(tmp_path: Path) -> None:
    """Padding of 4 or 8 zero bytes is part of the format (read silently); 7 zero bytes were read silently too,
    though `xz -d` calls such a file corrupt: now they are trailing bytes, with the warning."""
    d, c = _case(tmp_path)
    raw = c.metrics.to_csv(index=False).encode()
    for pad, said in ((8, None), (7, "7 byte(s) after the end of the xz data were ignored")):
        (d / "data.csv.xz").write_bytes(_pack("xz", raw) + b"\x00" * pad)
        case = read_case(d)
        assert np.allclose(case.metrics.to_numpy(float), c.metrics.to_numpy(float))
        trailing = [n for n in _notes(case).splitlines() if "trailing" in n]
        assert (trailing == []) if said is None else (len(trailing) == 1 and said in trailing[0]), trailing


@pytest.mark.parametrize("name", ["data.csv.xz", "data.csv.gz", "data.csv"])
def test_lzma_alone_data_is_read_by_its_header_under_any_name(tmp_path: Path, name: str) -> None:
    import lzma

    d, c = _case(tmp_path)
    raw = c.metrics.to_csv(index=False).encode()
    (d / name).write_bytes(lzma.compress(raw, format=lzma.FORMAT_ALONE))
    case = read_case(d)
    assert np.allclose(case.metrics.to_numpy(float), c.metrics.to_numpy(float))
    assert f"{name}: lzma-compressed; decompressed ({len(raw)} bytes)" in _notes(case)


def test_a_macos_zip_s_metadata_entries_are_not_counted_and_zstd_advice_is_a_command(tmp_path: Path) -> None:
    import io
    import zipfile

    d, c = _case(tmp_path)
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:  # what Finder's "Compress" writes
        zf.writestr("data.csv", c.metrics.to_csv(index=False))
        zf.writestr("__MACOSX/._data.csv", b"\x00\x05\x16\x07")
        zf.writestr(".DS_Store", b"Bud1")
    (d / "data.csv.zip").write_bytes(buf.getvalue())
    assert "data.csv.zip: zip-compressed (its one file data.csv); decompressed (" in _notes(read_case(d))
    (d / "data.csv.zip").unlink()
    (d / "data.csv.ZST").write_bytes(b"\x28\xb5\x2f\xfd" + b"\x00" * 32)
    assert "decompress it (zstd -d data.csv.ZST -o data.csv) so the folder holds the plain data.csv" in _problems(d)


def test_a_broken_link_is_named_as_one(tmp_path: Path) -> None:
    d, _ = _case(tmp_path)
    (d / "data.csv.gz").symlink_to("gone.gz")  # inside the case folder, and gone
    assert "data.csv.gz is a broken link (to gone.gz, which does not exist); replace it with the real file" in _problems(d)
    (d / "data.csv.gz").unlink()
    (d / "data.csv.gz").symlink_to(tmp_path.parent / "nowhere.gz")  # outside the case and gone: broken first
    assert f"data.csv.gz is a broken link (to {tmp_path.parent / 'nowhere.gz'}, which does not exist)" in _problems(d)


def test_a_compressed_copy_found_without_inject_time_and_bytes_under_a_plain_name(tmp_path: Path) -> None:
    import gzip

    d, c = _case(tmp_path, "RE2-OB/ray-worker-1_cpu/1")
    (d / "simple_metrics.csv.gz").write_bytes(gzip.compress(c.metrics.to_csv(index=False).encode()))
    (d / "inject_time.txt").unlink()  # the compressed file alone makes the folder a case: said, never skipped
    r = CliRunner().invoke(app, ["dataset", "validate", str(tmp_path / "RE2-OB")], terminal_width=400)
    assert r.exit_code == 1 and "no inject_time.txt in the case folder" in r.output, r.output
    (d / "simple_metrics.csv.gz").unlink()
    (d / "data.csv").write_bytes(gzip.compress(c.metrics.to_csv(index=False).encode()))  # compressed bytes under a plain name
    (d / "inject_time.txt").write_text(f"{int(c.inject_time)}\n")
    case = read_case(d)
    assert case.metrics.shape == c.metrics.shape and "data.csv: gzip-compressed; decompressed (" in _notes(case)


def test_compressed_metrics_that_cannot_be_read_say_why(tmp_path: Path) -> None:
    d, c = _case(tmp_path)
    raw = c.metrics.to_csv(index=False).encode()
    two = _pack("zip", raw, member="data.csv")
    import io
    import zipfile

    buf = io.BytesIO(two)
    with zipfile.ZipFile(buf, "a") as zf:
        zf.writestr("notes.txt", b"x")
    (d / "data.csv.zip").write_bytes(buf.getvalue())
    assert "data.csv.zip is a zip archive of 2 files (data.csv, notes.txt); a case file must be one CSV" in _problems(d)
    (d / "data.csv.zip").unlink()
    (d / "data.csv.xz").write_bytes(_pack("xz", raw)[:-20])  # cut off
    assert "data.csv.xz is xz-compressed but cannot be decompressed (" in _problems(d)


def _zip_flagged(raw: bytes, *, flag: int = 0, method: int | None = None) -> bytes:
    """A one-file zip archive whose headers claim encryption (general-purpose flag bit 0) or another
    compression method (APPNOTE 4.4.4 / 4.4.5): the local header and the central directory entry patched."""
    import struct

    z = bytearray(_pack("zip", raw, member="data.csv"))
    for sig, flag_at in ((b"PK\x03\x04", 6), (b"PK\x01\x02", 8)):
        i = z.index(sig)
        struct.pack_into("<H", z, i + flag_at, struct.unpack_from("<H", z, i + flag_at)[0] | flag)
        if method is not None:
            struct.pack_into("<H", z, i + flag_at + 2, method)
    return bytes(z)


def _tar_gz(raw: bytes) -> bytes:
    import gzip
    import io
    import tarfile

    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tf:
        info = tarfile.TarInfo("data.csv")
        info.size = len(raw)
        tf.addfile(info, io.BytesIO(raw))
    return gzip.compress(buf.getvalue())


@pytest.mark.parametrize(
    ("packing", "said"),
    [
        ("encrypted", "data.csv.zip is an encrypted zip archive (data.csv needs a password); decrypt it"),
        ("deflate64", "data.csv.zip is a zip archive compressed with deflate64, which is not read; unzip it"),
        ("empty", "data.csv.zip is a zip archive of 0 files; a case file must be one CSV"),
        ("tar.gz", "data.csv.gz is gzip-compressed and holds a tar archive, not CSV text; extract it (tar -xf)"),
        ("tar", "data.csv is a tar archive, not CSV text; extract it (tar -xf)"),
        ("twice", "data.csv.gz is gzip-compressed and what it holds is gzip-compressed again; decompress it until it is CSV text"),
    ],
)
def test_archives_that_are_no_single_compressed_csv_say_what_they_are(tmp_path: Path, packing: str, said: str) -> None:
    """Every archive the reader cannot take is a problem naming the file and what to do (rank exits 2
    with it; never an unexpected error)."""
    import gzip
    import io
    import tarfile
    import zipfile

    d, c = _case(tmp_path)
    raw = c.metrics.to_csv(index=False).encode()
    if packing == "encrypted":
        (d / "data.csv.zip").write_bytes(_zip_flagged(raw, flag=0x1))
    elif packing == "deflate64":
        (d / "data.csv.zip").write_bytes(_zip_flagged(raw, method=9))
    elif packing == "empty":
        buf = io.BytesIO()
        zipfile.ZipFile(buf, "w").close()
        assert buf.getvalue().startswith(b"PK\x05\x06")
        (d / "data.csv.zip").write_bytes(buf.getvalue())
    elif packing == "tar.gz":
        (d / "data.csv.gz").write_bytes(_tar_gz(raw))
    elif packing == "tar":
        (d / "data.csv").write_bytes(gzip.decompress(_tar_gz(raw)))
        assert tarfile.is_tarfile(d / "data.csv")
    else:
        (d / "data.csv.gz").write_bytes(gzip.compress(gzip.compress(raw)))
    assert said in _problems(d)
    r = CliRunner().invoke(app, ["rank", str(d), "--method", "nsigma"], terminal_width=400)
    assert r.exit_code == 2 and said in " ".join(r.output.split()) and "unexpected" not in r.output, r.output


def test_a_zip_member_s_name_is_shown_as_written_and_escaped(tmp_path: Path) -> None:
    """A UTF-8 name without the zip's UTF-8 flag (Info-ZIP, macOS) is shown as written, not as cp437
    mojibake; control characters in a name are escaped, never sent to the terminal."""
    import io
    import struct
    import zipfile

    d, c = _case(tmp_path)
    raw = c.metrics.to_csv(index=False).encode()
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        zf.writestr("données.csv", raw)
    z = bytearray(buf.getvalue())
    for sig, at in ((b"PK\x03\x04", 6), (b"PK\x01\x02", 8)):  # clear the UTF-8 flag (bit 11) as those tools write it
        i = z.index(sig)
        struct.pack_into("<H", z, i + at, struct.unpack_from("<H", z, i + at)[0] & ~0x800)
    (d / "data.csv.zip").write_bytes(bytes(z))
    assert "data.csv.zip: zip-compressed (its one file données.csv); decompressed (" in _notes(read_case(d))
    (d / "data.csv.zip").write_bytes(_pack("zip", raw, member="x\x1b[31mred.csv"))
    notes = _notes(read_case(d))
    assert "(its one file 'x\\x1b[31mred.csv')" in notes and "\x1b" not in notes


def test_a_plain_file_under_a_compressed_name_is_read_with_a_note(tmp_path: Path) -> None:
    d, c = _case(tmp_path)
    (d / "data.csv.gz").write_text(c.metrics.to_csv(index=False))  # a .gz that was never compressed
    (d / "case.json.gz").write_bytes(b"\x1f\x8b")  # case.json is read only plain: said, not silently ignored
    case = read_case(d)
    assert case.metrics.shape == c.metrics.shape
    assert "data.csv.gz: named like a compressed file but holds plain bytes; read as it is" in _notes(case)
    assert "warning: not read: case.json.gz: case.json is read only as plain JSON; decompress it" in _notes(case)


def test_plain_and_compressed_copies_side_by_side_warn_and_import_keeps_both(tmp_path: Path) -> None:
    """data.csv is read; data.csv.gz beside it (perhaps other data) is said to be unread every time, and
    an import keeps it as it is instead of dropping it."""
    import gzip

    d, c = _case(tmp_path / "src")
    c.metrics.to_csv(d / "data.csv", index=False)
    other = gzip.compress(c.metrics.iloc[:40].to_csv(index=False).encode())
    (d / "data.csv.gz").write_bytes(other)
    case = read_case(d)
    assert len(case.metrics) == len(c.metrics)
    want = "warning: not read: data.csv.gz: data.csv is in the folder too and is read instead"
    assert sum(want in n for n in case.meta["normalised"]) == 1
    r = CliRunner().invoke(app, ["dataset", "validate", str(tmp_path / "src")], terminal_width=400)
    assert r.exit_code == 0 and "ray-worker-1_cpu/1: warning: not read: data.csv.gz" in r.output and "repaired" not in r.output, r.output
    r = CliRunner().invoke(app, ["dataset", "import", str(tmp_path / "src"), str(tmp_path / "out")], terminal_width=400)
    assert r.exit_code == 0, r.output
    out = tmp_path / "out" / "ray-worker-1_cpu" / "1"
    assert (out / "data.csv.gz").read_bytes() == other and "ray-worker-1_cpu/1: data.csv.gz was not read; an import copies it as it is" in r.output
    assert "repaired" not in r.output  # a copy is no repair, and nothing about it goes into case.json
    import json

    assert not any("data.csv.gz" in n for n in json.loads((out / "case.json").read_text())["normalised"])
    (d / "data.csv.gz").unlink()  # a link is said to be one: an import copies it only when it points inside the dataset
    (tmp_path / "elsewhere.gz").write_bytes(other)
    (d / "data.csv.gz").symlink_to(tmp_path / "elsewhere.gz")
    assert "data.csv.gz is a link: an import copies it only when it points inside the dataset" in _notes(read_case(d))
    (d / "data.csv.gz").unlink()
    (d / "data.csv.gz").write_bytes(other)
    (d / "data.csv").unlink()
    (d / "data.csv.zip").write_bytes(_pack("zip", c.metrics.to_csv(index=False).encode(), member="data.csv"))
    assert "warning: not read: data.csv.zip: data.csv.gz is in the folder too and is read instead" in _notes(read_case(d, validate=False))  # two copies: one read


def test_logs_that_cannot_be_read_are_copied_by_an_import_not_dropped(tmp_path: Path) -> None:
    raw = b"\x28\xb5\x2f\xfd" + b"\x00" * 32  # zstd: not read here, maybe by the user's other tools
    d, _ = _with_logs(tmp_path / "src", raw)
    (d / "traces.csv.xz").write_bytes(b"\xfd7zXZ\x00" + b"\x01" * 40)  # damaged
    r = CliRunner().invoke(app, ["dataset", "import", str(tmp_path / "src"), str(tmp_path / "out")], terminal_width=400)
    assert r.exit_code == 0, r.output
    out = tmp_path / "out" / "ray-worker-1_memory" / "1"
    assert (out / "logs.csv").read_bytes() == raw and (out / "traces.csv.xz").exists()
    assert "logs.csv was not read; an import copies it as it is" in r.output
    case = read_case(out)  # the imported case says again why its logs are not used
    assert case.logs is None and "logs.csv is zstd-compressed, which is not read" in _notes(case)
    r = CliRunner().invoke(app, ["dataset", "validate", str(tmp_path / "out")], terminal_width=400)
    assert "ray-worker-1_memory/1: warning: not used: logs.csv is zstd-compressed" in r.output, r.output
    (out / "logs.csv").unlink()  # the user removes (or fixes) the file: nothing stale is said of it
    assert "logs.csv" not in _notes(read_case(out))


def test_a_case_json_naming_a_file_that_is_there_compressed_says_so(tmp_path: Path) -> None:
    import gzip
    import json

    from llmrca.dataset.io import write_case

    c = make_case(root="ray-worker-1", fault="cpu", seed=0, with_logs=False, with_traces=False)
    d = write_case(c, tmp_path / "ray-worker-1_cpu" / "1")
    (d / "data.csv.gz").write_bytes(gzip.compress((d / "data.csv").read_bytes()))
    (d / "data.csv").unlink()
    problems = _problems(d)
    assert "names 'data.csv', which does not exist in the case folder; 'data.csv.gz' is there: decompress it" in problems
    assert problems.count("names 'data.csv'") == 1
    spec = json.loads((d / "case.json").read_text())
    spec["metric_sets"]["basic"] = "data.csv.gz"  # as the advice says: named, it is read
    (d / "case.json").write_text(json.dumps(spec))
    assert read_case(d).metrics.shape == c.metrics.shape


def test_compressed_side_files_are_named_as_they_are(tmp_path: Path) -> None:
    """mpg.csv.gz, an RCD pair of .gz files and inject_time.txt.gz are read, each note naming the file read."""
    import gzip

    d, c = _case(tmp_path)
    (d / "data.csv.bz2").write_bytes(_pack("bzip2", c.metrics.to_csv(index=False).encode()))
    (d / "inject_time.txt").unlink()
    (d / "inject_time.txt.gz").write_bytes(gzip.compress(f"{int(c.inject_time)}\n".encode()))
    edges = pd.DataFrame({"source": ["nginx-gateway", "ray-head"], "destination": ["ray-head", "ray-worker-1"]})
    (d / "mpg.csv.gz").write_bytes(gzip.compress(edges.to_csv().encode()))
    case = read_case(d)
    assert case.inject_time == pytest.approx(c.inject_time) and case.topology is not None
    notes = _notes(case)
    assert "inject_time.txt.gz: gzip-compressed; decompressed (" in notes
    assert "mpg.csv.gz: gzip-compressed; decompressed (" in notes and "call graph read from mpg.csv.gz (2 edges)" in notes
    r, normal, anomalous, rc = _rcd(tmp_path / "rcd")
    (r / "normal.csv.gz").write_bytes(gzip.compress(normal.to_csv(index=False).encode()))
    (r / "anomalous.csv.gz").write_bytes(gzip.compress(anomalous.to_csv(index=False).encode()))
    case = read_case(r)
    assert case.inject_time == pytest.approx(rc.inject_time)
    assert f"RCD layout: normal.csv.gz ({len(normal)} rows) + anomalous.csv.gz ({len(anomalous)} rows)" in _notes(case)
    (r / "inject_time.txt").write_text(f"{int(rc.inject_time) - 100}\n")  # a second, other injection time
    assert f"inject_time.txt says {rc.inject_time - 100} s but the RCD pair's injection time, its first anomalous row, is {rc.inject_time} s" in _problems(r)
    (d / "inject_time.txt").write_text(f"{int(c.inject_time) - 60}\n")  # beside inject_time.txt.gz: the plain one is read
    assert "warning: not read: inject_time.txt.gz: inject_time.txt is in the folder too" in _notes(read_case(d))
    res = CliRunner().invoke(app, ["dataset", "import", str(tmp_path / "ray-worker-1_cpu"), str(tmp_path / "imp")], terminal_width=400)
    assert res.exit_code == 0 and (tmp_path / "imp" / "1" / "inject_time.txt.gz").exists(), res.output


def test_decompression_is_bounded() -> None:
    """A small archive that expands past the cap is refused; decompression stops just past the cap."""
    import gzip

    from llmrca.dataset.io import decompress_bounded

    bomb = gzip.compress(b"0" * 1_000_000)
    assert len(bomb) < 2_000
    with pytest.raises(CaseValidationError, match=r"data\.csv\.gz decompresses to more than 65536 bytes"):
        decompress_bounded(bomb, "data.csv.gz", 65536)
    assert decompress_bounded(bomb, "data.csv.gz", 1_000_000) == (b"0" * 1_000_000, "gzip")
    assert decompress_bounded(b"time,a_cpu\n", "data.csv", 10) == (b"time,a_cpu\n", None)  # plain text: as it is
    many = gzip.compress(b"0" * 40_000) + gzip.compress(b"1" * 40_000)  # two members (cat a.gz b.gz, pigz): bounded too
    with pytest.raises(CaseValidationError, match="decompresses to more than 65536 bytes"):
        decompress_bounded(many, "data.csv.gz", 65536)


def test_gzip_members_one_after_another_and_trailing_padding_are_read_as_gzip_d_reads_them() -> None:
    import gzip

    from llmrca.dataset.io import decompress_bounded

    a, b = b"time,a_cpu\n1,2\n", b"3,4\n"
    notes: list[str] = []
    assert decompress_bounded(gzip.compress(a) + gzip.compress(b), "data.csv.gz", 1000, notes)[0] == a + b
    assert notes == ["data.csv.gz: gzip-compressed; decompressed (19 bytes)"]
    notes.clear()
    assert decompress_bounded(gzip.compress(a) + b"\0" * 512, "data.csv.gz", 1000, notes)[0] == a  # tape/block padding
    assert notes[0] == "warning: trailing bytes: data.csv.gz: 512 byte(s) after the end of the gzip data were ignored (padding or garbage)"
    with pytest.raises(CaseValidationError, match="cut off"):
        decompress_bounded(gzip.compress(a)[:-3], "data.csv.gz", 1000)


# -- chaosmesh-inject-time / epoch-ms-time: how the injection time is written ------------------------


@pytest.mark.parametrize(
    ("text", "note"),
    [
        ('"2023-11-14T22:18:20Z"\n', "inject_time.txt: the quotes around '\"2023-11-14T22:18:20Z\"' were removed"),  # jq without -r
        ("'1700000300000'\r\n", "inject_time.txt: 1700000300000 is in epoch milliseconds (by magnitude); converted to seconds (1700000300.0)"),
        ("2023-11-15T03:48:20+05:30\n", "inject_time.txt: date-time '2023-11-15T03:48:20+05:30' converted to epoch seconds 1700000300.0"),
        (" 1700000300.0 \n\n", None),
    ],
)
def test_injection_time_written_in_other_ways(tmp_path: Path, text: str, note: str | None) -> None:
    d, c = _case(tmp_path)
    c.metrics.to_csv(d / "data.csv", index=False)
    (d / "inject_time.txt").write_text(text)
    case = read_case(d)
    assert case.inject_time == pytest.approx(1_700_000_300.0)
    if note:
        assert note in _notes(case)


@pytest.mark.parametrize("encoding", ["utf-16", "utf-16-le", "utf-16-be", "utf-32"])
@pytest.mark.parametrize("gz", [False, True])
def test_injection_time_in_utf16_is_read_and_a_compressed_file_is_named_as_it_is(tmp_path: Path, encoding: str, gz: bool) -> None:
    """PowerShell's `> inject_time.txt` writes UTF-16: it was refused as '\\ufffd\\ufffd1\\x007...'; and a message
    about inject_time.txt.gz called it inject_time.txt."""
    import gzip

    d, c = _case(tmp_path)
    c.metrics.to_csv(d / "data.csv", index=False)
    raw = "1700000300\r\n".encode(encoding)
    name = "inject_time.txt.gz" if gz else "inject_time.txt"
    (d / "inject_time.txt").unlink(missing_ok=True)
    (d / name).write_bytes(gzip.compress(raw) if gz else raw)
    case = read_case(d)
    assert case.inject_time == pytest.approx(1_700_000_300.0)
    assert f"{name}: read as {encoding.upper()} text (save it as UTF-8)" in _notes(case)
    (d / name).write_bytes(gzip.compress(b"garbage") if gz else b"garbage")
    assert f"{name} holds 'garbage', not a number" in _problems(d)


@pytest.mark.parametrize(("offset", "by"), [(5.5, "+5 h 30 min"), (5.75, "+5 h 45 min"), (-3.5, "-3 h 30 min"), (2, "+2 h")])
def test_half_and_quarter_hour_time_zone_shift_is_named(tmp_path: Path, offset: float, by: str) -> None:
    d, c = _case(tmp_path)
    c.metrics.to_csv(d / "data.csv", index=False)
    (d / "inject_time.txt").write_text(f"{int(c.inject_time - offset * 3600)}\n")
    assert f"moved by {by} it falls inside the data: this looks like a time-zone shift" in _problems(d)


@pytest.mark.parametrize("where", ["before", "after"])
def test_injection_outside_the_data_is_a_clear_error_at_every_command(tmp_path: Path, where: str) -> None:
    d, c = _case(tmp_path)
    m = c.metrics.assign(time=(c.metrics["time"] * 1000).astype("int64"))  # ms data, ms injection time
    m.to_csv(d / "data.csv", index=False)
    inject = c.metrics["time"].iloc[0] - 86_400 if where == "before" else c.metrics["time"].iloc[-1] + 3 * 86_400
    (d / "inject_time.txt").write_text(f"{int(inject * 1000)}\n")
    runner = CliRunner()
    for args in (["dataset", "validate", str(tmp_path)], ["rank", str(d), "--method", "nsigma"]):
        r = runner.invoke(app, args)
        out = " ".join(r.output.split())
        assert r.exit_code != 0 and "Traceback" not in out
        assert r.exception is None or isinstance(r.exception, SystemExit)  # a message, not a crash
        assert f"injection time {inject} is outside the data (1700000000.0 .. 1700000355.0)" in out
        assert "inject_time.txt" in out


# -- rcd-normal-anomalous: the pair written differently ------------------------------------------------


def _rcd(tmp_path: Path, folder: str = "sock-shop-data/carts-cpu/1"):
    c = make_case(root="ray-worker-1", fault="cpu", seed=3, with_logs=False, with_traces=False)
    m = c.metrics.rename(columns=lambda x: x.replace("ray-worker-1_", "carts_"))
    d = tmp_path / folder
    d.mkdir(parents=True)
    k = int((m["time"] < c.inject_time).sum())
    return d, m.iloc[:k], m.iloc[k:], c


def test_rcd_pair_without_time_names_the_layout(tmp_path: Path) -> None:
    d, normal, anomalous, _ = _rcd(tmp_path)
    normal.drop(columns="time").to_csv(d / "normal.csv", index=False)
    anomalous.drop(columns="time").to_csv(d / "anomalous.csv", index=False)
    problems = _problems(d)
    assert problems.startswith("RCD layout: normal.csv and anomalous.csv have no 'time' column, so the injection time (the first anomalous row)")
    assert "no inject_time.txt" not in problems and "normal.csv+anomalous.csv" not in problems
    assert problems.count("no 'time' column") == 1


def test_rcd_half_pair_is_said_once(tmp_path: Path) -> None:
    d, _, anomalous, _ = _rcd(tmp_path)
    anomalous.to_csv(d / "anomalous.csv", index=False)
    problems = _problems(d)
    assert "has anomalous.csv but no normal.csv: the RCD layout needs both" in problems and "no inject_time.txt" not in problems


@pytest.mark.parametrize("time_as", ["ms", "iso"])
def test_rcd_pair_with_ms_or_iso_time(tmp_path: Path, time_as: str) -> None:
    d, normal, anomalous, c = _rcd(tmp_path)
    conv = (lambda t: (t * 1000).astype("int64")) if time_as == "ms" else (lambda t: pd.to_datetime(t, unit="s").dt.strftime("%Y-%m-%dT%H:%M:%SZ"))
    normal.assign(time=conv(normal["time"])).to_csv(d / "normal.csv", index=False)
    anomalous.assign(time=conv(anomalous["time"])).to_csv(d / "anomalous.csv", index=False)
    case = read_case(d)
    assert case.inject_time == pytest.approx(c.inject_time) and len(case.metrics) == len(c.metrics)
    assert f"RCD layout: normal.csv ({len(normal)} rows) + anomalous.csv ({len(anomalous)} rows); injection time = first anomalous row ({c.inject_time})" in _notes(case)
    assert rank_case(d, "nsigma").ranking.components[0] == "carts"


# -- rcaeval-re2-traces-ms: span columns spelled the OpenTelemetry way ------------------------------


def test_opentelemetry_span_columns_are_read_and_trace_methods_run(tmp_path: Path) -> None:
    d, c = _case(tmp_path, "ray-worker-1_delay/1", fault="network", with_traces=True)
    c.metrics.to_csv(d / "data.csv", index=False)
    tr = c.traces.rename(columns={"traceID": "trace_id", "spanID": "span_id", "parentSpanID": "parent_span_id", "serviceName": "service_name"})
    tr["start_time_unix_nano"] = tr.pop("startTime").astype("int64") * 1000
    tr["duration_ns"] = tr.pop("duration") * 1000
    tr.to_csv(d / "traces.csv", index=False)
    case = read_case(d)
    assert len(case.traces) == len(c.traces)
    assert case.traces["startTime"].iloc[0] == pytest.approx(c.traces["startTime"].iloc[0])
    assert case.traces["duration"].iloc[0] == pytest.approx(c.traces["duration"].iloc[0])
    assert "traces.csv: columns ['parent_span_id', 'service_name', 'span_id', 'trace_id'] read as ['parentSpanID', 'serviceName', 'spanID', 'traceID']" in _notes(case)
    assert "span start taken from 'start_time_unix_nano' in nanoseconds" in _notes(case)
    out = rank_case(d, "microrank")
    assert out.ranking.components[0] == "ray-worker-1"


# -- rcaeval-fault-types: fault labels with parameters, and labels of their own ----------------------


@pytest.mark.parametrize(
    ("label", "fault", "noted"),
    [
        ("cpu_stress_100", "cpu", True),
        ("mem-leak", "memory", False),  # a spelling of its own (FAULT_ALIASES)
        ("memory-leak-500mb", "memory", True),
        ("network-delay-100ms", "network", True),
        ("gpu-throttle-50", "gpu", True),
        ("MEM", "memory", False),
        ("f3", "f3", False),
        ("pod-kill", "pod-kill", False),
        ("disk", "disk", False),
        # a known spelling with '_' for '-', and Chaos Mesh's NetworkChaos 'loss' written after 'network'
        ("network_loss", "packet-loss", False),
        ("network-loss", "packet-loss", False),
        ("net-loss-10", "packet-loss", True),
        ("gpu-xid", "gpu-error", False),
        ("cpu-stress-workers-4", "cpu", True),
        ("memory-pressure", "memory", True),
        # another kind of fault that starts with a known word keeps its own column (not the delay or power fault)
        ("network-partition", "network-partition", False),
        ("network-corrupt", "network-corrupt", False),
        ("network_bandwidth", "network-bandwidth", False),
        # one kind of fault of its own is one type whatever its separator and parameters
        ("network_partition", "network-partition", False),
        ("network-corrupt-5pct", "network-corrupt", False),
        ("gpu-ecc", "gpu-ecc", False),
    ],
)
def test_fault_label_with_parameters_is_read_by_its_leading_part(tmp_path: Path, label: str, fault: str, noted: bool) -> None:
    d, c = _case(tmp_path, f"ray-worker-1_{label}/1")
    c.metrics.to_csv(d / "data.csv", index=False)
    case = read_case(d)
    assert case.fault_type == fault and case.root_causes == {"ray-worker-1"}
    note = f"the folder name's fault label {label!r} was read as fault {fault!r} (its leading part)"
    assert (note in _notes(case)) is noted


@pytest.mark.parametrize(
    ("folder", "comp", "fault"),
    [("carts-db-network-loss", "carts-db", "packet-loss"), ("carts-db-memory-leak", "carts-db", "memory"),
     ("front-end-gpu-throttle", "front-end", "gpu"), ("orders-cpu", "orders", "cpu"),
     ("orders-db-network-loss-10pct", "orders-db", "packet-loss"), ("orders-db-cpu-stress-100", "orders-db", "cpu")],
)
def test_a_hyphenated_folder_splits_at_the_longest_known_fault_suffix(tmp_path: Path, folder: str, comp: str, fault: str) -> None:
    d, c = _case(tmp_path, f"{folder}/1")
    c.metrics.rename(columns=lambda k: k.replace("ray-worker-1_", f"{comp}_")).to_csv(d / "data.csv", index=False)
    case = read_case(d)
    assert case.fault_type == fault and case.root_causes == {comp}


def test_fault_labels_with_parameters_share_the_fault_column_in_table1(tmp_path: Path) -> None:
    for i, label in enumerate(["cpu", "cpu_stress_100", "f3"]):
        d, c = _case(tmp_path / "ds", f"ray-worker-1_{label}/1", seed=i)
        c.metrics.to_csv(d / "data.csv", index=False)
    r = CliRunner().invoke(app, ["evaluate", str(tmp_path / "ds"), "--methods", "nsigma", "--jobs", "1", "--out", str(tmp_path / "out")])
    assert r.exit_code == 0, r.output
    head = (tmp_path / "out" / "table1.md").read_text().splitlines()[0]
    assert "| CPU AC@1 |" in head and "| F3 AC@1 |" in head and "CPU_STRESS" not in head
    row = next(ln for ln in (tmp_path / "out" / "summary.csv").read_text().splitlines() if ln.startswith("nsigma,cpu,"))
    assert row.split(",")[2] == "2"  # both CPU cases scored under cpu


# -- spreadsheet and exporter habits in data.csv --------------------------------------------------------


@pytest.mark.parametrize("sep", [";", "\t"])
def test_decimal_comma_with_a_semicolon_or_tab_delimiter_is_read(tmp_path: Path, sep: str) -> None:
    d, c = _case(tmp_path)
    (d / "data.csv").write_text(c.metrics.to_csv(index=False, sep=sep, decimal=","))
    case = read_case(d)
    assert case.metrics.shape == c.metrics.shape
    assert case.metrics["ray-worker-1_cpu"].to_numpy() == pytest.approx(c.metrics["ray-worker-1_cpu"].to_numpy())
    assert f"data.csv: numbers use ',' as the decimal point (the fields are separated by {sep!r}); read as such" in _notes(case)
    assert rank_case(d, "nsigma").ranking.components[0] == "ray-worker-1"


def test_decimal_comma_with_thousands_points_stays_refused(tmp_path: Path) -> None:
    d, c = _case(tmp_path)
    m = c.metrics.copy()
    m["ray-worker-1_mem"] = ["1.234,5"] * len(m)
    (d / "data.csv").write_text(m.to_csv(index=False, sep=";", decimal=","))
    problems = _problems(d)  # a '.' between digits: thousands points or decimal points? not guessed
    # the cause is said first, with where it is; then the columns it left as text
    assert problems.startswith("data.csv: numbers are written with a decimal comma, but a number also holds a '.' (line 2: '1.234,5'")
    assert "data.csv: column 'nginx-gateway_cpu' holds numbers written as text (e.g. '" in problems
    assert "'.' as decimal point, no thousands separators" in problems


def test_decimal_comma_is_read_when_the_time_column_holds_dotted_date_times(tmp_path: Path) -> None:
    """`2025-06-15T15:06:40.000Z` holds a '.' between digits but is no number: it does not stop a ';' file's
    decimal commas from being read."""
    d, c = _case(tmp_path)
    m = c.metrics.copy()
    m["time"] = pd.to_datetime(m["time"], unit="s", utc=True).dt.strftime("%Y-%m-%dT%H:%M:%S.000Z")
    (d / "data.csv").write_text(m.to_csv(index=False, sep=";", decimal=","))
    case = read_case(d)
    assert case.metrics["ray-worker-1_cpu"].to_numpy() == pytest.approx(c.metrics["ray-worker-1_cpu"].to_numpy())
    assert "data.csv: numbers use ',' as the decimal point (the fields are separated by ';'); read as such" in _notes(case)


def test_every_line_ending_with_the_delimiter_is_read(tmp_path: Path) -> None:
    d, c = _case(tmp_path)
    (d / "data.csv").write_text("\n".join(ln + "," for ln in c.metrics.to_csv(index=False).splitlines()) + "\n")
    case = read_case(d)
    assert list(case.metrics.columns) == list(c.metrics.columns) and len(case.metrics) == 72
    assert "data.csv: every line ends with ',' (an empty last column); the empty column was ignored" in _notes(case)


@pytest.mark.parametrize("name", ["timestamp", "Time", "ts"])
def test_a_time_column_under_another_name_is_read(tmp_path: Path, name: str) -> None:
    d, c = _case(tmp_path)
    c.metrics.rename(columns={"time": name}).to_csv(d / "data.csv", index=False)
    case = read_case(d)
    assert case.metrics["time"].iloc[-1] == pytest.approx(c.metrics["time"].iloc[-1])
    assert f"data.csv: no 'time' column; {name!r} was read as 'time'" in _notes(case)


def test_two_time_like_columns_without_time_are_not_guessed(tmp_path: Path) -> None:
    d, c = _case(tmp_path)
    c.metrics.rename(columns={"time": "timestamp"}).assign(ts=c.metrics["time"]).to_csv(d / "data.csv", index=False)
    assert "no 'time' column" in _problems(d)


def test_unsorted_rows_name_the_real_time_range(tmp_path: Path) -> None:
    d, c = _case(tmp_path)
    c.metrics.sample(frac=1, random_state=0).to_csv(d / "data.csv", index=False)
    (d / "inject_time.txt").write_text("1700009999\n")
    problems = _problems(d)
    assert "'time' is not increasing" in problems
    assert "injection time 1700009999.0 is outside the data (1700000000.0 .. 1700000355.0)" in problems


def test_a_component_name_with_underscores_is_refused_not_merged(tmp_path: Path) -> None:
    """`ray_worker_1_cpu/1` with `ray_worker_1_*` / `ray_worker_2_*` columns: split at the first '_' both workers
    would be one component 'ray' and any answer 'ray' a hit; the case is refused with the rename to make."""
    from llmrca.dataset.validate import validate_dataset

    case = tmp_path / "ds" / "ray_worker_1_cpu" / "1"
    case.mkdir(parents=True)
    n = 72
    rng = np.random.default_rng(0)
    d = {"time": 1750000000 + 5 * np.arange(n)}
    for c in ("ray_worker_1", "ray_worker_2", "nginx-gateway"):
        d[f"{c}_cpu"] = rng.normal(1, 0.05, n)
    d["ray_worker_1_cpu"][50:] += 3
    pd.DataFrame(d).to_csv(case / "data.csv", index=False)
    (case / "inject_time.txt").write_text(str(1750000000 + 5 * 50))
    check = validate_dataset(tmp_path / "ds")
    assert check.valid == []
    [[problem]] = check.problems.values()
    assert "name the component 'ray_worker_1', which holds '_'" in problem and "(e.g. 'ray-worker-1')" in problem
    # renamed as it says, the case is read, with the worker as the root cause
    fixed = tmp_path / "ok" / "ray-worker-1_cpu" / "1"
    fixed.mkdir(parents=True)
    pd.DataFrame(d).rename(columns=lambda c: c.replace("ray_worker_", "ray-worker-")).to_csv(fixed / "data.csv", index=False)
    (fixed / "inject_time.txt").write_text(str(1750000000 + 5 * 50))
    check = validate_dataset(tmp_path / "ok")
    assert check.valid == ["ray-worker-1_cpu/1"] and not check.problems


def test_cases_are_compared_by_their_columns_not_by_a_header_the_reader_repairs(tmp_path: Path) -> None:
    """A ';'-separated file, a trailing comma and a `timestamp` header hold the same columns as their plain
    neighbours once read: no "cases are not alike" warning; a case with a real extra column still gets one."""
    from llmrca.dataset.validate import validate_dataset

    n = 72
    t = 1750000000 + 5 * np.arange(n)
    rng = np.random.default_rng(1)
    frame = pd.DataFrame({"time": t, **{f"{c}_cpu": rng.normal(1, 0.05, n) for c in ("ray-worker-1", "ray-worker-2")}})
    frame.loc[50:, "ray-worker-1_cpu"] += 3

    def case(rep: int, text: str) -> None:
        d = tmp_path / "ds" / "ray-worker-1_cpu" / str(rep)
        d.mkdir(parents=True)
        (d / "data.csv").write_text(text)
        (d / "inject_time.txt").write_text(str(int(t[50])))

    plain = frame.to_csv(index=False)
    case(1, plain)
    case(2, plain)
    case(3, frame.to_csv(index=False, sep=";"))
    case(4, "\n".join(line + "," for line in plain.splitlines()) + "\n")
    case(5, plain.replace("time,", "timestamp,", 1))
    case(7, frame.assign(**{"ray-head_pod_name": "ray-head-7d9f"}).to_csv(index=False))  # an identity column the reader drops
    check = validate_dataset(tmp_path / "ds")
    assert len(check.valid) == 6 and "dataset" not in check.warnings, check.warnings
    case(6, frame.assign(**{"ray-worker-2_mem": 1.0}).to_csv(index=False))
    check = validate_dataset(tmp_path / "ds")
    [warning] = check.warnings["dataset"]
    assert "1 case(s) such as ray-worker-1_cpu/6 differ from them: 1 more column(s) (e.g. ray-worker-2_mem)" in warning


def test_logs_with_a_ts_column_are_read_as_data_csv_s_time_is(tmp_path: Path) -> None:
    """logs.csv whose time column is `ts` (as data.csv may have it): read as 'time', with a note; not 'not used'."""
    logs = make_case(root="ray-worker-1", fault="memory", seed=0, with_logs=True).logs
    d, c = _with_logs(tmp_path, logs.rename(columns={"time": "ts"}).to_csv(index=False).encode())
    case = read_case(d)
    assert case.logs is not None and len(case.logs) == len(c.logs)
    assert case.logs["time"].to_numpy() == pytest.approx(c.logs["time"].to_numpy())
    assert "logs.csv: no 'time' column; 'ts' was read as 'time'" in _notes(case)


# -- spreadsheet / database exports: missing values spelled as words -----------------------------------


def test_missing_values_spelled_as_words_are_read_as_missing_with_a_note(tmp_path: Path) -> None:
    d, c = _case(tmp_path)
    df = c.metrics.copy()
    col = next(x for x in df.columns if x != "time")
    text = df.to_csv(index=False).splitlines()
    head = text[0].split(",")
    j = head.index(col)
    for i, word in ((3, "n/a"), (4, '"null"'), (5, "#N/A"), (6, "n/a")):
        cells = text[i].split(",")
        cells[j] = word
        text[i] = ",".join(cells)
    (d / "data.csv").write_text("\n".join(text) + "\n")
    case = read_case(d)
    assert case.metrics[col].isna().sum() == 4 and case.metrics[col].iloc[[2, 3, 4, 5]].isna().all()
    assert "data.csv: 4 cell(s) spelled as a missing value ('n/a' ×2, 'null' ×1, '#N/A' ×1) were read as missing (NaN)" in _notes(case)
    c.metrics.to_csv(d / "data.csv", index=False)  # NaN as pandas writes it (empty) or Prometheus ('NaN'): no such note
    assert "spelled as a missing value" not in _notes(read_case(d))


def test_rank_json_failures_carry_the_status_the_evaluator_gives_and_the_case_s_warnings(tmp_path: Path) -> None:
    """A trace method on a case whose traces could not be used: status 'unavailable' (as evaluate records it)
    with the warning that says why; a path that does not exist is a usage error; output paths that are files
    are refused up front."""
    import gzip
    import json

    d, c = _case(tmp_path / "ds", with_traces=True)
    c.metrics.to_csv(d / "data.csv", index=False)
    raw = gzip.compress(c.traces.to_csv(index=False).encode())
    (d / "traces.csv.gz").write_bytes(raw[: len(raw) // 2])  # cut off: the case is used without traces
    r = CliRunner().invoke(app, ["rank", str(d), "-m", "tracerca", "--json", "-q"])
    got = json.loads(r.stdout)
    assert r.exit_code == 2 and (got["status"], got["error_kind"], got["case"]) == ("unavailable", "MethodUnavailable", "ray-worker-1_cpu/1"), got
    assert any(w.startswith("not used: traces.csv.gz is gzip-compressed but cannot be decompressed") for w in got["case_warnings"]), got
    r = CliRunner().invoke(app, ["rank", str(d), "-m", "tracerca", "-q"], terminal_width=1000)
    assert "warning: not used: traces.csv.gz" in r.stderr and "error: tracerca needs traces" in r.stderr, r.stderr
    r = CliRunner().invoke(app, ["rank", str(tmp_path / "nope"), "-m", "nsigma", "--json", "-q"])
    assert json.loads(r.stdout)["error_kind"] == "usage"
    (tmp_path / "afile").write_text("x\n")
    r = CliRunner().invoke(app, ["evaluate", str(tmp_path / "ds"), "--methods", "nsigma", "--out", str(tmp_path / "afile"), "-q"], terminal_width=1000)
    assert r.exit_code == 2 and f"--out {tmp_path / 'afile'}: {tmp_path / 'afile'} is a file; the output must be a folder" in r.output, r.output
    r = CliRunner().invoke(app, ["dataset", "import", str(tmp_path / "ds"), str(tmp_path / "afile" / "sub")], terminal_width=1000)
    assert r.exit_code == 2 and f"{tmp_path / 'afile'} is a file; the destination {tmp_path / 'afile' / 'sub'} must be a folder" in r.output, r.output
    r = CliRunner().invoke(app, ["rank", str(tmp_path / "ds" / "x_cpu" / "9"), "-m", "nsigma", "--json", "-q"])
    assert json.loads(r.stdout)["case"] == "x_cpu/9"  # named as a ranking names its case, even when missing


def test_the_extract_command_given_works_from_anywhere(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """validate printed `tar -xf ds/x.tar.gz` as typed: run as told from another folder, it extracted there, and
    validating ds again still found no case.  Now the command is absolute and extracts beside the archive."""
    import re
    import shlex
    import shutil
    import subprocess

    d, c = _case(tmp_path / "src")
    c.metrics.to_csv(d / "data.csv", index=False)
    ds = tmp_path / "ds"
    ds.mkdir()
    shutil.make_archive(str(ds / "cases"), "gztar", tmp_path / "src")
    monkeypatch.chdir(tmp_path)
    r = CliRunner().invoke(app, ["dataset", "validate", "ds"], terminal_width=1000)
    assert r.exit_code == 1, r.output
    cmd = re.search(r"extract it \((tar -xf [^)]*)\)", r.output)
    assert cmd is not None and str(ds) in cmd.group(1), r.output
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    subprocess.run(shlex.split(cmd.group(1)), cwd=elsewhere, check=True, timeout=60)
    assert list(elsewhere.iterdir()) == []
    r = CliRunner().invoke(app, ["dataset", "validate", "ds"], terminal_width=1000)
    assert r.exit_code == 0 and "1 valid case(s), 0 with problems" in r.output, r.output
    assert "cases.tar.gz" in r.output and "read only once extracted (then move the archive away" in r.output


def test_logs_and_traces_that_cannot_be_used_are_warnings_and_the_method_says_why(tmp_path: Path) -> None:
    """A logs.csv written with ';' was not sniffed (the metrics' is), a 0-byte logs.csv was silent, and a file the
    normaliser could not use was filed as a repair: rank --json had empty case_warnings and the method said only
    'this case has none'."""
    import json

    from llmrca.dataset.io import Dataset
    from llmrca.synthetic import make_case

    c = make_case(root="ray-worker-1", fault="cpu", seed=0, with_logs=True, with_traces=True)
    Dataset.write([c], tmp_path / "ds")
    d = tmp_path / "ds" / "ray-worker-1_cpu" / "1"
    logs = pd.read_csv(d / "logs.csv")
    logs.to_csv(d / "logs.csv", sep=";", index=False)
    pd.read_csv(d / "traces.csv").drop(columns=["serviceName"]).to_csv(d / "traces.csv", index=False)
    case = read_case(d)
    assert case.logs is not None and len(case.logs) == len(logs)  # sniffed as the metrics files are
    assert "logs.csv: the fields are separated by ';'" in _notes(case)
    got = json.loads(CliRunner().invoke(app, ["rank", str(d), "-m", "tracerca", "--json", "-q"]).stdout)
    assert got["status"] == "unavailable" and "none usable (traces.csv: no ['serviceName'] column(s)" in got["error"], got
    assert any(w.startswith("not used: traces.csv: no ['serviceName']") for w in got["case_warnings"]), got
    (d / "logs.csv").write_text("sep=;\n" + logs.to_csv(sep=";", index=False))  # Excel's delimiter hint line
    case = read_case(d)
    assert case.logs is not None and len(case.logs) == len(logs) and "logs.csv: the first line 'sep=;' is Excel's" in _notes(case)
    (d / "traces.csv").write_text("traceID,spanID,parentSpanID,serviceName,startTime,duration\n")  # a header, no span
    got = json.loads(CliRunner().invoke(app, ["rank", str(d), "-m", "tracerca", "--json", "-q"]).stdout)
    assert "none usable (traces.csv has a header but no rows" in got["error"], got
    (d / "logs.csv").write_bytes(b"")
    case = read_case(d)
    assert case.logs is None and "warning: not used: logs.csv is empty; the case is used without logs" in _notes(case)


@pytest.mark.parametrize("sep", [";", ",", "\t"])
def test_an_excel_delimiter_hint_line_is_removed_and_used(tmp_path: Path, sep: str) -> None:
    """A CSV saved by Excel with a first line 'sep=;' gave 7 cascading errors (fields, empty names, no 'time')."""
    d, c = _case(tmp_path)
    (d / "data.csv").write_text(f"sep={sep}\n" + c.metrics.to_csv(sep=sep, index=False))
    case = read_case(d)
    assert np.allclose(case.metrics.to_numpy(float), c.metrics.to_numpy(float))
    assert f"data.csv: the first line {'sep=' + sep!r} is Excel's delimiter hint" in _notes(case)


def test_prometheus_series_written_with_their_labels_are_named_by_their_pod(tmp_path: Path) -> None:
    """Columns like container_cpu_usage_seconds_total{pod="cart"} were refused (first with only 'root causes [...] are
    not components', later with how to rename them); the pod label names the component, so they are read as such."""
    d, c = _case(tmp_path)
    cols = [col for col in c.metrics.columns if col != "time"]
    ren = {col: f'{col.split("_", 1)[1].replace("-", "_")}{{namespace="llm",pod="{col.split("_", 1)[0]}"}}' for col in cols}
    c.metrics.rename(columns=ren).to_csv(d / "data.csv", index=False)
    case = read_case(d)
    assert list(case.metrics.columns) == ["time", *(f'{col.split("_", 1)[0]}_{col.split("_", 1)[1].replace("-", "_")}' for col in cols)]
    assert np.allclose(case.metrics.to_numpy(float), c.metrics.to_numpy(float), equal_nan=True)
    assert f"data.csv: named {len(ren)} column(s) written as Prometheus series by their component label" in _notes(case)


def test_a_series_column_already_named_by_its_component_keeps_that_name(tmp_path: Path) -> None:
    """orders_container_cpu_usage_seconds_total{pod="orders-7f9c"} was named by its pod ('orders-7f9c_orders_...'), so
    the root cause 'orders' had 'no metric column left'; the prefix is the component, the pod one of its pods."""
    d = tmp_path / "orders_cpu" / "1"
    d.mkdir(parents=True)
    t = 1750000000 + 5 * np.arange(72)
    rng = np.random.default_rng(0)
    frame = pd.DataFrame({"time": t, **{f'{svc}_container_cpu_usage_seconds_total{{pod="{svc}-7f9c",namespace="shop"}}':
                                        rng.normal(1, 0.05, 72) for svc in ("orders", "carts")}})
    frame.to_csv(d / "data.csv", index=False)
    (d / "inject_time.txt").write_text(str(int(t[50])))
    case = read_case(d)
    assert list(case.metrics.columns) == ["time", "orders_container_cpu_usage_seconds_total", "carts_container_cpu_usage_seconds_total"]
    assert set(case.root_causes) == {"orders"}


@pytest.mark.parametrize(
    ("header", "why"),
    [
        (['x{pod="ray-worker-1",le="0.5"}', 'x{pod="ray-worker-1",le="1"}'], "2 series are 'ray-worker-1_x' (they differ in the label le)"),
        (['x{job="ray"}'], "it has none of the labels pod, pod_name"),
        (['x{pod="ray_worker"}'], "its pod label 'ray_worker' contains '_'"),
        (['ray-worker-1_x', 'x{pod="ray-worker-1"}'], "the column 'ray-worker-1_x' exists already"),
        (['{container="carts",pod="carts-5f6d"}'], "label sets without a metric name"),  # a dashboard legend
        (["container_cpu_usage_seconds_total{}"], "end in an empty label set"),  # was read as component 'container'
    ],
)
def test_prometheus_series_that_cannot_be_named_say_why(tmp_path: Path, header: list[str], why: str) -> None:
    """A series column is named by its pod only when that is unambiguous; otherwise the problem says what stops it."""
    d, c = _case(tmp_path)
    df = c.metrics.copy()
    for col in header:
        df[col] = 1.0 + np.arange(len(df)) % 3
    df.to_csv(d / "data.csv", index=False)
    said = _problems(d)
    assert "without a metric name" in why or "empty label set" in why or "column(s) are Prometheus series written with their labels" in said, said
    assert why in said, said


def test_describe_reads_past_a_case_it_cannot_read(tmp_path: Path) -> None:
    """describe read only the first case and refused the whole dataset when that one had an unrelated problem
    (validate: 1 of 2 valid); a dataset of cases none of which can be read is described from a header."""
    import json

    bad, c = _case(tmp_path / "ds", "ray-worker-1_cpu/1")
    c.metrics.to_csv(bad / "data.csv", index=False)
    good, c2 = _case(tmp_path / "ds", "ray-worker-2_cpu/1", root="ray-worker-2")
    c2.metrics.to_csv(good / "data.csv", index=False)
    df = pd.read_csv(bad / "data.csv")
    pd.concat([df.iloc[:10], df.iloc[9:]]).to_csv(bad / "data.csv", index=False)  # a duplicated timestamp
    r = CliRunner().invoke(app, ["dataset", "describe", str(tmp_path / "ds")], terminal_width=300)
    assert r.exit_code == 0 and "not described: ray-worker-1_cpu/1: data.csv: 'time' has duplicated timestamps" in r.output, r.output
    assert "of 1 case(s) under" in " ".join(r.output.split()), r.output
    good.joinpath("data.csv").write_text((bad / "data.csv").read_text())  # no case readable: the header still tells
    r = CliRunner().invoke(app, ["dataset", "describe", str(tmp_path / "ds"), "--json"])
    out = json.loads(r.stdout)
    assert r.exit_code == 0 and out["skipped"][-1].startswith("no case could be read: the columns are those of") and out["kinds"], out
    (good / "data.csv").unlink()
    (bad / "data.csv").unlink()
    r = CliRunner().invoke(app, ["dataset", "describe", str(tmp_path / "ds"), "--json"])
    assert r.exit_code == 2 and json.loads(r.stdout)["status"] == "failed", r.output


def test_describe_from_a_header_names_prometheus_series_by_their_pod(tmp_path: Path) -> None:
    """With no case readable, describe read 'vllm:num_requests_running{pod="x"}' from the header as component
    'vllm:num', kind request_rate; the header is named as reading the case names it."""
    import json

    d, c = _case(tmp_path / "ds")
    t = c.metrics["time"]
    pd.DataFrame({"time": pd.concat([t.iloc[:10], t.iloc[9:]]).to_numpy(),  # a duplicated timestamp: unreadable
                  'vllm:num_requests_running{pod="ray-worker-1"}': 1.0}).to_csv(d / "data.csv", index=False)
    r = CliRunner().invoke(app, ["dataset", "describe", str(tmp_path / "ds"), "--json"])
    out = json.loads(r.stdout)
    assert r.exit_code == 0 and out["skipped"][-1].startswith("no case could be read"), r.output
    assert out["components"] == {"ray-worker-1": ["running"]}, out


def test_a_root_cause_whose_columns_are_all_constant_is_warned_about(tmp_path: Path) -> None:
    d, c = _case(tmp_path / "ds")
    df = c.metrics.copy()
    for col in [x for x in df.columns if x.startswith("ray-worker-1_")]:
        df[col] = 1.0
    df.to_csv(d / "data.csv", index=False)
    r = CliRunner().invoke(app, ["dataset", "validate", str(tmp_path / "ds")], terminal_width=300)
    assert r.exit_code == 0 and "every metric column of the root cause ray-worker-1 is constant" in r.output, r.output
    c.metrics.to_csv(d / "data.csv", index=False)
    assert "is constant" not in CliRunner().invoke(app, ["dataset", "validate", str(tmp_path / "ds")]).output


def test_describe_says_an_error_share_is_no_rate(tmp_path: Path) -> None:
    """describe said 'error_percent is read in % (x0.01 to the kind's unit)', the kind's unit being 1/s."""
    d, c = _case(tmp_path)
    c.metrics.assign(**{"ray-worker-1_error_percent": 1.0, "ray-worker-2_error_ratio": 0.01}).to_csv(d / "data.csv", index=False)
    r = CliRunner().invoke(app, ["dataset", "describe", str(d)], terminal_width=300)
    assert r.exit_code == 0, r.output
    for m in ("error_percent", "error_ratio"):
        assert f"unit: {m} is a share of requests (0..1), not per second" in r.output, r.output
    assert "unit: error_percent is read in %" not in r.output


@pytest.mark.parametrize(
    ("text", "parsed"),
    [
        ('up{pod="a"}', ("up", {"pod": "a"})),
        ('vllm:e2e{ pod = "a" , path="/v1,x" ,}', ("vllm:e2e", {"pod": "a", "path": "/v1,x"})),
        (r'm{msg="say \"hi\"\\",pod="b"}', ("m", {"msg": 'say "hi"\\', "pod": "b"})),
        ("up{pod='a'}", ("up", {"pod": "a"})),  # PromQL's single quotes
        ('{__name__="up",pod="a"}', ("up", {"pod": "a"})),  # the HTTP API's label set
        ('{pod="a"}', None),  # a legend: no name
        ("m{}", None),
        ('m{pod=a}', None),  # an unquoted value is no exposition text
        ('9m{pod="a"}', None),
        ("ray-worker-1_cpu", None),
    ],
)
def test_a_prometheus_series_name_is_parsed_as_the_exposition_format_writes_it(text: str, parsed) -> None:
    from llmrca.names import parse_series

    assert parse_series(text) == parsed


def test_validate_answers_in_json(tmp_path: Path) -> None:
    """dataset validate had no --json (describe, rank, methods, audit had)."""
    import json

    good, c = _case(tmp_path / "ds")
    c.metrics.to_csv(good / "data.csv", index=False)
    bad, c2 = _case(tmp_path / "ds", "ray-worker-2_cpu/1", root="ray-worker-2")
    c2.metrics.iloc[::-1].to_csv(bad / "data.csv", index=False)  # rows not sorted: a problem
    r = CliRunner().invoke(app, ["dataset", "validate", str(tmp_path / "ds"), "--json"])
    out = json.loads(r.stdout)
    assert r.exit_code == 1 and out["status"] == "problems" and out["valid"] == ["ray-worker-1_cpu/1"], r.output
    assert list(out["problems"]) == ["ray-worker-2_cpu/1"] and "not increasing" in out["problems"]["ray-worker-2_cpu/1"][0], out
    c2.metrics.to_csv(bad / "data.csv", sep=";", index=False)  # repaired, said
    out = json.loads(CliRunner().invoke(app, ["dataset", "validate", str(tmp_path / "ds"), "--json"]).stdout)
    assert out["status"] == "ok" and out["n_valid"] == 2 and "';'" in " ".join(out["repaired"]["ray-worker-2_cpu/1"]), out
    r = CliRunner().invoke(app, ["dataset", "validate", str(tmp_path / "nothing"), "--json"])
    assert r.exit_code == 2 and json.loads(r.stdout)["status"] == "failed", r.output


def test_case_folders_reached_through_symbolic_links_are_read_and_said_twice(tmp_path: Path) -> None:
    """A case folder that is a symbolic link was skipped without a word (not valid, not a problem), and a dataset
    made only of links had 'no case'; rank read the same link.  Links are followed (never into a loop), and a link
    to a case the dataset has already is said, since that case then counts twice."""
    from llmrca.dataset.validate import validate_dataset

    real, c = _case(tmp_path / "elsewhere")
    c.metrics.to_csv(real / "data.csv", index=False)
    other, c2 = _case(tmp_path / "elsewhere", "ray-worker-1_cpu/2", seed=1)
    c2.metrics.to_csv(other / "data.csv", index=False)
    ds = tmp_path / "ds" / "ray-worker-1_cpu"
    ds.mkdir(parents=True)
    (ds / "1").symlink_to(real, target_is_directory=True)
    (ds / "2").symlink_to(other, target_is_directory=True)
    (ds / "loop").symlink_to(tmp_path / "ds", target_is_directory=True)  # a link back to an ancestor
    check = validate_dataset(tmp_path / "ds")
    assert check.valid == ["ray-worker-1_cpu/1", "ray-worker-1_cpu/2"] and not check.problems and "dataset" not in check.warnings, check
    (ds / "3").symlink_to(real, target_is_directory=True)
    check = validate_dataset(tmp_path / "ds")
    assert len(check.valid) == 3
    [w] = check.warnings["dataset"]
    assert "1 case folder(s) are the same folder as another case through a symbolic link (e.g. ray-worker-1_cpu/3 is ray-worker-1_cpu/1)" in w


def _time_case(tmp_path: Path, time_values, inject: str, extra: dict | None = None) -> Path:
    d = tmp_path / "orders_cpu" / "1"
    d.mkdir(parents=True)
    n = len(time_values)
    rng = np.random.default_rng(0)
    pd.DataFrame({"time": time_values, **(extra or {}), "orders_cpu": rng.normal(1, 0.05, n), "carts_cpu": rng.normal(1, 0.05, n)}).to_csv(
        d / "data.csv", index=False)
    (d / "inject_time.txt").write_text(inject)
    return d


def test_local_times_across_the_end_of_daylight_saving_are_named_not_sorted(tmp_path: Path) -> None:
    """Europe/Berlin wall-clock times without an offset repeat 02:00-03:00 on 2025-10-26: the message said 'sort rows
    by time', which would interleave two hours."""
    t = pd.date_range("2025-10-26 02:10:00", periods=200, freq="15s").strftime("%Y-%m-%d %H:%M:%S").tolist()  # to 02:59:45
    wall = t + pd.date_range("2025-10-26 02:00:00", periods=40, freq="15s").strftime("%Y-%m-%d %H:%M:%S").tolist()
    said = _problems(_time_case(tmp_path, wall, "2025-10-26 02:40:00"))
    assert "'time' goes back by one hour at row 200" in said and "daylight saving" in said and "sort rows" not in said, said


def test_local_times_across_the_start_of_daylight_saving_are_warned_about(tmp_path: Path) -> None:
    t = pd.date_range("2025-03-30 01:00:00", periods=480, freq="15s")
    wall = [x + pd.Timedelta(hours=1) if x.hour >= 2 else x for x in t]  # 02:00 local does not exist: 03:00 follows 01:59:45
    d = _time_case(tmp_path, [x.strftime("%Y-%m-%d %H:%M:%S") for x in wall], "2025-03-30 01:30:00")
    case = read_case(d)
    assert "warning: time: data.csv: 'time' jumps forward by one hour at row 240" in _notes(case), _notes(case)


def test_times_that_lost_their_digits_are_said_so_not_called_duplicates(tmp_path: Path) -> None:
    """ns times written '1.750000e+18' collapse to a few values: 'aggregate or drop duplicate rows' would destroy the data."""
    ns = [f"{(1750000000 + 5 * i) * 1e9:.6e}" for i in range(300)]
    said = _problems(_time_case(tmp_path, ns, "1750000700"))
    assert "'time' repeats in runs: 2 distinct values for 300 rows, 1000 s apart" in said and "too few digits" in said, said


def test_spreadsheet_serial_days_are_blamed_on_the_time_column(tmp_path: Path) -> None:
    days = [45823.6296 + i * 5 / 86400 for i in range(120)]
    said = _problems(_time_case(tmp_path, days, "2025-06-15T15:07:00Z"))
    assert "the data's 'time' is not in epoch seconds: its values look like spreadsheet serial days" in said, said
    case = read_case(_time_case(tmp_path / "both", days, str(days[60])))  # the injection time in days too: read, warned
    assert "warning: time: data.csv: 'time' runs from 45823.6 to" in _notes(case) and "spreadsheet serial days" in _notes(case)
    secs = [f"{1750000000 + 5 * i:.8e}" for i in range(120)]  # 10 s resolution at 5 s sampling: every other time repeats
    assert "too few digits" in _problems(_time_case(tmp_path / "e8", secs, "1750000300"))


def test_a_second_time_column_holding_the_same_instants_is_dropped(tmp_path: Path) -> None:
    """time (ISO) and timestamp (ns) beside it: 'timestamp' was taken for a metric column not named <component>_<metric>."""
    secs = 1750000000 + 5 * np.arange(120)
    iso = pd.to_datetime(secs, unit="s", utc=True).strftime("%Y-%m-%dT%H:%M:%S+00:00").tolist()
    case = read_case(_time_case(tmp_path, iso, str(int(secs[60])), {"timestamp": secs * 10**9}))
    assert list(case.metrics.columns) == ["time", "orders_cpu", "carts_cpu"]
    assert "'timestamp' holds the same instants as 'time' (written as epoch nanoseconds, 'time' as date-time strings)" in _notes(case)
    said = _problems(_time_case(tmp_path / "b", iso, str(int(secs[60])), {"timestamp": (secs + 3600) * 10**9}))
    assert "both 'time' and 'timestamp' are time columns and they differ (row 0" in said, said


def test_relative_times_a_step_of_minutes_apart_are_warned_to_be_milliseconds(tmp_path: Path) -> None:
    case = read_case(_time_case(tmp_path, [1000 * i for i in range(120)], "60000"))
    assert "warning: time: data.csv: 'time' runs from 0 to 119000, not epoch times" in _notes(case), _notes(case)
    assert "warning: time:" not in _notes(read_case(_time_case(tmp_path / "s", [5 * i for i in range(120)], "300")))


def test_a_link_to_a_case_folder_that_is_gone_is_reported(tmp_path: Path) -> None:
    """A broken link where a case folder was ('ln -s /gone ds/ray-worker-2_cpu') was skipped without a word."""
    from llmrca.dataset.validate import validate_dataset

    d, c = _case(tmp_path / "ds")
    c.metrics.to_csv(d / "data.csv", index=False)
    (tmp_path / "ds" / "ray-worker-2_cpu").symlink_to(tmp_path / "gone", target_is_directory=True)
    check = validate_dataset(tmp_path / "ds")
    assert check.valid == ["ray-worker-1_cpu/1"]
    assert "is a symbolic link to" in check.problems["ray-worker-2_cpu"][0] and "which does not exist" in check.problems["ray-worker-2_cpu"][0]


def test_a_root_cause_named_by_its_service_while_the_columns_name_its_pod_gets_a_hint(tmp_path: Path) -> None:
    """{pod="carts-7f9c8d-xk2lp"} names component carts-7f9c8d-xk2lp; the folder says carts: the problem said only
    that carts is not a component."""
    d = tmp_path / "carts_cpu" / "1"
    d.mkdir(parents=True)
    t = 1750000000 + 5 * np.arange(120)
    pd.DataFrame({"time": t, 'container_cpu_usage_seconds_total{pod="carts-7f9c8d-xk2lp"}': 1.0 + np.arange(120) % 3,
                  'container_cpu_usage_seconds_total{pod="orders-5d4c-abcde"}': 1.0 + np.arange(120) % 2}).to_csv(d / "data.csv", index=False)
    (d / "inject_time.txt").write_text(str(int(t[60])))
    said = _problems(d)
    assert "carts-7f9c8d-xk2lp look like pods of it" in said, said


# -- epoch-ms-time: case.json's fault window in the unit of its inject_time ----------------------------------


@pytest.mark.parametrize(("factor", "unit"), [(1000, "milliseconds"), (10**6, "microseconds"), (10**9, "nanoseconds")])
def test_case_json_fault_window_in_ms_us_ns_is_converted_with_inject_time(tmp_path: Path, factor: int, unit: str) -> None:
    import json

    d, c = _case(tmp_path)
    m = c.metrics.copy()
    m["time"] = (m["time"] * factor).astype("int64")
    m.to_csv(d / "data.csv", index=False)
    (d / "inject_time.txt").unlink()
    t0 = int(c.inject_time)
    (d / "case.json").write_text(json.dumps({
        "schema": 1, "inject_time": t0 * factor, "root_causes": ["ray-worker-1"],
        "fault": {"type": "cpu", "target": "ray-worker-1", "start": t0 * factor, "end": (t0 + 30) * factor},
    }))
    case = read_case(d)
    assert case.inject_time == t0 and case.fault.start == t0 and case.fault.end == t0 + 30
    assert f"case.json fault.end: {(t0 + 30) * factor} is in epoch {unit} (by magnitude); converted to seconds" in _notes(case)


# -- rcaeval-dup-time: the row named where a repeated time differs ---------------------------------------------


@pytest.mark.parametrize("written", ["date-time strings", "epoch seconds"])
def test_a_repeated_time_with_empty_cells_is_named_at_the_first_row_that_differs(tmp_path: Path, written: str) -> None:
    """Empty cells of the copy contradict nothing (the copy is dropped, said); a cell that holds another instant is
    named at its row, however the copy is written."""
    d, c = _case(tmp_path)
    m = c.metrics.copy()
    t = m["time"].astype("int64")
    copy = pd.to_datetime(t, unit="s").astype(str) if written == "date-time strings" else t.astype(float)
    copy = copy.astype(object)
    copy.iloc[-3:] = None
    head = ",".join([*m.columns, "time"]) + "\n"
    (d / "data.csv").write_text(head + m.assign(time_copy=copy).to_csv(index=False, header=False))
    case = read_case(d)
    assert "the copy equals 'time'" in _notes(case) and "(3 empty cell(s))" in _notes(case), _notes(case)
    assert list(case.metrics.columns) == list(m.columns)
    bad = copy.copy()
    bad.iloc[5] = bad.iloc[6]  # another instant in row 5
    (d / "data.csv").write_text(head + m.assign(time_copy=bad).to_csv(index=False, header=False))
    said = _problems(d)
    assert "the header repeats 'time' (the second is read as 'time.1') and the two differ (row 5: " in said, said
    empty = copy.copy()
    empty.iloc[:] = None
    (d / "data.csv").write_text(head + m.assign(time_copy=empty).to_csv(index=False, header=False))
    assert "the copy is empty and was dropped" in _notes(read_case(d))


# -- rcaeval-re2-traces-ms: OpenTelemetry's span status -----------------------------------------------------------


@pytest.mark.parametrize(("ok", "err"), [("STATUS_CODE_OK", "STATUS_CODE_ERROR"), ("1", "2")])
def test_opentelemetry_status_code_is_read_as_the_span_status(tmp_path: Path, ok: str, err: str) -> None:
    d, c = _case(tmp_path)
    c.metrics.to_csv(d / "data.csv", index=False)
    t0 = int(c.metrics["time"].iloc[0])
    rows = ["trace_id,span_id,parent_span_id,service_name,name,start_time_unix_nano,duration_ns,status_code"]
    for i in range(40):
        t = (t0 + 8 * i) * 10**9
        code = err if t >= c.inject_time * 10**9 else ok
        rows += [f"{i:032x},{2 * i:016x},,nginx-gateway,GET /v1,{t},5000000,{code}",
                 f"{i:032x},{2 * i + 1:016x},{2 * i:016x},ray-worker-1,generate,{t + 1000},3000000,{code}"]
    (d / "traces.csv").write_text("\n".join(rows) + "\n")
    case = read_case(d)
    status = case.traces["statusCode"].astype(str)
    assert set(status) == {"STATUS_CODE_OK", "STATUS_CODE_ERROR"}
    late = case.traces["startTime"] >= c.inject_time * 1e6
    assert (status[late] == "STATUS_CODE_ERROR").all() and (status[~late] == "STATUS_CODE_OK").all()
    assert "statusCode" not in " ".join(n for n in case.meta["normalised"] if "left empty" in n)


# -- rcaeval-re2-layout: a case whose metrics files are missing ---------------------------------------------------


@pytest.mark.parametrize("left", [("logs.csv",), ("traces.csv",), ("logs.csv", "traces.csv")])
def test_a_case_folder_with_only_logs_or_traces_is_named_not_skipped(tmp_path: Path, left: tuple[str, ...]) -> None:
    good, c = _case(tmp_path / "ds", "ray-worker-1_mem/1")
    c.metrics.to_csv(good / "data.csv", index=False)
    part = tmp_path / "ds" / "ray-worker-1_cpu" / "1"
    part.mkdir(parents=True)
    for name in left:
        (part / name).write_text("time,container_name,message\n1700000000,frontend,GET /cart\n")
    r = CliRunner().invoke(app, ["dataset", "validate", str(tmp_path / "ds")], terminal_width=400)
    assert r.exit_code != 0 and "ray-worker-1_cpu/1" in r.output and "no metrics in" in r.output, r.output
    r = CliRunner().invoke(app, ["dataset", "import", str(tmp_path / "ds"), str(tmp_path / "out")], terminal_width=400)
    assert r.exit_code == 1 and "skipped ray-worker-1_cpu/1: no metrics in" in r.output and "skipped 1" in r.output, r.output


def test_re2_metrics_csv_with_components_simple_metrics_lacks_is_read(tmp_path: Path) -> None:
    """RCAEval reads simple_metrics.csv; a metrics.csv that also holds another container (the load generator) does
    not make the case unreadable: those columns are left out of the extended set, said."""
    d = tmp_path / "RE2-OB" / "ray-worker-1_cpu" / "1"
    d.mkdir(parents=True)
    c = make_case(root="ray-worker-1", fault="cpu", seed=2)
    (d / "inject_time.txt").write_text(f"{int(c.inject_time)}\n")
    c.metrics.to_csv(d / "simple_metrics.csv", index=False)
    full = c.metrics.assign(**{"loadgenerator_cpu": 0.5, "loadgenerator_mem": 1e8})
    full.drop(columns=[k for k in full.columns if k.startswith("kuberay-operator_")]).to_csv(d / "metrics.csv", index=False)
    case = read_case(d)
    ext = case.metric_sets["extended"]
    assert not any(k.startswith("loadgenerator_") for k in ext.columns) and "loadgenerator" not in case.components
    notes = _notes(case)
    assert "metrics.csv: the columns of 1 component(s) the basic set does not have (loadgenerator) were left out" in notes
    assert "metrics.csv: 1 component(s) of the basic set have no column in the 'extended' set (kuberay-operator)" in notes
    out = rank_case(d, "nsigma", metric_set="extended")
    assert set(out.ranking.components) == set(case.components) - {"kuberay-operator"}
    assert out.ranking.components[0] == "ray-worker-1"


def test_validate_says_the_missing_ground_truth_with_the_other_problems_in_one_pass(tmp_path: Path) -> None:
    d = tmp_path / "ds" / "results" / "run-1" / "rca-collector-results"
    d.mkdir(parents=True)
    c = make_case(root="ray-worker-1", fault="cpu", seed=1)
    c.metrics.to_csv(d / "data.csv", index=False)  # no inject_time.txt, no case.json, no <component>_<fault> folder
    r = CliRunner().invoke(app, ["dataset", "validate", str(tmp_path / "ds")], terminal_width=400)
    assert r.exit_code != 0 and "no inject_time.txt in the case folder" in r.output and "no ground truth" in r.output, r.output
    r = CliRunner().invoke(app, ["rank", str(d), "--method", "nsigma"], terminal_width=400)
    assert "no inject_time.txt" in r.output and "no ground truth" not in r.output, r.output  # rank needs no truth


# -- rcallm-raw-export: the artifact's run tree, read as its preparation reads it ----------------------------------


ARTIFACT_PODS = ("nginx-proxy", "ray-head", "ray-replicas-0", "ray-replicas-1")


def _artifact_run(root: Path, *, with_json: bool = True) -> tuple[Path, float]:
    import json

    run = root / "llm-ref-stack-dp" / "falcon-cpu-stress-ray-replicas-1" / "results" / "run-20250615-iteration-3"
    col = run / "rca-collector-results"
    col.mkdir(parents=True)
    rng = np.random.default_rng(4)
    t = pd.to_datetime(1750000000 + 5 * np.arange(72), unit="s")
    d: dict[str, object] = {"time": t}
    for i, c in enumerate(ARTIFACT_PODS):
        for m in ("ctn_cpu", "ctn_memory", "ctn_network"):
            d[f"{c}_{m}"] = 1 + 0.05 * rng.standard_normal(72)
        d[f"{c}_pod_ip"] = f"10.42.0.{11 + i}"
    d["ray-replicas-1_ctn_cpu"] = np.r_[1 + 0.05 * rng.standard_normal(60), 3 + 0.05 * rng.standard_normal(12)]
    pd.DataFrame(d).to_csv(col / "data.csv")  # the exporter's to_csv: a saved index, datetime time
    lat = pd.DataFrame({"time": t, "nginx-proxy": 2.0 + 0.1 * rng.standard_normal(72), "ray-head": 1.0 + 0.1 * rng.standard_normal(72)})
    lat.set_index("time").to_csv(col / "latency_aggregated_90.csv")
    if with_json:
        (run / "apply_result_chaos_anomaly_injection.json").write_text(json.dumps({"result": {"metadata": {"creationTimestamp": "2025-06-15T15:11:40Z"}}}))
        logs = [{"time": f"2025-06-15T15:0{6 + i // 60}:{i % 60:02d}", "pod": "ray-head-x", "container": "ray-head",
                 "file": "/tmp/ray/session_latest/logs/raylet.out", "msg": f"line {i}"} for i in range(40)]
        (run / "loki-logs.json").write_text(json.dumps(logs))
    return col, 1750000300.0


def test_the_artifacts_run_tree_is_read_as_its_preparation_reads_it(tmp_path: Path) -> None:
    col, inject = _artifact_run(tmp_path / "fetched")
    case = read_case(col)
    assert case.inject_time == inject and case.root_causes == {"ray-replicas-1"} and case.fault_type == "cpu"
    assert {"nginx-proxy_latency-90", "ray-head_latency-90"} <= set(case.metrics.columns)
    assert case.logs is not None and len(case.logs) == 40 and set(case.logs["container_name"]) == {"ray-head"}
    notes = _notes(case)
    assert "from ../apply_result_chaos_anomaly_injection.json" in notes and "latency_aggregated_90.csv: 2 component(s)" in notes
    assert rank_case(col, "nsigma").ranking.components[0] == "ray-replicas-1"
    r = CliRunner().invoke(app, ["dataset", "import", str(tmp_path / "fetched"), str(tmp_path / "out")], terminal_width=400)
    assert r.exit_code == 0 and "imported 1 case(s)" in r.output, r.output


def _request_list(run: Path, slow: str, n: int = 60) -> None:
    """DeepFlow's request list as the artifact's ``export_traces.py`` writes it (its columns, ISO start times without
    offset, Response Delay in µs), the servers named by the fixture's pod IPs: each request seen at the gateway and
    at the Ray pod that served it; ``slow`` answers 5x slower from the injection (1750000300) on."""
    import csv

    ips = {c: f"10.42.0.{11 + i}" for i, c in enumerate(ARTIFACT_PODS)}
    cols = ["Response Delay", "Client", "Server", "Client IP", "Server IP", "Start Time", "End Time", "Data Type", "Protocol",
            "Request Type", "Request Domain", "Request Resource", "Status", "Response Code", "Response Exception",
            "X-Request-ID", "Trace ID", "Span ID", "Parent Span ID", "Server Port", "Endpoint", "Database ID"]
    rows = []
    for i in range(n):
        t = 1750000000 + 6 * i
        served = ARTIFACT_PODS[1 + i % 3]
        d_us = 2_000_000 * (5 if served == slow and t >= 1750000300 else 1)
        iso = pd.Timestamp(t, unit="s").isoformat()
        for who, span, parent in (("nginx-proxy", f"g{i}", ""), (served, f"r{i}", f"g{i}")):
            rows.append([d_us + (1000 if who == "nginx-proxy" else 0), "c", "s", "10.9.9.9", ips[who], iso, iso, "request",
                         "HTTP1", "POST", "svc", "/chat/completions", "ok", "200", "", f"x{i}", f"t{i}", span, parent, "8000",
                         "/chat/completions", str(i)])
    iso = pd.Timestamp(1750000000, unit="s").isoformat()
    rows.append([5, "c", "s", "10.9.9.9", "10.200.0.1", iso, iso, "request", "DNS", "A", "kube-dns", "x.svc", "ok", "0", "",
                 "", "t-x", "s-x", "", "53", "x.svc", "x"])  # a server that is no pod of the case: left out
    rows.append([5, "c", "s", "10.9.9.9", ips["ray-head"], iso, iso, "request", "HTTP1", "GET", "", "/healthz", "ok", "200",
                 "", "", "", "", "", "8000", "/healthz", "y"])  # no trace id: left out
    with open(run / "deepflow-traces-request-list.csv", "w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(cols)
        w.writerows(rows)


def test_the_artifacts_request_list_is_read_as_traces_named_by_pod_ip(tmp_path: Path) -> None:
    """The artifact's DeepFlow request list was not read (its spans name pod IPs), so trace methods had nothing on
    the artifact's own runs; it is read as its preparation reads it."""
    col, _ = _artifact_run(tmp_path / "fetched")
    _request_list(col.parent, slow="ray-replicas-1")
    case = read_case(col)
    tr = case.traces
    assert tr is not None and len(tr) == 120, _notes(case)
    assert set(tr["serviceName"]) == {"nginx-proxy", "ray-head", "ray-replicas-0", "ray-replicas-1"}
    first = tr.sort_values("startTime").iloc[0]
    assert first["startTime"] == 1750000000 * 1e6 and first["duration"] in (2_000_000, 2_001_000)  # µs, as DeepFlow gives them
    notes = _notes(case)
    assert "120 of 122 request(s) as spans" in notes and "2 without a trace id" in notes, notes
    assert rank_case(col, "tracerca").ranking.components[0] == "ray-replicas-1"  # a trace method runs on them
    r = CliRunner().invoke(app, ["dataset", "import", str(tmp_path / "fetched"), str(tmp_path / "out")], terminal_width=400)
    assert r.exit_code == 0 and "imported 1 case(s)" in r.output, r.output
    imported = next((tmp_path / "out").rglob("traces.csv"))
    assert len(pd.read_csv(imported)) == 120
    # a request list whose servers are no pod of the case (no <component>_pod_ip matches): said, the case still read
    (col.parent / "deepflow-traces-request-list.csv").write_text("Response Delay,Start Time,Trace ID,Span ID,Server IP\n5,2025-06-15T15:00:00,t,s,10.1.1.1\n")
    case = read_case(col)
    assert case.traces is None and "none of its 1 request(s)" in _notes(case), _notes(case)


def test_the_artifacts_run_without_its_applied_object_says_what_is_missing_in_one_pass(tmp_path: Path) -> None:
    _artifact_run(tmp_path / "fetched", with_json=False)
    r = CliRunner().invoke(app, ["dataset", "validate", str(tmp_path / "fetched")], terminal_width=400)
    assert r.exit_code != 0 and "no inject_time.txt in the case folder" in r.output, r.output
    assert "no ground truth" not in r.output  # the experiment folder's name gives it


@pytest.mark.parametrize(("start", "end", "factor"), [("start_time_unix_nano", "end_time_unix_nano", 10**9),
                                                      ("startTimeMillis", "endTimeMillis", 10**3)])
def test_spans_with_a_start_and_an_end_but_no_duration_are_read(tmp_path: Path, start: str, end: str, factor: int) -> None:
    """OpenTelemetry spans carry start and end times, no duration: duration = end - start (they were refused as
    having 'no start-time or duration column'); Jaeger's otel.status_code is the status."""
    d, c = _case(tmp_path)
    c.metrics.to_csv(d / "data.csv", index=False)
    t0 = int(c.metrics["time"].iloc[0])
    rows = [f"trace_id,span_id,parent_span_id,service_name,name,{start},{end},otel.status_code"]
    for i in range(30):
        s0 = (t0 + 10 * i) * factor
        rows.append(f"{i:032x},{i:016x},,nginx-gateway,GET /v1,{s0},{s0 + factor // 4},{'ERROR' if i > 20 else 'OK'}")
    (d / "traces.csv").write_text("\n".join(rows) + "\n")
    case = read_case(d)
    assert case.traces is not None and len(case.traces) == 30
    assert case.traces["duration"].tolist() == pytest.approx([250_000.0] * 30)  # 0.25 s, in µs
    assert set(case.traces["statusCode"].astype(str)) == {"OK", "ERROR"}
    assert f"span duration taken as {end!r} minus the start" in _notes(case)


def test_case_json_fault_window_with_start_and_end_in_different_units_is_read(tmp_path: Path) -> None:
    import json

    d, c = _case(tmp_path)
    c.metrics.to_csv(d / "data.csv", index=False)
    t0 = int(c.inject_time)
    (d / "case.json").write_text(json.dumps({
        "schema": 1, "inject_time": t0, "root_causes": ["ray-worker-1"],
        "fault": {"type": "cpu", "target": "ray-worker-1", "start": t0 * 1000, "end": t0 + 30},
    }))
    case = read_case(d)
    assert case.fault.start == t0 and case.fault.end == t0 + 30
    (d / "case.json").write_text(json.dumps({
        "schema": 1, "inject_time": t0, "root_causes": ["ray-worker-1"],
        "fault": {"type": "cpu", "target": "ray-worker-1", "start": (t0 + 60) * 1000, "end": t0 + 30},
    }))
    assert "field fault.end is" in _problems(d) and "not after fault.start" in _problems(d)


def test_re2_root_cause_with_columns_only_in_metrics_csv_is_said_so(tmp_path: Path) -> None:
    d = tmp_path / "RE2" / "ray-worker-1_cpu" / "1"
    d.mkdir(parents=True)
    c = make_case(root="ray-worker-1", fault="cpu", seed=3)
    (d / "inject_time.txt").write_text(f"{int(c.inject_time)}\n")
    c.metrics.to_csv(d / "metrics.csv", index=False)
    c.metrics.drop(columns=[k for k in c.metrics.columns if k.startswith("ray-worker-1_")]).to_csv(d / "simple_metrics.csv", index=False)
    said = _problems(d)
    assert "root causes ['ray-worker-1'] are not components of the case" in said
    assert "ray-worker-1 has columns in metrics.csv only, which were left out" in said, said
