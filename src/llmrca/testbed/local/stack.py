"""Bring the local testbed up, report its status, and tear it down — also after a crash.

Layout of a run (``run_dir``, default ``/tmp/llmrca-testbed``)::

    state.json            what this run created: run id, process groups, cgroups, ports
    pods/<pod>/           per pod: <pod>.log, spans.jsonl, net.json, netem.json, gpu.json
    nginx/                nginx prefix (conf, pid, access/error logs, temp dirs)
    prometheus/           prometheus.yml and its TSDB

Every process is started with ``sys.executable`` (or the nginx / prometheus
binary) in its own session, so its pid is its process group id; the state
file records every group *before* the process starts doing anything, and
cgroups are recorded before they are created.  ``down`` kills the recorded
groups and every process still inside the run's cgroups, removes the
cgroups (found by scanning our ``llmrca/<run_id>`` prefix, not only from the
state file) and the run directory.  Processes are never looked up by name.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

from llmrca.config import Config
from llmrca.errors import LlmrcaError
from llmrca.telemetry import GATEWAY, HEAD, OPERATOR, worker_name
from llmrca.testbed.local import cgroups as cgr
from llmrca.testbed.local import netfilter as nf
from llmrca.testbed.local.nginx import NGINX_BIN, nginx_command, write_config

PROMETHEUS_BIN = "/usr/bin/prometheus"
DEFAULT_RUN_DIR = "/tmp/llmrca-testbed"
NETNS_PREFIX = "llmrca-"


class TestbedError(LlmrcaError):
    """The local testbed could not start, or is in a state the command cannot work with."""


@dataclass
class LocalTestbedConfig(Config):
    """Sizes of the local testbed, scaled to a 2-core / 24 GiB machine (the paper: 8 CPU / 16 GiB per pod)."""

    workers: int = 3
    run_dir: str = DEFAULT_RUN_DIR
    seed: int = 0
    serving_cpu: float = 0.4  # cores per serving pod (head and workers)
    serving_memory_mib: int = 384
    gateway_cpu: float = 0.3
    gateway_memory_mib: int = 256
    operator_cpu: float = 0.1
    operator_memory_mib: int = 192
    time_scale: float = 6.0  # emulated accelerator runs this many times slower than the A100 model (fewer tokens/s, less CPU)
    max_num_seqs: int = 32
    kv_tokens: int = 4096
    cpu_per_token_ms: float = 0.5
    cpu_per_step_ms: float = 1.0
    engine_host_memory_mib: int = 96
    restart_delay_s: float = 2.0
    memory_threshold: float = 0.95
    scrape_interval_s: float = 2.0
    startup_timeout_s: float = 90.0


@dataclass
class State:
    """What a running testbed is made of (run dir, pods, ports, cgroups, process groups), saved as ``state.json``."""
    run_id: str
    run_dir: str
    cgroup_version: int = 1
    created: float = field(default_factory=time.time)
    groups: dict[str, int] = field(default_factory=dict)  # name -> pgid
    starts: dict[str, int] = field(default_factory=dict)  # name -> start time of the group leader (clock ticks since boot)
    cgroups: dict[str, str] = field(default_factory=dict)  # pod -> cgroup rel path
    netns: list[str] = field(default_factory=list)
    ports: dict[str, int] = field(default_factory=dict)
    pods: dict[str, dict[str, Any]] = field(default_factory=dict)
    config: dict[str, Any] = field(default_factory=dict)
    owner_pid: int = field(default_factory=os.getpid)

    @property
    def path(self) -> Path:
        """The state file, ``<run_dir>/state.json``."""
        return Path(self.run_dir) / "state.json"

    def save(self) -> None:
        """Write the state atomically (temporary file + rename), and register the run (:data:`RUNS_REGISTRY`)."""
        tmp = self.path.with_suffix(".tmp")
        tmp.write_text(json.dumps(self.__dict__, indent=1))
        os.replace(tmp, self.path)
        with contextlib.suppress(OSError):  # the registry only protects live runs from `down --all`: best effort
            RUNS_REGISTRY.mkdir(parents=True, exist_ok=True)
            # its process groups too: Prometheus and the exporter run outside the run's cgroups, so a run whose folder
            # is gone (moved, deleted) is still found by `down --all`
            (RUNS_REGISTRY / f"{self.run_id}.json").write_text(json.dumps({"run_dir": str(Path(self.run_dir).resolve()),
                                                                          "groups": self.groups, "starts": self.starts}))

    @classmethod
    def load(cls, run_dir: str | Path) -> State | None:
        """The state saved in ``run_dir``, or None when there is none."""
        p = Path(run_dir) / "state.json"
        if not p.exists():
            return None
        return cls(**json.loads(p.read_text()))

    # convenient views
    def pod_dir(self, pod: str) -> Path:
        """The pod's folder (logs, spans, control files)."""
        return Path(self.run_dir) / "pods" / pod

    def cgroup(self, pod: str) -> cgr.PodCgroup:
        """The pod's cgroup."""
        return cgr.PodCgroup(self.cgroups[pod], self.cgroup_version)

    @property
    def gateway_url(self) -> str:
        """The gateway's URL on 127.0.0.1."""
        return f"http://127.0.0.1:{self.ports['gateway']}"

    @property
    def prometheus_url(self) -> str:
        """Prometheus' URL on 127.0.0.1."""
        return f"http://127.0.0.1:{self.ports['prometheus']}"

    @property
    def components(self) -> list[str]:
        """The pods' names."""
        return list(self.pods)


class Terminated(KeyboardInterrupt):
    """SIGTERM received while the testbed was starting (``timeout``, ``kill``): handled like Ctrl-C."""


@contextlib.contextmanager
def _terminate_as_interrupt() -> Iterator[None]:
    """Inside the block SIGTERM raises :class:`Terminated`, so a start cut short by ``timeout`` or ``kill`` cleans up as
    one cut short by Ctrl-C does (the default action would end the process with the pods running).  Only in the main
    thread (Python delivers signals there); elsewhere a no-op."""
    import threading

    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def raise_terminated(signum: int, frame: Any) -> None:
        raise Terminated("SIGTERM")

    previous = signal.signal(signal.SIGTERM, raise_terminated)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


#: SIGINT and SIGTERM are ignored inside the block (a cleanup that must finish), then restored; in the main thread only.
_signals_held = nf.signals_held


def _free_ports(n: int) -> list[int]:
    socks = []
    try:
        for _ in range(n):
            s = socket.socket()
            s.bind(("127.0.0.1", 0))
            socks.append(s)
        return [s.getsockname()[1] for s in socks]
    finally:
        for s in socks:
            s.close()


def proc_start_ticks(pid: int) -> int | None:
    """Start time of ``pid`` (field 22 of /proc/<pid>/stat): tells our process from a later one with a reused pid."""
    try:
        return int(Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[19])
    except (OSError, IndexError, ValueError):
        return None


def _alive(pgid: int) -> bool:
    """Whether process group ``pgid`` still has a member that is not a zombie.

    A SIGKILLed process stays a zombie until its parent reaps it (and an
    orphan until PID 1 does, which a container's PID 1 may never do): it runs
    nothing and holds nothing, so it does not count as left behind.
    """
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    with contextlib.suppress(ChildProcessError, OSError):
        os.waitpid(pgid, os.WNOHANG)  # reap the leader if it is our own child
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except (OSError, IndexError):
            continue
        if len(fields) > 2 and fields[2] == str(pgid) and fields[0] != "Z":
            return True
    return False


class LocalTestbed:
    """The running stack.  Use :meth:`up` / :meth:`attach`, then :meth:`status`, :meth:`down`."""

    def __init__(self, state: State, config: LocalTestbedConfig) -> None:
        self.state = state
        self.config = config

    # -- starting ----------------------------------------------------------------------
    @classmethod
    def attach(cls, run_dir: str | Path = DEFAULT_RUN_DIR) -> LocalTestbed:
        """The testbed running in ``run_dir``; raises TestbedError when there is none."""
        st = State.load(run_dir)
        if st is None:
            raise TestbedError(f"no local testbed state in {run_dir}; start one with `llmrca testbed up`")
        return cls(st, LocalTestbedConfig.from_dict(st.config))

    @classmethod
    def up(cls, config: LocalTestbedConfig | None = None, progress: Callable[[str], None] | None = None) -> LocalTestbed:
        """Start a testbed (cgroups, pods, Prometheus) and wait until it is healthy; raises TestbedError (and cleans up) on failure."""
        cfg = config or LocalTestbedConfig()
        say = progress or (lambda m: None)
        for binary in (NGINX_BIN, PROMETHEUS_BIN):
            if not Path(binary).exists():
                raise TestbedError(f"{binary} is missing; install the Debian package ({Path(binary).name})")
        if os.geteuid() != 0:
            raise TestbedError("the local testbed needs root (cgroups); run it as root")
        run_dir = Path(cfg.run_dir)
        old = State.load(run_dir)
        if old is not None:
            raise TestbedError(f"a testbed state already exists in {run_dir} (run {old.run_id}); run `llmrca testbed down --run-dir {run_dir}` "
                               "first (or choose another --run-dir)")
        version = cgr.detect_version()
        run_dir.mkdir(parents=True, exist_ok=True)
        st = State(run_id=f"r{int(time.time())}-{os.getpid()}", run_dir=str(run_dir), cgroup_version=version, config=cfg.to_dict())
        st.save()
        tb = cls(st, cfg)
        with _terminate_as_interrupt():
            try:
                tb._start_all(say)
                tb.wait_healthy(cfg.startup_timeout_s, say)
            except BaseException as e:
                why = "interrupted" if isinstance(e, KeyboardInterrupt) else f"failed ({type(e).__name__}: {e})"
                say(f"start {why}; cleaning up what was started")
                with _signals_held():  # a second Ctrl-C (or timeout's forwarded signal) must not cut the cleanup short
                    removed = tb.down()
                say("cleaned up: " + ", ".join(f"{k.replace('_', ' ')} {v}" for k, v in removed.items() if v) + " removed"
                    if any(removed.values()) else "cleaned up: nothing had started")
                raise
        return tb

    def _spawn(self, name: str, cmd: list[str], pod: str | None, log: Path) -> int:
        """Start ``cmd`` in its own session (and the pod's cgroup); record its pgid before it runs."""
        cg = self.state.cgroup(pod) if pod else None
        log.parent.mkdir(parents=True, exist_ok=True)
        out = open(log, "ab")

        def pre() -> None:  # runs in the child before exec: join the pod before any work happens
            if cg is not None:
                cg.add(os.getpid())

        env = dict(os.environ)
        src = str(Path(__file__).resolve().parents[3])
        env["PYTHONPATH"] = src + (os.pathsep + env["PYTHONPATH"] if env.get("PYTHONPATH") else "")
        p = subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, start_new_session=True,
                             preexec_fn=pre, env=env, close_fds=True)
        out.close()
        self.state.groups[name] = p.pid
        self.state.starts[name] = proc_start_ticks(p.pid) or 0
        self.state.save()
        return p.pid

    def _start_all(self, say: Callable[[str], None]) -> None:
        """Create the pods' cgroups, then start the serving pods, the gateway, the operator and the node's exporters."""
        cfg = self.config
        workers = [worker_name(i) for i in range(1, cfg.workers + 1)]
        serving = [HEAD, *workers]
        pods = [GATEWAY, *serving, OPERATOR]
        # ports: per serving pod engine/sup (internal) + api/sup/stats (sidecar); router; gateway; operator; cadvisor; prometheus
        need = len(serving) * 5 + 2 + 3 + 3 + 3 + 2
        ports = iter(_free_ports(need))
        self._create_cgroups(pods, say)
        self._start_serving(serving, workers, ports)
        say(f"serving pods started: {', '.join(serving)}")
        g = self._start_gateway(ports)
        say(f"gateway (nginx) started on 127.0.0.1:{g}")
        self._start_operator(serving, ports)
        self._start_node(pods, ports)
        say(f"cadvisor exporter and Prometheus started (http://127.0.0.1:{self.state.ports['prometheus']})")

    def _create_cgroups(self, pods: list[str], say: Callable[[str], None]) -> None:
        cfg, st = self.config, self.state
        for pod in pods:
            st.cgroups[pod] = f"{cgr.PREFIX}/{st.run_id}/{pod}"
            st.save()
            if pod == GATEWAY:
                cpu, mem = cfg.gateway_cpu, cfg.gateway_memory_mib
            elif pod == OPERATOR:
                cpu, mem = cfg.operator_cpu, cfg.operator_memory_mib
            else:
                cpu, mem = cfg.serving_cpu, cfg.serving_memory_mib
            st.cgroup(pod).create(cpu, mem * 2**20)
            st.pod_dir(pod).mkdir(parents=True, exist_ok=True)
        shares = cgr.set_group_weight(st.run_id, len(pods), st.cgroup_version)
        say(f"cgroups v{st.cgroup_version} created for {len(pods)} pods under {cgr.PREFIX}/{st.run_id} (group weight {shares})")


    def _start_serving(self, serving: list[str], workers: list[str], ports: Iterator[int]) -> None:
        """Serving pods: sidecar + supervisor(engine) [+ router on the head]."""
        cfg, st, py = self.config, self.state, sys.executable
        for pod in serving:
            d = st.pod_dir(pod)
            p = {k: next(ports) for k in ("engine", "sup", "api", "sup_public", "stats")}
            info: dict[str, Any] = {"role": "head" if pod == HEAD else "worker", "ports": p, "cpu": cfg.serving_cpu,
                                    "memory_mib": cfg.serving_memory_mib, "health": f"http://127.0.0.1:{p['api']}/health",
                                    "admin": f"http://127.0.0.1:{p['engine']}"}
            maps = ["--map", f"{p['api']}:{p['engine']}", "--map", f"{p['sup_public']}:{p['sup']}"]
            if pod == HEAD:
                p["router"], p["router_public"] = next(ports), next(ports)
                maps += ["--map", f"{p['router_public']}:{p['router']}"]
            st.pods[pod] = info
            self._spawn(f"{pod}/sidecar", [py, "-m", "llmrca.testbed.local.sidecar", "--pod", pod, "--dir", str(d), "--stats-port",
                                           str(p["stats"]), "--seed", str(cfg.seed), *maps], pod, d / "sidecar.out")
            self._spawn(
                f"{pod}/supervisor",
                [py, "-m", "llmrca.testbed.local.supervisor", "--pod", pod, "--dir", str(d), "--port", str(p["sup"]), "--engine-port",
                 str(p["engine"]), "--cgroup", st.cgroups[pod], "--cgroup-version", str(st.cgroup_version), "--restart-delay-s",
                 str(cfg.restart_delay_s), "--memory-threshold", str(cfg.memory_threshold), "--", "--time-scale", str(cfg.time_scale),
                 "--max-num-seqs", str(cfg.max_num_seqs), "--kv-tokens", str(cfg.kv_tokens), "--cpu-per-token-ms",
                 str(cfg.cpu_per_token_ms), "--cpu-per-step-ms", str(cfg.cpu_per_step_ms), "--host-mem-mib", str(cfg.engine_host_memory_mib)],
                pod, d / "supervisor.out",
            )
        head = st.pods[HEAD]["ports"]
        replicas = [f"{HEAD}=http://127.0.0.1:{head['engine']}"]  # in-pod replica: no sidecar hop
        replicas += [f"{w}=http://127.0.0.1:{st.pods[w]['ports']['api']}" for w in workers]
        hd = st.pod_dir(HEAD)
        self._spawn(f"{HEAD}/router", [py, "-m", "llmrca.testbed.local.router", "--pod", HEAD, "--dir", str(hd), "--port",
                                       str(head["router"]), "--seed", str(cfg.seed)] + [x for r in replicas for x in ("--replica", r)],
                    HEAD, hd / "router.out")

    def _start_gateway(self, ports: Iterator[int]) -> int:
        """Gateway pod: nginx + exporter + sidecar; returns the public port."""
        cfg, st, py = self.config, self.state, sys.executable
        head = st.pods[HEAD]["ports"]
        gd = st.pod_dir(GATEWAY)
        g = {k: next(ports) for k in ("nginx", "public", "exporter", "exporter_public", "stats")}
        prefix = Path(st.run_dir) / "nginx"
        write_config(prefix, g["nginx"], head["router_public"])
        st.pods[GATEWAY] = {"role": "gateway", "ports": g, "cpu": cfg.gateway_cpu, "memory_mib": cfg.gateway_memory_mib,
                            "health": f"http://127.0.0.1:{g['public']}/healthz"}
        self._spawn(f"{GATEWAY}/sidecar", [py, "-m", "llmrca.testbed.local.sidecar", "--pod", GATEWAY, "--dir", str(gd), "--stats-port",
                                           str(g["stats"]), "--seed", str(cfg.seed), "--map", f"{g['public']}:{g['nginx']}", "--map",
                                           f"{g['exporter_public']}:{g['exporter']}"], GATEWAY, gd / "sidecar.out")
        self._spawn(f"{GATEWAY}/nginx", nginx_command(prefix), GATEWAY, gd / "nginx.out")
        self._spawn(f"{GATEWAY}/exporter", [py, "-m", "llmrca.testbed.local.nginx", "--pod", GATEWAY, "--dir", str(gd), "--prefix",
                                            str(prefix), "--port", str(g["exporter"])], GATEWAY, gd / "exporter.out")
        st.ports["gateway"] = g["public"]
        return g["public"]

    def _start_operator(self, serving: list[str], ports: Iterator[int]) -> None:
        cfg, st, py = self.config, self.state, sys.executable
        od = st.pod_dir(OPERATOR)
        o = {k: next(ports) for k in ("operator", "public", "stats")}
        st.pods[OPERATOR] = {"role": "operator", "ports": o, "cpu": cfg.operator_cpu, "memory_mib": cfg.operator_memory_mib,
                             "health": f"http://127.0.0.1:{o['public']}/health"}
        self._spawn(f"{OPERATOR}/sidecar", [py, "-m", "llmrca.testbed.local.sidecar", "--pod", OPERATOR, "--dir", str(od), "--stats-port",
                                            str(o["stats"]), "--seed", str(cfg.seed), "--map", f"{o['public']}:{o['operator']}"],
                    OPERATOR, od / "sidecar.out")
        targets = [f"{pod}={st.pods[pod]['health']}" for pod in [GATEWAY, *serving]]
        self._spawn(f"{OPERATOR}/operator", [py, "-m", "llmrca.testbed.local.operator", "--pod", OPERATOR, "--dir", str(od), "--port",
                                             str(o["operator"])] + [x for t in targets for x in ("--target", t)], OPERATOR, od / "operator.out")


    def _start_node(self, pods: list[str], ports: Iterator[int]) -> None:
        """Node level: the cadvisor-like exporter and Prometheus."""
        st, py = self.state, sys.executable
        run_dir = Path(st.run_dir)
        st.ports["cadvisor"] = next(ports)
        self._spawn("node/cadvisor", [py, "-m", "llmrca.testbed.local.cadvisor", "--port", str(st.ports["cadvisor"]), "--pods-dir",
                                      str(run_dir / "pods"), "--cgroup-version", str(st.cgroup_version)]
                    + [x for pod in pods for x in ("--pod", f"{pod}={st.cgroups[pod]}")], None, run_dir / "node" / "cadvisor.out")
        st.ports["prometheus"] = next(ports)
        promdir = run_dir / "prometheus"
        promdir.mkdir(parents=True, exist_ok=True)
        (promdir / "prometheus.yml").write_text(self._prometheus_yaml())
        self._spawn("node/prometheus", [PROMETHEUS_BIN, f"--config.file={promdir / 'prometheus.yml'}", f"--storage.tsdb.path={promdir / 'data'}",
                                        f"--web.listen-address=127.0.0.1:{st.ports['prometheus']}", "--storage.tsdb.retention.time=2d",
                                        "--web.enable-admin-api", "--log.level=warn"], None, run_dir / "node" / "prometheus.out")
        st.save()

    def scrape_targets(self) -> list[tuple[str, str, str]]:
        """(job, pod, host:port) of every scrape target; pod targets go through the pod's sidecar."""
        st = self.state
        out: list[tuple[str, str, str]] = []
        for pod, info in st.pods.items():
            p = info["ports"]
            out.append(("istio-proxy", pod, f"127.0.0.1:{p['stats']}"))
            if info["role"] in ("head", "worker"):
                out.append(("vllm", pod, f"127.0.0.1:{p['api']}"))
                out.append(("ray", pod, f"127.0.0.1:{p['sup_public']}"))
            if info["role"] == "head":
                out.append(("ray-serve-proxy", pod, f"127.0.0.1:{p['router_public']}"))
            if info["role"] == "gateway":
                out.append(("ingress-nginx", pod, f"127.0.0.1:{p['exporter_public']}"))
            if info["role"] == "operator":
                out.append(("kuberay-operator", pod, f"127.0.0.1:{p['public']}"))
        return out

    def _prometheus_yaml(self) -> str:
        iv = self.config.scrape_interval_s
        lines = [
            "global:",
            f"  scrape_interval: {int(iv * 1000)}ms",
            f"  scrape_timeout: {int(iv * 900)}ms",
            f"  evaluation_interval: {int(iv * 1000)}ms",
            "scrape_configs:",
            "  - job_name: cadvisor",
            "    honor_labels: true",
            "    static_configs:",
            f"      - targets: ['127.0.0.1:{self.state.ports['cadvisor']}']",
        ]
        for job, pod, addr in self.scrape_targets():
            lines += [
                f"  - job_name: '{job}/{pod}'",
                "    static_configs:",
                f"      - targets: ['{addr}']",
                "        labels:",
                f"          pod: '{pod}'",
                "          namespace: 'llmrca'",
            ]
        return "\n".join(lines) + "\n"

    # -- health -------------------------------------------------------------------------
    def status(self) -> dict[str, dict[str, Any]]:
        """Per pod: health probe through its sidecar, processes in its cgroup, cpu/memory figures."""
        out: dict[str, dict[str, Any]] = {}
        with httpx.Client(timeout=3.0) as c:
            for pod, info in self.state.pods.items():
                row: dict[str, Any] = {"role": info["role"]}
                try:
                    row["healthy"] = c.get(info["health"]).status_code == 200
                except httpx.HTTPError as e:
                    row["healthy"] = False
                    row["error"] = type(e).__name__
                cg = self.state.cgroup(pod)
                try:
                    row["processes"] = len(cg.pids())
                    row["memory_mib"] = round(cg.memory_usage_bytes() / 2**20, 1)
                    row["memory_limit_mib"] = round(cg.memory_limit_bytes() / 2**20)
                    row["cpu_quota"] = cg.cpu_quota_cores()
                    row["oom_kills"] = cg.oom_kills()
                except OSError:
                    row["processes"] = 0
                out[pod] = row
            for node in ("prometheus",):
                try:
                    ok = c.get(self.state.prometheus_url + "/-/ready").status_code == 200
                except httpx.HTTPError:
                    ok = False
                out[node] = {"role": "monitoring", "healthy": ok}
        return out

    def faults(self) -> list[str]:
        """What of injected faults is on now, one sentence each: fault processes alive (``fault/<type>/<pod>``
        groups), control files the engines still honour (``<pod>/<name>.json`` with a future ``expires_at``), and
        ``llmrca inject`` records whose process is gone (a killed injector: its fault runs until it expires)."""
        out: list[str] = []
        for name, pgid in sorted(self.state.groups.items()):
            if name.startswith("fault/") and _alive(pgid):
                started = self.state.starts.get(name)
                if not started or proc_start_ticks(pgid) in (None, started):
                    _, ftype, pod = [*name.split("/", 2), "", ""][:3]
                    out.append(f"{ftype} on {pod}: its processes run (group {pgid})")
        now = time.time()
        for pod in self.state.pods:
            for f in sorted(self.state.pod_dir(pod).glob("*.json")):
                try:
                    d = json.loads(f.read_text())
                    exp, end = d.get("expires_at"), d.get("ends_at")
                except (OSError, ValueError, AttributeError):
                    continue
                if not (isinstance(exp, (int, float)) and exp > now):
                    continue
                if not isinstance(end, (int, float)):  # written without a planned end: only its expiry is known
                    out.append(f"{pod}: control file {f.name} in force for {exp - now:.0f} s more")
                elif end > now:
                    out.append(f"{pod}: control file {f.name} in force; its {d.get('fault') or 'fault'} is planned to end in "
                               f"{end - now:.0f} s (the file expires by itself in {exp - now:.0f} s)")
                else:
                    out.append(f"{pod}: control file {f.name} in force {now - end:.0f} s past its planned end (its injector is "
                               f"removing it, or was killed); it expires by itself in {exp - now:.0f} s")
            for line in nf.live_rule_lines(nf.tag(self.state.run_id, pod)):  # packet-loss rules match until their --datestop
                if " -j DROP" in line and (stop := nf.rule_stop(line)) is not None:
                    out.append(f"{pod}: packet-loss rules (iptables) in force for {stop - now:.0f} s more")
        for f in sorted((Path(self.state.run_dir) / INJECTORS).glob("*.json")):
            try:
                rec = json.loads(f.read_text())
                pid, start, exp = int(rec["pid"]), int(rec["start"]), rec.get("expires_at")
            except (OSError, ValueError, KeyError, TypeError):
                continue
            if _running(pid, start):
                continue
            if isinstance(exp, (int, float)) and exp <= now:  # a killed injector whose fault has expired: nothing left
                f.unlink(missing_ok=True)
                continue
            left = f" (for {exp - now:.0f} s more at most)" if isinstance(exp, (int, float)) else ""
            out.append(f"llmrca inject pid {pid} is gone without removing its fault (killed?): what it injected stays "
                       f"until it expires{left} or `llmrca testbed down`")
        return out

    def wait_healthy(self, timeout_s: float = 60.0, say: Callable[[str], None] | None = None) -> None:
        """Wait until every pod answers, a chat completion passes the gateway and Prometheus scrapes every target."""
        say = say or (lambda m: None)
        deadline = time.monotonic() + timeout_s
        last: dict[str, Any] = {}
        while time.monotonic() < deadline:
            self._check_groups()
            last = self.status()
            bad = [p for p, r in last.items() if not r.get("healthy")]
            if not bad and self._e2e_ok() and self._targets_up():
                say("healthy")
                return
            time.sleep(1.0)
        bad = [p for p, r in last.items() if not r.get("healthy")]
        tails = "; ".join(f"{p}: {self._log_tail(p)}" for p in bad[:3])
        raise TestbedError(f"testbed not healthy after {timeout_s:g} s; unhealthy: {bad or 'none (end-to-end request or scrape failed)'}. {tails}")

    def _check_groups(self) -> None:
        dead = [n for n, g in self.state.groups.items() if not _alive(g)]
        if dead:
            raise TestbedError(f"processes exited during start: {dead}; see {self.state.run_dir}/pods/*/*.out")

    def _log_tail(self, pod: str) -> str:
        d = self.state.pod_dir(pod)
        for f in sorted(d.glob("*.out")):
            t = f.read_text(errors="replace").strip().splitlines()[-2:]
            if t:
                return f"{f.name}: {' | '.join(t)}"
        return "(no output)"

    def _e2e_ok(self) -> bool:
        body = {"model": "x", "messages": [{"role": "user", "content": "hello there"}], "max_tokens": 2, "stream": False}
        try:
            r = httpx.post(self.state.gateway_url + "/v1/chat/completions", json=body, timeout=10.0)
            return r.status_code == 200
        except httpx.HTTPError:
            return False

    def _targets_up(self) -> bool:
        try:
            r = httpx.get(self.state.prometheus_url + "/api/v1/targets", timeout=3.0).json()
        except (httpx.HTTPError, ValueError):
            return False
        act = r.get("data", {}).get("activeTargets", [])
        return len(act) == len(self.scrape_targets()) + 1 and all(t.get("health") == "up" for t in act)

    # -- tearing down --------------------------------------------------------------------
    def down(self) -> dict[str, int]:
        """Stop every process group and remove the cgroups; returns counts of what was stopped."""
        return down(self.state.run_dir)


#: Every run's id -> its run folder (``<run_id>.json``), written when its state is saved and removed by :func:`down`:
#: ``down --all`` leaves the cgroups of a run whose state and process groups are alive (another user's testbed).
RUNS_REGISTRY = Path(tempfile.gettempdir()) / "llmrca-runs"


def live_run_dir(run_id: str) -> Path | None:
    """The folder of run ``run_id`` when it is registered, its state file names it, and one of its process
    groups is alive; else None (a run left behind by a crash, or no longer registered)."""
    try:
        run_dir = Path(json.loads((RUNS_REGISTRY / f"{run_id}.json").read_text())["run_dir"])
        st = State.load(run_dir)
    except (OSError, ValueError, KeyError, TypeError):
        return None
    if st is None or st.run_id != run_id or not any(_alive(g) for g in st.groups.values()):
        return None
    return run_dir


#: Where a running ``llmrca inject`` records itself (``<pid>.json``: pid and start ticks) under the run folder.
INJECTORS = "injectors"


@contextlib.contextmanager
def registered_injector(run_dir: str | Path, expires_at: float | None = None) -> Iterator[None]:
    """Record this process under ``run_dir/injectors`` while it holds a fault, so that :func:`down` stops it first.

    ``expires_at`` (epoch s): when what it injects expires by itself (its control files' and rules' expiry), so
    that a record left by a killed injector is said only while its fault can still be on."""
    d = Path(run_dir) / INJECTORS
    d.mkdir(parents=True, exist_ok=True)
    f = d / f"{os.getpid()}.json"
    f.write_text(json.dumps({"pid": os.getpid(), "start": proc_start_ticks(os.getpid()), "expires_at": expires_at}))
    try:
        yield
    finally:
        f.unlink(missing_ok=True)


def injector_records(run_dir: str | Path) -> Iterator[tuple[int, int]]:
    """``(pid, start ticks)`` of every ``llmrca inject`` recorded under ``run_dir`` (:func:`registered_injector`),
    live or not; unreadable records are skipped."""
    for f in sorted((Path(run_dir) / INJECTORS).glob("*.json")):
        try:
            rec = json.loads(f.read_text())
            yield int(rec["pid"]), int(rec["start"])
        except (OSError, ValueError, KeyError, TypeError):
            continue


def _running(pid: int, start: int) -> bool:
    """Whether ``pid`` is still the process that started at ``start`` ticks and is not a zombie (an exited child
    of the caller is left for the caller to reap, with its exit status)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except (OSError, IndexError):
        return False
    return len(fields) > 19 and fields[0] != "Z" and fields[19] == str(start)


def stop_injectors(run_dir: str | Path, wait_s: float = 15.0) -> int:
    """Stop every live ``llmrca inject`` of the run: SIGTERM (it removes its fault and exits), SIGKILL after ``wait_s``.

    Only processes recorded by :func:`registered_injector` whose start time still matches (a reused pid is
    left alone).  Returns how many were stopped.
    """
    live: list[tuple[int, int]] = []
    for pid, start in injector_records(run_dir):
        if pid != os.getpid() and _running(pid, start):
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.kill(pid, signal.SIGTERM)
                live.append((pid, start))
    n = len(live)
    deadline = time.monotonic() + wait_s
    while live and time.monotonic() < deadline:
        time.sleep(0.1)
        live = [(p, s) for p, s in live if _running(p, s)]
    for p, _ in live:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.kill(p, signal.SIGKILL)
    return n


def down(run_dir: str | Path = DEFAULT_RUN_DIR, all_runs: bool = False) -> dict[str, int]:
    """Remove every process, cgroup, namespace and file of the run in ``run_dir``.

    First stops the run's ``llmrca inject`` processes (they remove their faults), then works from the
    state file and also scans our cgroup prefix for the run (and, with ``all_runs``, for every
    ``llmrca/*`` run left by a crash).  Returns counts (``injectors`` only when one was running).
    """
    run_dir = Path(run_dir)
    st = State.load(run_dir)
    counts = {"process_groups": 0, "processes": 0, "cgroups": 0, "netns": 0}
    injectors = stop_injectors(run_dir)
    if injectors:
        counts["injectors"] = injectors
    run_ids: set[str] = set()
    version = None
    if st is not None:
        run_ids.add(st.run_id)
        version = st.cgroup_version
        for name, pgid in st.groups.items():
            if pgid == os.getpgid(0):
                continue  # never our own group
            started = st.starts.get(name)
            if started and proc_start_ticks(pgid) not in (None, started):
                continue  # the pid was reused by an unrelated process: not ours to kill
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(pgid, signal.SIGKILL)
                counts["process_groups"] += 1
    if all_runs:
        registered = sorted(f.stem for f in RUNS_REGISTRY.glob("*.json")) if RUNS_REGISTRY.is_dir() else []
        for rid in dict.fromkeys([*cgr.list_runs(), *registered]):
            if rid not in run_ids and live_run_dir(rid) is not None:
                counts["live_runs_left"] = counts.get("live_runs_left", 0) + 1  # another testbed that runs: not a leftover
                continue
            run_ids.add(rid)
            # the process groups the registry recorded (a run whose folder is gone): those outside its cgroups too
            for pgid in _registered_groups(rid):
                with contextlib.suppress(ProcessLookupError, PermissionError):
                    os.killpg(pgid, signal.SIGKILL)
                    counts["process_groups"] += 1
    for rid in run_ids:
        try:
            cgs = cgr.run_cgroups(rid, version)
        except cgr.CgroupError:
            cgs = []
        for cg in cgs:
            counts["processes"] += cg.kill_all()
            counts["cgroups"] += 1
        with contextlib.suppress(cgr.CgroupError):
            cgr.remove_run_root(rid, version)
    for rid in run_ids:  # packet-loss rules of the run (llmrca.testbed.local.netfilter)
        with contextlib.suppress(nf.NetfilterError, OSError):
            counts["netfilter_rules"] = counts.get("netfilter_rules", 0) + nf.remove_rules(f"llmrca:{rid}:")
    for ns in _our_netns(st.netns if st else []):
        subprocess.run(["ip", "netns", "delete", ns], check=False, capture_output=True)
        counts["netns"] += 1
    if st is not None:
        # wait for killed groups to be reaped before deleting their files
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline and any(_alive(g) for g in st.groups.values() if g != os.getpgid(0)):
            time.sleep(0.05)
    if run_dir.exists() and (st is not None or (run_dir / "pods").exists()):
        shutil.rmtree(run_dir, ignore_errors=True)
    for rid in run_ids:
        if live_run_dir(rid) is None:
            (RUNS_REGISTRY / f"{rid}.json").unlink(missing_ok=True)
    with contextlib.suppress(OSError):  # the registry's folder goes with its last run
        RUNS_REGISTRY.rmdir()
    return counts


def _registered_groups(run_id: str) -> list[int]:
    """The process groups :data:`RUNS_REGISTRY` recorded for ``run_id`` that are still the processes it started (their
    start ticks match: a reused pid is not ours to kill), never the caller's own group."""
    try:
        rec = json.loads((RUNS_REGISTRY / f"{run_id}.json").read_text())
        groups, starts = dict(rec.get("groups") or {}), dict(rec.get("starts") or {})
    except (OSError, ValueError, TypeError, AttributeError):
        return []
    out = []
    for name, pgid in groups.items():
        try:
            pgid = int(pgid)
        except (TypeError, ValueError):
            continue
        started = starts.get(name)
        if pgid == os.getpgid(0) or not _alive(pgid) or not started or proc_start_ticks(pgid) != started:
            continue
        out.append(pgid)
    return out


def _our_netns(recorded: list[str]) -> list[str]:
    try:
        names = [ln.split()[0] for ln in subprocess.run(["ip", "netns", "list"], capture_output=True, text=True, check=False).stdout.splitlines() if ln.strip()]
    except FileNotFoundError:
        return []
    return sorted({n for n in names if n in recorded})


def leftovers(run_id: str, groups: dict[str, int], run_dir: str | Path) -> list[str]:
    """What of a run is still there (for tests and `status`): live groups, cgroups, files."""
    out = [f"process group {n} ({g})" for n, g in groups.items() if _alive(g)]
    try:
        out += [f"cgroup {c.rel}" for c in cgr.run_cgroups(run_id) if c.exists()]
    except cgr.CgroupError:
        pass
    if Path(run_dir).exists():
        out.append(f"directory {run_dir}")
    return out
