"""What every fault on the Kubernetes backend (:mod:`llmrca.testbed.k8s`) shares.

The fault types themselves are the ``K8s...`` classes in :mod:`llmrca.faults.cpu`, ``memory``,
``network`` and ``gpu`` (each next to its simulator and local-testbed implementations):

* ``cpu`` and ``memory``: a Chaos Mesh ``StressChaos`` on the target pod's serving container;
* ``network``: a Chaos Mesh ``NetworkChaos`` (``delay``, direction ``to``);
* ``gpu``: a short privileged ``Job`` on the target's node running ``nvidia-smi -pl`` (Chaos Mesh has
  no GPU chaos) that restores the default limit when it ends, however it ends.

Every object a fault creates carries the labels ``app.kubernetes.io/managed-by=llmrca`` and
``llmrca.io/fault=<type>``, so ``llmrca k8s down`` finds and deletes what a killed llmrca left; each
also ends by itself: Chaos Mesh's ``spec.duration`` recovers an experiment, and the GPU Job holds the
limit for a fixed time, has an ``activeDeadlineSeconds`` backstop and a ``ttlSecondsAfterFinished``.

What was achieved is read back, never assumed (PROTOCOL §4): Chaos Mesh's status conditions
(``Selected``, ``AllInjected``, ...) and per-container records for the Chaos Mesh faults, the power
limit DCGM reports through Prometheus for the GPU cap.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable
from typing import Any

from llmrca.model import FaultSpec
from llmrca.testbed.injection import FaultError, Injector
from llmrca.testbed.k8s.api import ClusterApi
from llmrca.testbed.k8s.config import FAULT_LABEL, MANAGED_BY, MANAGER, STACK_LABEL
from llmrca.testbed.k8s.stack import K8sStack

#: Seconds a fault's objects outlive its planned duration before they end by themselves.
EXPIRY_MARGIN_S = 30.0
CHAOS_API = "chaos-mesh.org/v1alpha1"


def dns_name(*parts: str) -> str:
    """A DNS-1123 name from ``parts`` (lower-cased, invalid characters replaced, at most 63 characters)."""
    s = re.sub(r"[^a-z0-9-]+", "-", "-".join(parts).lower()).strip("-")
    return s[:63].rstrip("-")


class K8sInjector(Injector):
    """A fault on the Kubernetes backend's pods.

    ``context``: ``stack=`` a :class:`~llmrca.testbed.k8s.stack.K8sStack` (the cluster API and the
    component -> pod mapping), optionally ``prom=`` a Prometheus client (``.query(promql, time)``, as
    :class:`llmrca.collect.PromClient`) for read-backs, ``clock=`` / ``sleep=`` (tests) and
    ``wait_s=`` seconds to wait for the fault to take (default 30).  Raises :class:`FaultError` when
    the target is not a serving pod of the stack.
    """

    def __init__(self, spec: FaultSpec, **context: Any) -> None:
        super().__init__(spec, **context)
        stack = context.get("stack")
        if not isinstance(stack, K8sStack):
            raise FaultError("a Kubernetes fault needs stack=K8sStack(api, config)")
        self.stack: K8sStack = stack
        self.api: ClusterApi = stack.api
        self.prom = context.get("prom")
        self.sleep: Callable[[float], None] = context.get("sleep", time.sleep)
        self.clock: Callable[[], float] = context.get("clock", time.time)
        self.wait_s = float(context.get("wait_s", 30.0))
        pods = stack.serving_pods()
        if spec.target not in pods:
            raise FaultError(f"target {spec.target!r} is not a serving pod of stack {stack.config.name!r}; serving pods: {', '.join(pods) or 'none'}")
        self.pod: dict[str, Any] = pods[spec.target]
        self.created: list[tuple[str, str, str, str]] = []

    @property
    def namespace(self) -> str:
        return self.stack.config.namespace

    @property
    def pod_name(self) -> str:
        return self.pod["metadata"]["name"]

    def object_meta(self, name: str) -> dict[str, Any]:
        """metadata of an object this fault creates: its name, the stack's namespace, the fault labels."""
        return {
            "name": name,
            "namespace": self.namespace,
            "labels": {
                MANAGED_BY: MANAGER,
                STACK_LABEL: self.stack.config.name,
                FAULT_LABEL: self.fault_type,
                "llmrca.io/target": self.spec.target,
            },
        }

    def expiry_s(self) -> float:
        """Seconds after which the fault's objects end the fault by themselves."""
        return float(self.spec.duration_s) + EXPIRY_MARGIN_S

    def create(self, obj: dict[str, Any]) -> dict[str, Any]:
        """Apply ``obj`` and remember it for :meth:`stop`; raises FaultError when the cluster refuses it."""
        from llmrca.testbed.k8s.api import ClusterError, ref

        try:
            out = self.api.apply(obj)
        except ClusterError as e:
            raise FaultError(f"{self.fault_type} fault on {self.spec.target}: the cluster refused {obj['kind']} {obj['metadata']['name']}: {e}") from e
        self.created.append(ref(obj))
        return out

    def delete_created(self) -> None:
        """Delete every object this fault created (idempotent)."""
        while self.created:
            av, kind, ns, name = self.created.pop()
            self.api.delete(av, kind, name, ns)

    def prom_value(self, promql: str) -> float | None:
        """The first sample of an instant query now, or None (no client, no series, or an error)."""
        if self.prom is None:
            return None
        try:
            res = self.prom.query(promql, self.clock())
        except Exception:
            return None
        return float(res[0].values[-1]) if res else None


def chaos_status(obj: dict[str, Any] | None) -> dict[str, Any]:
    """What Chaos Mesh says of an experiment: conditions by type (True/False), per-container records, ``injected``.

    ``injected`` is True only when ``AllInjected`` is ``True`` (every selected container has the fault);
    ``reason`` says why not otherwise (no status yet, nothing selected, records' phases).
    """
    if obj is None:
        return {"injected": False, "reason": "the experiment is gone"}
    st = obj.get("status") or {}
    conds = {c.get("type"): c.get("status") for c in st.get("conditions") or []}
    records = [
        {"id": r.get("id"), "phase": r.get("phase"), "injected_count": r.get("injectedCount"), "recovered_count": r.get("recoveredCount")}
        for r in (st.get("experiment") or {}).get("containerRecords") or []
    ]
    out: dict[str, Any] = {"conditions": conds, "records": records, "injected": conds.get("AllInjected") == "True"}
    if not out["injected"]:
        if not conds:
            out["reason"] = "Chaos Mesh reported no status (is the controller running?)"
        elif conds.get("Selected") != "True":
            out["reason"] = "Chaos Mesh selected no container (the selector matched no running pod)"
        else:
            out["reason"] = "Chaos Mesh did not inject every selected container: " + (
                ", ".join(f"{r['id']}: {r['phase']}" for r in records) or "no records")
    return out


class ChaosInjector(K8sInjector):
    """A Chaos Mesh experiment on the target pod's serving container; subclasses give :meth:`chaos_kind` and :meth:`chaos_spec`."""

    chaos_kind = ""
    #: StressChaos acts on containers (``containerNames``); NetworkChaos on the pod's network namespace.
    per_container = True

    def chaos_spec(self) -> dict[str, Any]:
        """The experiment's action-specific ``spec`` fields."""
        raise NotImplementedError

    def start(self) -> None:
        """Create the experiment on the target pod and wait (``wait_s``) for Chaos Mesh to report it injected.

        A fault that Chaos Mesh does not inject does not raise: :meth:`measure` records it as not achieved.
        """
        container = self.pod["spec"]["containers"][0]["name"]
        self.name = dns_name("llmrca", self.fault_type, self.spec.target, str(int(self.clock())))
        obj = {
            "apiVersion": CHAOS_API,
            "kind": self.chaos_kind,
            "metadata": self.object_meta(self.name),
            "spec": {
                "mode": "one",
                "selector": {"pods": {self.namespace: [self.pod_name]}},
                **({"containerNames": [container]} if self.per_container else {}),
                "duration": f"{int(self.expiry_s())}s",
                **self.chaos_spec(),
            },
        }
        self.create(obj)
        self.t0 = self.clock()
        deadline = self.clock() + self.wait_s
        self.status = chaos_status(None)
        while True:
            self.status = chaos_status(self.api.get(CHAOS_API, self.chaos_kind, self.name, self.namespace))
            if self.status["injected"] or self.clock() >= deadline:
                break
            self.sleep(1.0)
        self.status["waited_s"] = round(self.clock() - self.t0, 2)

    def measure(self) -> dict[str, Any]:
        """``achieved`` (Chaos Mesh said AllInjected), its conditions and records, the experiment's name, and ``extra()``."""
        now = chaos_status(self.api.get(CHAOS_API, self.chaos_kind, self.name, self.namespace)) if getattr(self, "name", None) else self.status
        first = getattr(self, "status", now)
        out = {
            "achieved": bool(first["injected"] or now["injected"]),
            "chaos": f"{self.chaos_kind}/{getattr(self, 'name', '')}",
            "pod": self.pod_name,
            "conditions": now.get("conditions", {}),
            "records": now.get("records", []),
            "waited_s": first.get("waited_s"),
        }
        if not out["achieved"]:
            out["reason"] = now.get("reason") or first.get("reason")
        out.update(self.extra())
        return out

    def extra(self) -> dict[str, Any]:
        """Fault-specific read-backs (e.g. the pod's CPU through Prometheus); values may be None."""
        return {}

    def stop(self) -> None:
        """Delete the experiment (Chaos Mesh recovers the containers); idempotent."""
        self.delete_created()
