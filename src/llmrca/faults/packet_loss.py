"""Packet loss on a pod's traffic (Chaos Mesh NetworkChaos ``loss``; issue 16), as opposed to a delay.

* :class:`SimPacketLoss` (simulator): netem drops ``loss`` % of the segments the target
  sends (NetworkChaos direction "to").  TCP recovers each loss: a segment lost once is
  recovered by the tail-loss probe / fast retransmit within ``tlp_ms`` (2 x RTT with a
  floor, tiny RTTs in-cluster), but the streamed response is head-of-line blocked meanwhile;
  a retransmission lost again waits for the retransmission timeout (Linux ``TCP_RTO_MIN``
  200 ms, doubling at each further loss).  A request's stall is therefore a sum over its
  segments (request headers and body, one SSE chunk per output token) — heavy-tailed, not a
  constant: the p90 latency rises far more than the median.  The node counts the
  retransmitted segments (``node_netstat_Tcp_RetransSegs``) and sends their bytes again.
  Scrapes (a few hundred segments, 10 s timeout) still arrive.  On the gateway or the head
  every request passes through the target; on a worker only the requests it serves.

Source: Chaos Mesh docs, "Simulate Network Faults" (``action: loss``, ``loss``,
``correlation``; netem underneath); Linux ``include/net/tcp.h`` (``TCP_RTO_MIN`` = HZ/5,
200 ms) and RFC 8985 (RACK-TLP: a probe timeout of 2 x SRTT); node-exporter's
``node_netstat_Tcp_RetransSegs`` from ``/proc/net/snmp``.

Chaos Mesh ``NetworkChaos`` ``action: loss`` (``loss.loss`` per cent,
``correlation``) applies ``tc netem loss`` on the pod's interface; a lossy
link, a faulty NIC or a conntrack race gives the same on a real node
(kubernetes/kubernetes#56903: packets dropped by a conntrack race showed as
5-second DNS delays).  For TCP, a lost segment costs a
retransmission timeout (at least 200 ms on Linux) and a lost SYN a full
second, so a few per cent of loss shows as a heavy latency tail and
timeouts, not as a uniform delay.

* :class:`LocalPacketLoss` (local testbed): REAL packet loss in the kernel.
  The pods share the host's loopback and this kernel has no netem
  (PROTOCOL.md §5), so the loss is an iptables ``statistic`` DROP on ``lo``
  matching TCP to and from the target pod's public ports (its sidecar, which
  all of the pod's traffic passes): requests into the pod, its answers and
  its metric scrapes lose ``loss_pct`` % of their packets, in both
  directions; in-pod traffic and other pods are untouched.  Loss is
  independent per packet (``correlation`` is not supported: the kernel's
  ``statistic`` match has none).  See :mod:`llmrca.testbed.local.netfilter`
  for the rules' tagging, expiry and removal.
"""

from __future__ import annotations

import contextlib
import statistics
import threading
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

import httpx
import numpy as np

from llmrca.faults.local import LocalInjector, fault_lock
from llmrca.testbed.injection import FaultError
from llmrca.testbed.local import netfilter as nf
from llmrca.testbed.sim.faults import SimFault

if TYPE_CHECKING:
    from llmrca.testbed.sim.engine import SimRun

MSS = 1448  # bytes of payload in one segment (1500 MTU, TCP timestamps)
RTO_MIN_S = 0.2  # Linux TCP_RTO_MIN


class SimPacketLoss(SimFault):
    """netem drops ``loss`` % of the target's segments; every request through it stalls on TCP recovery."""

    type = "packet-loss"
    defaults: ClassVar[dict[str, Any]] = {"loss": 10.0, "correlation": 0.0, "tlp_ms": 15.0}
    delays_requests = True
    roles = ("gateway", "head", "worker")

    @classmethod
    def problems(cls, p: dict[str, Any]) -> list[str]:
        """``loss`` in (0, 100) per cent, ``correlation`` in 0..100 per cent, ``tlp_ms`` >= 0."""
        bad = []
        if not 0 < p["loss"] < 100:
            bad.append("loss must be in (0, 100) (per cent of segments dropped)")
        if not 0 <= p["correlation"] <= 100:
            bad.append("correlation must be in 0..100 (per cent, netem's)")
        if p["tlp_ms"] < 0:
            bad.append("tlp_ms must be >= 0")
        return bad

    def bind(self, run: SimRun) -> None:
        """Loss probability; on the gateway or the head every request stalls on the path."""
        super().bind(run)
        p = self.params
        # netem's correlation keeps a loss burst going: the effective chance a retransmission is lost too
        self.p = float(p["loss"]) / 100.0
        self.p_again = self.p + (1.0 - self.p) * float(p["correlation"]) / 100.0
        self.tlp = float(p["tlp_ms"]) / 1e3
        # a proxy every request passes through stalls them all on the path; otherwise (a worker, or the head
        # when requests enter through every pod's proxy) the requests routed to it stall (request_delay)
        self.delays_path = run.relays_every_request(self.tgt)
        self.path_before_head = self.tgt == run.GW
        self.stalls: list[float] = []
        self.segments = 0
        self.retrans = 0

    def _stall(self, run: SimRun, i: int) -> float:
        """Seconds request ``i`` stalls on TCP recovery over all of its segments (draws from the engine's generator)."""
        cfg = run.cfg
        n = 1 + int(cfg.request_overhead_bytes + cfg.bytes_per_prompt_token * run.prompt[i]) // MSS + int(run.out[i])
        rng = run.rng
        lost = int(rng.binomial(n, self.p))
        stall = lost * self.tlp
        retr = lost
        if lost:
            # each loss is retried; a retransmission lost again waits RTO_MIN, then 2x, 4x ...
            again = int(rng.binomial(lost, self.p_again))
            k = 0
            while again:
                stall += again * RTO_MIN_S * 2**k
                retr += again
                again = int(rng.binomial(again, self.p_again))
                k += 1
        self.segments += n
        self.retrans += retr
        run.retrans[self.tgt] += retr
        run.tx[self.tgt] += retr * min(MSS, cfg.bytes_per_output_token)
        self.stalls.append(stall)
        return stall

    def request_delay(self, run: SimRun) -> float:
        """A worker target: the stall of the request being routed to it."""
        return self._stall(run, run.routing_i)

    def path_delay(self, run: SimRun) -> float:
        """The gateway or the head: the stall of every request passing through."""
        return self._stall(run, run.routing_i)

    def achieved(self, run: SimRun) -> dict[str, Any]:
        """Segments sent and retransmitted (share), requests stalled, mean and p90 stall (ms)."""
        s = np.asarray(self.stalls)
        return {
            "segments": self.segments,
            "retransmitted": self.retrans,
            "retransmitted_share": round(self.retrans / self.segments, 4) if self.segments else None,
            "requests": int(s.size),
            "mean_stall_ms": round(1e3 * float(s.mean()), 1) if s.size else None,
            "p90_stall_ms": round(1e3 * float(np.quantile(s, 0.9)), 1) if s.size else None,
        }


def _retrans_segs() -> int:
    """Node-wide TCP ``RetransSegs`` from /proc/net/snmp (0 when unreadable)."""
    try:
        lines = [ln.split() for ln in Path("/proc/net/snmp").read_text().splitlines() if ln.startswith("Tcp:")]
        return int(lines[1][lines[0].index("RetransSegs")])
    except (OSError, IndexError, ValueError):
        return 0


def probe(
    url: str, n: int, timeout_s: float, *, until: float | None = None, ok: list[float] | None = None, failed: list[int] | None = None
) -> tuple[list[float], int]:
    """(seconds of each successful GET of ``url`` on a new connection, failures) over ``n`` GETs.

    ``until`` (epoch s): no GET starts after it, and none outlasts it (its timeout is cut to the time left), so
    probes made while a fault is on end when the fault is to end.  ``ok`` / ``failed`` (a one-item counter) are
    filled as the probes go, for a reader that stops waiting early.
    """
    ok = [] if ok is None else ok
    failed = [0] if failed is None else failed
    for _ in range(n):
        left = timeout_s if until is None else min(timeout_s, until - time.time())
        if left <= 0:
            break
        t = time.perf_counter()
        try:
            httpx.get(url, timeout=left)
            ok.append(time.perf_counter() - t)
        except httpx.HTTPError:
            failed[0] += 1
    return ok, failed[0]


class LocalPacketLoss(LocalInjector):
    """``loss_pct`` % of the target pod's packets dropped by the kernel; measures the drop ratio, retransmits and probe latency.

    Parameters: ``loss_pct`` (0 < x <= 100, per cent of packets dropped),
    ``probes`` (new-connection health GETs before and during, 1..200).
    Achieved: packets seen / dropped by the rules and the loss ratio, TCP
    retransmissions on the node, probe latency (median, p90, ms) before and
    during and failed probes.
    """

    fault_type = "packet-loss"
    # Chaos Mesh NetworkChaos loss example: 25 %; here 20 % on the pod's ports
    defaults: ClassVar[dict[str, Any]] = {"loss_pct": 20.0, "probes": 20}

    @classmethod
    def problems(cls, p: dict[str, Any]) -> list[str]:
        """``loss_pct`` in (0, 100], ``probes`` in 1..200."""
        bad = []
        try:
            if not 0 < float(p["loss_pct"]) <= 100:
                bad.append(f"loss_pct={p['loss_pct']} must be in (0, 100] (per cent of packets)")
            if not 1 <= int(p["probes"]) <= 200:
                bad.append("probes must be in 1..200")
        except (TypeError, ValueError) as e:
            bad.append(f"parameters must be numbers: {e}")
        return bad

    def __init__(self, spec: Any, **context: Any) -> None:
        super().__init__(spec, **context)
        info = self.tb.state.pods[spec.target]
        self.ports = sorted(int(v) for k, v in info["ports"].items() if k in nf.PUBLIC_PORTS)
        if not self.ports:
            raise FaultError(f"{spec.target} has no public port to drop packets on")
        self.marker = nf.tag(self.tb.state.run_id, spec.target)

    def start(self) -> None:
        """Probe, add the rules (raises FaultError when iptables is missing or refuses), probe again while lossy."""
        n = int(self.params["probes"])
        self.url = self.tb.state.pods[self.spec.target]["health"]
        self.before, self.before_failed = probe(self.url, n, 5.0, until=time.time() + 15.0)
        try:
            with fault_lock(self.pod_dir):  # check and add as one step: two injections at once cannot both pass
                if nf.live_rule_lines(self.marker):
                    raise FaultError(f"packet-loss rules for {self.spec.target} are already in place (another injection?): "
                                     "wait for them to end, or stop them (llmrca testbed down removes every fault)")
                nf.remove_rules(self.marker)  # expired ones (a killed injector's) drop nothing: cleared, not a refusal
                count, drop = nf.loss_rules(self.ports, float(self.params["loss_pct"]) / 100.0, self.marker, time.time() + self._expiry())
                nf.add_rules(count, drop)
                self.applied = True
        except nf.NetfilterError as e:
            raise FaultError(f"cannot drop packets of {self.spec.target}: {e}") from e
        self.t0 = self.applied_at = time.time()
        self.retrans0 = _retrans_segs()
        self.during: list[float] = []
        self._during_failed = [0]
        until = self.t0 + float(self.spec.duration_s)  # the probes end when the fault is to end: they never hold it on

        def run() -> None:
            probe(self.url, n, 10.0, until=until, ok=self.during, failed=self._during_failed)

        self._thr = threading.Thread(target=run, daemon=True)
        self._thr.start()

    def measure(self) -> dict[str, Any]:
        """Packets seen and dropped, loss ratio, retransmits, probe latency before/during (ms) and failures."""
        self._thr.join(timeout=max(0.0, self.t0 + float(self.spec.duration_s) - time.time()) + 1.0)
        self.during_failed = self._during_failed[0]
        # the rules' counters; read by stop() before it deleted them when the fault was removed first (Ctrl-C)
        seen, dropped = nf.counters(self.marker) if getattr(self, "applied", False) else getattr(self, "_final_counts", (0, 0))

        def q(v: list[float], f: float) -> float | None:
            return round(1000 * float(np.quantile(v, f)), 1) if v else None

        return {
            "ports": self.ports,
            "packets_seen": seen,
            "packets_dropped": dropped,
            "loss_ratio": round(dropped / seen, 3) if seen else None,
            "tcp_retransmits_node": _retrans_segs() - self.retrans0,
            "probe_ms_median_before": round(1000 * statistics.median(self.before), 1) if self.before else None,
            "probe_ms_median_during": round(1000 * statistics.median(self.during), 1) if self.during else None,
            "probe_ms_p90_before": q(self.before, 0.9),
            "probe_ms_p90_during": q(self.during, 0.9),
            "probes_failed_before": self.before_failed,
            "probes_failed_during": self.during_failed,
        }

    def stop(self) -> None:
        """Delete the rules (idempotent), their counters read first (for :meth:`measure` after an early removal)."""
        if getattr(self, "applied", False):
            with contextlib.suppress(nf.NetfilterError, OSError):
                self._final_counts = nf.counters(self.marker)
            nf.remove_rules(self.marker)
            self.applied = False
