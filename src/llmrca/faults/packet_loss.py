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

The local-testbed implementation lives next to it (``LocalPacketLoss``).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, ClassVar

import numpy as np

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
        proxy = self.target in (run.sim.components[0], run.sim.components[run.GW])
        self.delays_path = proxy
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
