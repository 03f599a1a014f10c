"""Reading untrusted files: FIFOs, devices, sockets, huge, unreadable and escaping files give messages, never hangs."""

from __future__ import annotations

import os
import socket
import tempfile
import threading
import time
from pathlib import Path

import pytest

from llmrca.dataset.safe_io import (
    MAX_CSV_BYTES,
    MAX_INJECT_TIME_BYTES,
    DatasetInputError,
    check_regular,
    inside,
    open_regular,
    read_bytes_bounded,
    read_first_line,
    read_last_lines,
    read_text_bounded,
    safe_child,
)
from llmrca.model import CaseValidationError


def _refused(fn, *args, **kwargs) -> str:
    with pytest.raises(DatasetInputError) as ei:
        fn(*args, **kwargs)
    assert isinstance(ei.value, CaseValidationError) and len(ei.value.problems) == 1
    return ei.value.problems[0]


def test_regular_file_read(tmp_path: Path) -> None:
    p = tmp_path / "inject_time.txt"
    p.write_bytes(b"1700000300\n")
    assert read_bytes_bounded(p, MAX_INJECT_TIME_BYTES, "inject_time.txt") == b"1700000300\n"
    with open_regular(p) as f:
        assert f.read() == b"1700000300\n"


def test_oversized_file_is_refused_before_reading(tmp_path: Path) -> None:
    p = tmp_path / "inject_time.txt"
    p.write_bytes(b"1" * 1_000_000)
    msg = _refused(read_bytes_bounded, p, MAX_INJECT_TIME_BYTES, "inject_time.txt")
    assert msg == f"inject_time.txt {p} is 976.6 KiB; llmrca reads at most 4.0 KiB from a inject_time.txt (it is most likely not the right file; check it, or raise the limit)"
    big = tmp_path / "data.csv"
    with open(big, "wb") as f:  # sparse: 3 GiB without using the disk
        f.truncate(3 * 1024**3)
    t = time.perf_counter()
    msg = _refused(read_bytes_bounded, big, MAX_CSV_BYTES, "data.csv")
    assert time.perf_counter() - t < 1 and "is 3.0 GiB; llmrca reads at most 2.0 GiB" in msg


def _in_thread(fn, timeout_s: float = 5.0):
    box: dict[str, object] = {}

    def run() -> None:
        try:
            box["value"] = fn()
        except BaseException as e:
            box["error"] = e

    t = threading.Thread(target=run, daemon=True)
    t.start()
    t.join(timeout_s)
    return t.is_alive(), box


def test_fifo_is_refused_without_blocking(tmp_path: Path) -> None:
    fifo = tmp_path / "data.csv"
    os.mkfifo(fifo)
    for fn in (lambda: read_bytes_bounded(fifo, MAX_CSV_BYTES, "data.csv"), lambda: open_regular(fifo, "data.csv"), lambda: read_first_line(fifo)):
        hung, box = _in_thread(fn)
        if hung:  # release the reader so the test process can end, then fail
            os.close(os.open(fifo, os.O_WRONLY | os.O_NONBLOCK))
        assert not hung, "reading a FIFO blocked"
        err = box.get("error")
        assert isinstance(err, DatasetInputError), box
        assert str(fifo) in err.problems[0] and "is a FIFO (named pipe), not a regular file" in err.problems[0]


def test_dev_zero_and_a_link_to_it_are_refused(tmp_path: Path) -> None:
    hung, box = _in_thread(lambda: read_bytes_bounded("/dev/zero", MAX_CSV_BYTES, "data.csv"))
    assert not hung
    assert isinstance(box.get("error"), DatasetInputError)
    assert "data.csv /dev/zero is a character device, not a regular file" in box["error"].problems[0]
    link = tmp_path / "logs.csv"
    os.symlink("/dev/zero", link)
    assert "is a character device" in _refused(read_text_bounded, link, MAX_CSV_BYTES, "logs.csv")


def test_socket_and_folder_are_refused(tmp_path: Path) -> None:
    sock_path = tmp_path / "traces.csv"
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        s.bind(str(sock_path))
        assert "is a socket, not a regular file" in _refused(read_bytes_bounded, sock_path, 100, "traces.csv")
    finally:
        s.close()
    (tmp_path / "case.json").mkdir()
    assert "is a folder, not a regular file" in _refused(read_bytes_bounded, tmp_path / "case.json", 100, "case.json")


def test_missing_file(tmp_path: Path) -> None:
    msg = _refused(check_regular, tmp_path / "data.csv", "data.csv")
    assert msg == f"data.csv {tmp_path / 'data.csv'} does not exist; add it or check the path"


def _as_nobody(fn) -> str:
    """Run ``fn`` in a child process with the privileges of user nobody (65534); its message or 'no error'."""
    r, w = os.pipe()
    pid = os.fork()
    if pid == 0:  # child
        os.close(r)
        try:
            if os.geteuid() == 0:
                os.setgroups([])
                os.setgid(65534)
                os.setuid(65534)
            try:
                fn()
                out = "no error"
            except DatasetInputError as e:
                out = e.problems[0]
            except BaseException as e:
                out = f"raw {type(e).__name__}: {e}"
            os.write(w, out.encode())
        finally:
            os._exit(0)
    os.close(w)
    chunks = []
    while chunk := os.read(r, 65536):
        chunks.append(chunk)
    os.close(r)
    os.waitpid(pid, 0)
    return b"".join(chunks).decode()


def test_unreadable_file_and_folder_give_messages() -> None:
    base = Path(tempfile.mkdtemp(prefix="llmrca-perm-", dir="/tmp"))
    try:
        base.chmod(0o755)
        f = base / "data.csv"
        f.write_text("time,a_cpu\n1,2\n")
        f.chmod(0o000)
        msg = _as_nobody(lambda: read_bytes_bounded(f, 100, "data.csv"))
        assert msg == f"data.csv {f} cannot be read: permission denied; make it readable (chmod a+r, or check the folders' permissions) or run as its owner"
        f.chmod(0o644)
        assert _as_nobody(lambda: read_bytes_bounded(f, 100, "data.csv")) == "no error"  # the same user reads a readable file
        sub = base / "case"
        sub.mkdir(mode=0o700)
        (sub / "case.json").write_text("{}")
        msg = _as_nobody(lambda: read_bytes_bounded(sub / "case.json", 100, "case.json"))
        assert msg.startswith(f"case.json {sub / 'case.json'} cannot be read: permission denied")
    finally:
        for p in sorted(base.rglob("*"), reverse=True):
            p.chmod(0o700)
            p.unlink() if p.is_file() else p.rmdir()
        base.rmdir()


def test_symlinks_out_of_the_root_are_refused(tmp_path: Path) -> None:
    root = tmp_path / "ds"
    (root / "c").mkdir(parents=True)
    secret = tmp_path / "secret.txt"
    secret.write_text("x")
    (root / "c" / "data.csv").write_text("time\n1\n")
    os.symlink(secret, root / "c" / "out.csv")
    os.symlink(root / "c" / "data.csv", root / "c" / "in.csv")
    assert inside(root, root / "c" / "in.csv") and not inside(root, root / "c" / "out.csv")
    assert not inside(root, root / ".." / "secret.txt") and not inside(root, tmp_path / "ds2")
    assert read_bytes_bounded(root / "c" / "in.csv", 100, "data.csv", root=root) == b"time\n1\n"
    msg = _refused(read_bytes_bounded, root / "c" / "out.csv", 100, "data.csv", root=root)
    assert msg.startswith(f"data.csv {root / 'c' / 'out.csv'} points outside {root} (to {secret}); a dataset may only hold its own files")


@pytest.mark.parametrize("name", ["../../x", "/etc/passwd", "a/b", "a\\b", "", ".", "..", "a\x00b", "x\u200by", "C:evil", 5, None])
def test_safe_child_refuses_paths(tmp_path: Path, name: object) -> None:
    msg = _refused(safe_child, tmp_path, name, "fault target")
    assert msg.startswith("fault target ") and "cannot be used as a file or folder name" in msg


def test_safe_child_accepts_plain_names_and_refuses_escaping_links(tmp_path: Path) -> None:
    assert safe_child(tmp_path, "ray-worker-1_cpu") == tmp_path / "ray-worker-1_cpu"
    assert safe_child(tmp_path, "..hidden") == tmp_path / "..hidden"
    os.symlink("/tmp", tmp_path / "ray-worker-2_cpu")
    msg = _refused(safe_child, tmp_path, "ray-worker-2_cpu", "case folder")
    assert "resolves to /tmp, outside" in msg and "remove the symlink" in msg


def test_text_with_bad_bytes_and_bom(tmp_path: Path) -> None:
    p = tmp_path / "logs.csv"
    p.write_bytes(b"\xef\xbb\xbftime,container_name,message\n1,a,caf\xe9 \xff ok \xef\xbf\xbd\n")
    t = read_text_bounded(p, 1000, "logs.csv")
    assert t.bom and t.replaced == 2
    assert t.text == "time,container_name,message\n1,a,caf\ufffd \ufffd ok \ufffd\n"
    p.write_text("time\n1\n")
    assert read_text_bounded(p, 1000) == ("time\n1\n", 0, False)


def test_first_and_last_lines(tmp_path: Path) -> None:
    p = tmp_path / "data.csv"
    header = "time," + ",".join(f"c{i}_m" for i in range(200_000))  # a 2 MB header: read in chunks
    p.write_text("\ufeff" + header + "\r\n" + "1," + ",".join(["0.5"] * 200_000) + "\r\n2,0.5,0.")
    assert read_first_line(p) == header
    lines, ends_nl = read_last_lines(p, 2)
    assert not ends_nl and lines[-1] == "2,0.5,0." and lines[0].startswith("1,0.5,0.5")
    msg = _refused(read_first_line, p, 1000, "data.csv")
    assert "the first line of data.csv" in msg and "is longer than 1000 bytes" in msg
