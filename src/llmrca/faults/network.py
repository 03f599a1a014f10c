"""The network delay (Chaos Mesh NetworkChaos ``delay``, direction "to"; paper §4.3): traffic into the target pod waits.

One fault type, every backend side by side:

* :class:`SimNetworkDelay` (simulator): every request routed to the target
  waits ``latency ± jitter`` (netem's correlated jitter: an AR(1) of standard
  normals with ``correlation``), and a scrape of the target is lost with
  probability ``SimConfig.scrape_loss_under_delay``.
* :class:`LocalNetworkDelay` (local testbed): the pod's sidecar delays every
  inbound request (no netem in this kernel).
* :class:`K8sNetworkDelay` (Kubernetes): a Chaos Mesh ``NetworkChaos`` with
  ``delay.latency/jitter/correlation``, direction ``to``.
"""

from __future__ import annotations

import contextlib
import json
import os
import statistics
import threading
import time
from typing import TYPE_CHECKING, Any, ClassVar

import httpx
import numpy as np

from llmrca.faults.kubernetes import ChaosInjector
from llmrca.faults.local import LocalInjector, control_in_force, fault_lock
from llmrca.testbed.injection import FaultError
from llmrca.testbed.sim.faults import SimFault

if TYPE_CHECKING:
    from llmrca.testbed.sim.engine import SimRun


class SimNetworkDelay(SimFault):
    """Inbound requests to the target wait ``latency_ms ± jitter_ms`` (correlated)."""

    type = "network"
    # NetworkChaos delay, direction "to": traffic into the target pod
    defaults: ClassVar[dict[str, Any]] = {"latency_ms": 1000.0, "jitter_ms": 100.0, "correlation": 0.25}
    delays_requests = True
    delay_per_crossing = True  # netem delays every packet that leaves the pod
    roles = ("gateway", "head", "worker")  # the operator's API traffic is not modelled

    @classmethod
    def placed_on(cls, role: str, target: str = "") -> type[SimFault]:
        """A worker: this class; the gateway or the head (every request passes through): :class:`SimProxyNetworkDelay`."""
        super().placed_on(role, target)
        return SimProxyNetworkDelay if role in ("gateway", "head") and cls is SimNetworkDelay else cls

    @classmethod
    def problems(cls, p: dict[str, Any]) -> list[str]:
        """``latency_ms``, ``jitter_ms`` >= 0 and ``correlation`` a fraction in 0..1."""
        bad = []
        if p["latency_ms"] < 0 or p["jitter_ms"] < 0:
            bad.append("latency_ms and jitter_ms must be >= 0")
        if not 0 <= p["correlation"] <= 1:
            bad.append("correlation must be in 0..1 (a fraction, 0.25 = 25 %)")
        return bad

    def bind(self, run: SimRun) -> None:
        """Latency and jitter in seconds; the jitter's AR(1) state starts at 0."""
        super().bind(run)
        p = self.params
        self.lat, self.jit, self.corr = float(p.get("latency_ms", 0)) / 1e3, float(p.get("jitter_ms", 0)) / 1e3, float(p.get("correlation", 0))
        self.prev = 0.0

    def request_delay(self, run: SimRun) -> float:
        """Seconds added to one request (>= 0); draws one standard normal from the engine's generator."""
        self.prev = self.corr * self.prev + (1.0 - self.corr) * run.rng.standard_normal()
        return max(0.0, self.lat + self.jit * self.prev)

    def probe_answer_s(self, run: SimRun) -> float:
        """The target's reply to a router's probe leaves through the delayed interface: one delay draw."""
        return self.request_delay(run)

    def on_scrape(self, run: SimRun, s: int, on: bool) -> None:
        """A delayed scrape of the target times out (lost) with ``scrape_loss_under_delay`` probability."""
        if on:
            run.lost[s, self.tgt] = run.rng.random() < run.cfg.scrape_loss_under_delay

    def achieved(self, run: SimRun) -> dict[str, Any]:
        """Requests delayed, mean and sd of the added latency (ms), scrapes of the target lost during the fault."""
        m = ((run.rep == self.tgt) | (run.ingress == self.tgt)) & (run.arr >= self.start) & (run.arr < self.end)
        d = run.delay[m]
        win = (run.scrape_t > self.start) & (run.scrape_t <= self.end)
        return {
            "requests_delayed": int(m.sum()),
            "mean_added_latency_ms": round(float(d.mean()) * 1e3, 1) if d.size else None,
            "std_added_latency_ms": round(float(d.std()) * 1e3, 1) if d.size else None,
            "scrapes_lost": int(run.lost[win, self.tgt].sum()),
        }


def _probe_s(url: str, n: int, timeout: float, *, until: float | None = None, out: list[float] | None = None) -> list[float]:
    """Seconds of up to ``n`` GETs of ``url`` (failed ones are left out).  ``until`` (epoch s): no GET starts after
    it nor outlasts it; ``out`` is filled as the probes go."""
    out = [] if out is None else out
    with httpx.Client() as c:
        for _ in range(n):
            left = timeout if until is None else min(timeout, until - time.time())
            if left <= 0:
                break
            t = time.perf_counter()
            try:
                c.get(url, timeout=left)
            except httpx.HTTPError:
                continue
            out.append(time.perf_counter() - t)
    return out


class LocalNetworkDelay(LocalInjector):
    """The target pod's sidecar delays inbound requests; measures the sidecar's delays and probe latencies."""

    fault_type = "network"
    # the paper's NetworkChaos: latency 1000 ms, jitter 100 ms, correlation 0.25, direction "to"
    defaults: ClassVar[dict[str, Any]] = {"latency_ms": 1000.0, "jitter_ms": 100.0, "correlation": 0.25, "probes": 3}

    @classmethod
    def problems(cls, p: dict[str, Any]) -> list[str]:
        """The simulator's range checks (``latency_ms``, ``jitter_ms`` >= 0, ``correlation`` in 0..1), and ``probes``
        in 1..200; values that are no numbers are named."""
        try:
            q = {k: float(p[k]) for k in ("latency_ms", "jitter_ms", "correlation")}
            probes = int(p["probes"])
        except (TypeError, ValueError) as e:
            return [f"parameters must be numbers: {e}"]
        return [*SimNetworkDelay.problems(q), *([] if 1 <= probes <= 200 else ["probes must be in 1..200"])]

    def _net(self) -> dict[str, float]:
        try:
            return json.loads((self.pod_dir / "net.json").read_text())
        except (OSError, ValueError):
            return {"delay_applied_ms_sum": 0.0, "delay_applied_n": 0}

    def start(self) -> None:
        """Probe the pod, write the sidecar's delay control file, probe again while delayed."""
        self.url = self.tb.state.pods[self.spec.target]["health"]
        n = int(self.params["probes"])
        self.before = _probe_s(self.url, n, 5.0)
        self.net0 = self._net()
        self.ctl = self.pod_dir / "netem.json"
        with fault_lock(self.pod_dir):  # check and write as one step: two injections at once cannot both pass
            if control_in_force(self.ctl):  # another injection's delay: overwriting it, then removing it, would end both early
                raise FaultError(f"a network delay on {self.spec.target} is already in place (another injection?): "
                                 "wait for it to end, or stop it (llmrca testbed down removes every fault)")
            tmp = self.ctl.with_suffix(".tmp")
            tmp.write_text(json.dumps({k: float(self.params[k]) for k in ("latency_ms", "jitter_ms", "correlation")}
                                      | self._control_times()))
            self.wrote = True  # stop() removes the control file only if this injection wrote it
            os.replace(tmp, self.ctl)
        self.t0 = self.applied_at = time.time()
        self.during: list[float] = []
        timeout = (float(self.params["latency_ms"]) + 3 * float(self.params["jitter_ms"])) / 1000 + 5
        until = self.t0 + float(self.spec.duration_s)  # the probes end when the fault is to end: they never hold it on

        def probe() -> None:
            time.sleep(0.6)  # the sidecar polls its control file every 0.25 s
            _probe_s(self.url, n, timeout, until=until, out=self.during)

        self._thr = threading.Thread(target=probe, daemon=True)
        self._thr.start()

    def measure(self) -> dict[str, Any]:
        """Requests the sidecar delayed, their mean delay, probe latency before/during and the added latency (ms)."""
        self._thr.join(timeout=max(0.0, self.t0 + float(self.spec.duration_s) - time.time()) + 1.0)
        net = self._net()
        n = net.get("delay_applied_n", 0) - self.net0.get("delay_applied_n", 0)
        s = net.get("delay_applied_ms_sum", 0.0) - self.net0.get("delay_applied_ms_sum", 0.0)
        med_b = statistics.median(self.before) if self.before else None
        med_d = statistics.median(self.during) if self.during else None
        return {
            "sidecar_delayed_requests": int(n),
            "sidecar_mean_delay_ms": round(s / n, 1) if n else None,
            "probe_before_ms": round(med_b * 1000, 1) if med_b is not None else None,
            "probe_during_ms": round(med_d * 1000, 1) if med_d is not None else None,
            "added_latency_ms": round((med_d - med_b) * 1000, 1) if med_b is not None and med_d is not None else None,
        }

    def stop(self) -> None:
        """Remove the control file this injection wrote: the sidecar stops delaying (idempotent; another injection's
        file, found in place by :meth:`start`, is left alone)."""
        if getattr(self, "wrote", False):
            with contextlib.suppress(FileNotFoundError):
                self.ctl.unlink()
            self.wrote = False




class K8sNetworkDelay(ChaosInjector):
    """Chaos Mesh ``NetworkChaos`` ``delay`` (``latency_ms`` ± ``jitter_ms``, ``correlation``), direction ``to``, on the target pod.

    Achieved: Chaos Mesh's conditions and records; when a Prometheus is given, the share of the
    target's scrape targets that are down (the delay disturbs scrapes, PROTOCOL §1).
    """

    fault_type = "network"
    chaos_kind = "NetworkChaos"
    per_container = False
    # the paper: 1000 ms ± 100 ms, correlation 25 %, direction "to"
    defaults: ClassVar[dict[str, Any]] = {"latency_ms": 1000.0, "jitter_ms": 100.0, "correlation": 0.25}

    def chaos_spec(self) -> dict[str, Any]:
        """``action: delay``, ``direction: to``, ``delay.latency/jitter`` in ms and ``correlation`` in per cent (a string)."""
        corr = float(self.params["correlation"])
        return {
            "action": "delay",
            "direction": "to",
            "delay": {
                "latency": f"{float(self.params['latency_ms']):g}ms",
                "jitter": f"{float(self.params['jitter_ms']):g}ms",
                "correlation": f"{corr * 100:g}",
            },
        }

    def extra(self) -> dict[str, Any]:
        """``scrape_up`` of the target's pod (mean of ``up``; None without a Prometheus)."""
        return {"scrape_up": self.prom_value(f'avg(up{{namespace="{self.namespace}",pod="{self.pod_name}"}})')}


class SimProxyNetworkDelay(SimNetworkDelay):
    """The network delay on a pod every request passes through (the NGINX gateway, the Ray head's Serve proxy).

    Every request, whatever replica serves it, waits ``latency ± jitter`` on its way through the
    target (the same correlated jitter); scrapes of the target are lost as on a worker.
    """

    delays_requests = False

    def bind(self, run: SimRun) -> None:
        """As :class:`SimNetworkDelay`; every request waits on the path, before the head when the target is the gateway."""
        super().bind(run)
        self.waits: list[float] = []
        # the head when requests enter through every pod's proxy is a serving pod like a worker
        self.as_worker = not run.relays_every_request(self.tgt)
        if self.as_worker:
            self.delays_requests = True
            return
        self.delays_path = True
        self.path_before_head = self.tgt == run.GW

    def on_scrape(self, run: SimRun, s: int, on: bool) -> None:
        """A delayed scrape of the target is lost with ``scrape_loss_under_delay`` probability."""
        super().on_scrape(run, s, self.scrape_on(run, s))

    def path_delay(self, run: SimRun) -> float:
        """Seconds added to one request on its way through the target (>= 0)."""
        w = self.request_delay(run)
        self.waits.append(w)
        return w

    def achieved(self, run: SimRun) -> dict[str, Any]:
        """Requests delayed, mean and sd of the added latency (ms), scrapes of the target lost during the fault."""
        if self.as_worker:
            return super().achieved(run)
        d = np.asarray(self.waits)
        win = (run.scrape_t > self.start) & (run.scrape_t <= self.end)
        return {
            "requests_delayed": int(d.size),
            "mean_added_latency_ms": round(float(d.mean()) * 1e3, 1) if d.size else None,
            "std_added_latency_ms": round(float(d.std()) * 1e3, 1) if d.size else None,
            "scrapes_lost": int(run.lost[win, self.tgt].sum()),
        }
