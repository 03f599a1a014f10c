"""Run a real Prometheus (``/usr/bin/prometheus``) bound to 127.0.0.1, for tests and the local testbed.

:class:`PrometheusServer` writes a ``prometheus.yml`` from a list of scrape
targets, starts Prometheus in its own process group, waits until
``/-/ready`` answers, and always stops it by its group: on ``__exit__``, on
an exception, at interpreter exit (``atexit``) and on SIGTERM.  It leaves a
``prometheus.pid`` in its data directory so a later run can remove a
Prometheus left behind by a crash (:func:`kill_stale`).

Backfill: data recorded elsewhere as OpenMetrics text can be loaded into a
data directory before start with
``promtool tsdb create-blocks-from openmetrics FILE DATA_DIR`` (the input
must end with ``# EOF``); Prometheus then serves it like scraped data.
"""

from __future__ import annotations

import atexit
import contextlib
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import threading
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import yaml

PROMETHEUS_BIN = "/usr/bin/prometheus"
PID_FILE = "prometheus.pid"


@dataclass(frozen=True)
class ScrapeTarget:
    """One scrape job: ``address`` is ``host:port``; ``labels`` are attached to every series."""

    job: str
    address: str
    labels: Mapping[str, str] = field(default_factory=dict)
    metrics_path: str = "/metrics"


def free_port() -> int:
    """A TCP port free on 127.0.0.1 right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _as_targets(config_targets: Sequence[ScrapeTarget] | Mapping[str, str | Sequence[str]]) -> list[ScrapeTarget]:
    if isinstance(config_targets, Mapping):
        out = []
        for job, addrs in config_targets.items():
            for a in [addrs] if isinstance(addrs, str) else list(addrs):
                out.append(ScrapeTarget(job=job, address=a))
        return out
    return list(config_targets)


def render_config(targets: Sequence[ScrapeTarget], scrape_interval_s: float) -> dict[str, Any]:
    """The prometheus.yml content: one scrape config per (job, metrics path)."""
    iv = f"{int(scrape_interval_s * 1000)}ms"
    jobs: dict[tuple[str, str], list[dict[str, Any]]] = {}
    for t in targets:
        jobs.setdefault((t.job, t.metrics_path), []).append({"targets": [t.address], "labels": dict(t.labels)})
    return {
        "global": {"scrape_interval": iv, "scrape_timeout": iv, "evaluation_interval": iv},
        "scrape_configs": [
            {
                "job_name": job if path == "/metrics" else f"{job}{path.replace('/', '_')}",
                "metrics_path": path,
                "static_configs": groups,
            }
            for (job, path), groups in jobs.items()
        ],
    }


_LIVE: set[PrometheusServer] = set()
_LOCK = threading.Lock()
_HANDLERS_INSTALLED = False


def _stop_all() -> None:
    for srv in list(_LIVE):
        srv.stop()


def _install_handlers() -> None:
    """atexit always; SIGTERM only from the main thread, chaining the previous handler."""
    global _HANDLERS_INSTALLED
    with _LOCK:
        if _HANDLERS_INSTALLED:
            return
        _HANDLERS_INSTALLED = True
    atexit.register(_stop_all)
    if threading.current_thread() is not threading.main_thread():
        return
    previous = signal.getsignal(signal.SIGTERM)

    def on_term(signum: int, frame: Any) -> None:
        _stop_all()
        if callable(previous):
            previous(signum, frame)
        else:
            raise SystemExit(128 + signum)

    signal.signal(signal.SIGTERM, on_term)


def kill_stale(data_dir: str | Path) -> bool:
    """Stop a Prometheus a crashed run left on ``data_dir`` (by its pid file); True if one was found."""
    pid_file = Path(data_dir) / PID_FILE
    if not pid_file.exists():
        return False
    try:
        pid = int(pid_file.read_text().strip())
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().decode(errors="replace")
    except (ValueError, OSError):
        pid_file.unlink(missing_ok=True)
        return False
    # Only a prometheus that uses this very data directory: a reused pid must not be killed.
    if "prometheus" not in cmdline or str(Path(data_dir).resolve()) not in cmdline:
        pid_file.unlink(missing_ok=True)
        return False
    with contextlib.suppress(ProcessLookupError):
        os.killpg(pid, signal.SIGTERM)
    for _ in range(50):
        if not Path(f"/proc/{pid}").exists():
            break
        time.sleep(0.1)
    else:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(pid, signal.SIGKILL)
    pid_file.unlink(missing_ok=True)
    return True


class PrometheusServer:
    """A real Prometheus on 127.0.0.1 scraping ``config_targets``; use as a context manager.

    ``config_targets``: :class:`ScrapeTarget` list, or ``{job: "host:port" | [..]}``.
    ``data_dir``: TSDB and config location (a temporary directory, removed on
    stop, when not given).  ``url`` is set once started.
    """

    def __init__(
        self,
        config_targets: Sequence[ScrapeTarget] | Mapping[str, str | Sequence[str]],
        port: int | None = None,
        scrape_interval_s: float = 1.0,
        data_dir: str | Path | None = None,
        *,
        binary: str = PROMETHEUS_BIN,
        retention: str = "1d",
        startup_timeout_s: float = 30.0,
    ) -> None:
        self.targets = _as_targets(config_targets)
        self.port = port
        self.scrape_interval_s = scrape_interval_s
        self._own_dir = data_dir is None
        self.data_dir = Path(data_dir) if data_dir is not None else None
        self.binary = binary
        self.retention = retention
        self.startup_timeout_s = startup_timeout_s
        self.proc: subprocess.Popen[bytes] | None = None
        self.url = ""

    @property
    def config_path(self) -> Path:
        assert self.data_dir is not None
        return self.data_dir / "prometheus.yml"

    def _write_config(self) -> None:
        self.config_path.write_text(yaml.safe_dump(render_config(self.targets, self.scrape_interval_s), sort_keys=False))

    def start(self) -> PrometheusServer:
        if not Path(self.binary).exists() and shutil.which(self.binary) is None:
            raise FileNotFoundError(
                f"Prometheus binary {self.binary} not found; install the Debian package 'prometheus' or pass binary=..."
            )
        if self.data_dir is None:
            self.data_dir = Path(tempfile.mkdtemp(prefix="llmrca-prom-"))
        self.data_dir.mkdir(parents=True, exist_ok=True)
        kill_stale(self.data_dir)
        _install_handlers()
        last_err = ""
        for _attempt in range(3):  # a free port can be taken between probe and bind
            port = self.port or free_port()
            self._write_config()
            log = open(self.data_dir / "prometheus.log", "ab")
            cmd = [
                self.binary,
                f"--config.file={self.config_path}",
                f"--storage.tsdb.path={self.data_dir.resolve() / 'tsdb'}",
                f"--storage.tsdb.retention.time={self.retention}",
                f"--web.listen-address=127.0.0.1:{port}",
                "--web.enable-lifecycle",
                "--log.level=warn",
            ]
            self.proc = subprocess.Popen(cmd, stdout=log, stderr=log, stdin=subprocess.DEVNULL, start_new_session=True)
            log.close()
            (self.data_dir / PID_FILE).write_text(f"{self.proc.pid}\n")
            with _LOCK:
                _LIVE.add(self)
            self.url = f"http://127.0.0.1:{port}"
            if self._wait_ready():
                return self
            last_err = self._log_tail()
            self.stop(remove_data=False)
            if self.port is not None:
                break
        raise RuntimeError(f"Prometheus did not become ready on 127.0.0.1 (log {self.data_dir / 'prometheus.log'}): {last_err}")

    def _wait_ready(self) -> bool:
        deadline = time.monotonic() + self.startup_timeout_s
        while time.monotonic() < deadline:
            if self.proc is None or self.proc.poll() is not None:
                return False
            try:
                if httpx.get(self.url + "/-/ready", timeout=1.0).status_code == 200:
                    return True
            except httpx.HTTPError:
                pass
            time.sleep(0.1)
        return False

    def _log_tail(self) -> str:
        try:
            return (self.data_dir / "prometheus.log").read_text(errors="replace")[-800:].strip()  # type: ignore[operator]
        except OSError:
            return ""

    def reload(self, config_targets: Sequence[ScrapeTarget] | Mapping[str, str | Sequence[str]]) -> None:
        """Replace the scrape targets of the running server (rewrites the config, then /-/reload)."""
        self.targets = _as_targets(config_targets)
        self._write_config()
        r = httpx.post(self.url + "/-/reload", timeout=10.0)
        if r.status_code != 200:
            raise RuntimeError(f"Prometheus refused the new config ({r.status_code}): {r.text.strip()}")

    def wait_for_scrapes(self, n: int = 1, timeout_s: float = 30.0) -> None:
        """Block until every target has been scraped successfully ``n`` times (by ``up`` samples)."""
        deadline = time.monotonic() + timeout_s
        want = len({(t.job, t.address) for t in self.targets})
        while time.monotonic() < deadline:
            q = f"count_over_time(up[{max(1, int(n * self.scrape_interval_s * 3))}s]) >= {n}"
            try:
                res = httpx.get(self.url + "/api/v1/query", params={"query": f"({q}) and (up == 1)"}, timeout=5.0).json()
                if len(res.get("data", {}).get("result", [])) >= want:
                    return
            except (httpx.HTTPError, ValueError):
                pass
            time.sleep(self.scrape_interval_s / 2)
        raise TimeoutError(f"not every target of {self.url} was scraped {n} times within {timeout_s} s; see {self.url}/targets")

    def stop(self, remove_data: bool | None = None) -> None:
        """Stop Prometheus (SIGTERM to its group, SIGKILL after 10 s); idempotent."""
        with _LOCK:
            _LIVE.discard(self)
        proc, self.proc = self.proc, None
        if proc is not None and proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGTERM)
            try:
                proc.wait(10)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(proc.pid, signal.SIGKILL)
                proc.wait(5)
        if self.data_dir is not None:
            (self.data_dir / PID_FILE).unlink(missing_ok=True)
            if (self._own_dir if remove_data is None else remove_data) and self._own_dir:
                shutil.rmtree(self.data_dir, ignore_errors=True)

    def __enter__(self) -> PrometheusServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
