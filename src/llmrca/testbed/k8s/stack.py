"""A rendered stack on a cluster: apply it, wait until it serves, map llmrca's components to pods, sweep it.

Components (the paper's six, PROTOCOL §1): ``nginx-gateway``, ``ray-head``, ``ray-worker-1..n``
(KubeRay names worker pods ``<cluster>-gpu-worker-<random>``; llmrca labels each with its number,
``llmrca.io/component=ray-worker-2``, the first time it sees it, and a pod recreated after a restart
takes the freed number, so the numbering is stable) and ``kuberay-operator`` (the operator's pod, found by its
``app.kubernetes.io/name=kuberay-operator`` label in any namespace).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from llmrca.telemetry import GATEWAY, HEAD, OPERATOR, worker_name
from llmrca.testbed.k8s.api import ClusterApi, ClusterError, ref, selector
from llmrca.testbed.k8s.config import (
    ACTION_LABEL,
    COMPONENT_LABEL,
    FAULT_LABEL,
    MANAGED_BY,
    MANAGER,
    ROLE_LABEL,
    STACK_LABEL,
    K8sConfig,
)
from llmrca.testbed.k8s.render import render_stack

#: Kinds a fault creates (what :func:`sweep_faults` looks for).
FAULT_KINDS: tuple[tuple[str, str], ...] = (
    ("chaos-mesh.org/v1alpha1", "StressChaos"),
    ("chaos-mesh.org/v1alpha1", "NetworkChaos"),
    ("batch/v1", "Job"),
)


def pod_ready(pod: dict[str, Any]) -> bool:
    """Running, not being deleted, and its ``Ready`` condition is True."""
    st = pod.get("status") or {}
    if st.get("phase") != "Running" or pod.get("metadata", {}).get("deletionTimestamp"):
        return False
    return any(c.get("type") == "Ready" and c.get("status") == "True" for c in st.get("conditions") or [])


class K8sStack:
    """The stack described by ``config`` on the cluster behind ``api``."""

    def __init__(self, api: ClusterApi, config: K8sConfig, sleep: Callable[[float], None] = time.sleep) -> None:
        self.api = api
        self.config = config
        self.sleep = sleep

    # -- objects -------------------------------------------------------------------
    def objects(self) -> list[dict[str, Any]]:
        """The rendered objects (:func:`~llmrca.testbed.k8s.render.render_stack`)."""
        return render_stack(self.config)

    def apply(self) -> list[str]:
        """Apply every object (namespace first); returns ``kind/name`` of each.  Raises ClusterError."""
        done = []
        for obj in self.objects():
            self.api.apply(obj)
            done.append(f"{obj['kind']}/{obj['metadata']['name']}")
        return done

    def rayservice(self) -> dict[str, Any] | None:
        return self.api.get("ray.io/v1", "RayService", self.config.name, self.config.namespace)

    # -- pods ----------------------------------------------------------------------
    def _pods(self, role: str) -> list[dict[str, Any]]:
        sel = selector({STACK_LABEL: self.config.name, ROLE_LABEL: role})
        pods = [p for p in self.api.list("v1", "Pod", self.config.namespace, sel) if not p["metadata"].get("deletionTimestamp")]
        return sorted(pods, key=lambda p: p["metadata"]["name"])

    def serving_pods(self) -> dict[str, dict[str, Any]]:
        """``{"ray-head": pod, "ray-worker-1": pod, ...}``: the pods serving a replica (faults and actions go here)."""
        out: dict[str, dict[str, Any]] = {}
        heads = self._pods(HEAD)
        if heads:
            out[HEAD] = heads[0]
        out.update(self._numbered_workers())
        return out

    def _numbered_workers(self) -> dict[str, dict[str, Any]]:
        """Worker pods by component name, stable across restarts.

        A pod keeps the number in its ``llmrca.io/component`` label; a pod without one (new, or
        recreated after a restart) takes the lowest free number and is labelled with it.
        """
        pods = self._pods("ray-worker")
        out: dict[str, dict[str, Any]] = {}
        valid = {worker_name(i) for i in range(1, max(self.config.workers, len(pods)) + 1)}
        fresh = []
        for p in pods:
            comp = (p["metadata"].get("labels") or {}).get(COMPONENT_LABEL)
            if comp in valid and comp not in out:
                out[comp] = p
            else:
                fresh.append(p)
        free = iter(sorted(valid - set(out), key=lambda c: int(c.rsplit("-", 1)[1])))
        for p in fresh:
            comp = next(free)
            m = p["metadata"]
            self.api.patch("v1", "Pod", m["name"], m["namespace"], {"metadata": {"labels": {COMPONENT_LABEL: comp}}})
            m.setdefault("labels", {})[COMPONENT_LABEL] = comp
            out[comp] = p
        return dict(sorted(out.items(), key=lambda kv: int(kv[0].rsplit("-", 1)[1])))

    def component_pods(self) -> dict[str, dict[str, Any]]:
        """Every component's pod: the gateway, the serving pods and (when found) the KubeRay operator."""
        out = {}
        gw = self._pods(GATEWAY)
        if gw:
            out[GATEWAY] = gw[0]
        out.update(self.serving_pods())
        try:
            ops = self.api.list("v1", "Pod", "", "app.kubernetes.io/name=kuberay-operator")
        except ClusterError:
            ops = []
        if ops:
            out[OPERATOR] = sorted(ops, key=lambda p: p["metadata"]["name"])[0]
        return out

    def selectors(self) -> dict[str, str]:
        """PromQL label selectors of every component: ``namespace="...",pod="..."``."""
        return {c: f'namespace="{p["metadata"]["namespace"]}",pod="{p["metadata"]["name"]}"' for c, p in self.component_pods().items()}

    # -- readiness -------------------------------------------------------------------
    def readiness(self) -> dict[str, Any]:
        """What is not ready yet: ``{"ready": bool, "waiting_for": [...]}``."""
        waiting = []
        rs = self.rayservice()
        if rs is None:
            waiting.append(f"RayService {self.config.namespace}/{self.config.name} does not exist (llmrca k8s render | kubectl apply -k)")
        else:
            st = rs.get("status") or {}
            conds = {c.get("type"): c.get("status") for c in st.get("conditions") or []}
            if not (conds.get("Ready") == "True" or st.get("serviceStatus") == "Running"):
                waiting.append("RayService is not Ready (Serve applications not running yet)")
        pods = self.serving_pods()
        if len(pods) != self.config.replicas:
            waiting.append(f"{len(pods)} of {self.config.replicas} Ray pods exist")
        waiting += [f"pod {p['metadata']['name']} ({c}) is not ready" for c, p in pods.items() if not pod_ready(p)]
        gw = self._pods(GATEWAY)
        if not gw or not pod_ready(gw[0]):
            waiting.append("the gateway pod is not ready")
        return {"ready": not waiting, "waiting_for": waiting}

    def wait_ready(self, timeout_s: float = 600.0, poll_s: float = 5.0) -> None:
        """Wait until :meth:`readiness` is ready; raises ClusterError naming what is still waited for."""
        deadline = time.monotonic() + timeout_s
        while True:
            r = self.readiness()
            if r["ready"]:
                return
            if time.monotonic() >= deadline:
                raise ClusterError(f"stack {self.config.name!r} not ready after {timeout_s:.0f} s: " + "; ".join(r["waiting_for"]))
            self.sleep(poll_s)


def sweep_faults(api: ClusterApi, namespace: str, stack: str | None = None) -> list[str]:
    """Delete every object a fault of llmrca created in ``namespace`` (of ``stack`` if given); returns ``kind/name`` of each.

    Deleting a GPU Job deletes its pod, whose exit trap restores the default power limit.
    """
    sel = {MANAGED_BY: MANAGER}
    if stack:
        sel[STACK_LABEL] = stack
    gone = []
    for av, kind in FAULT_KINDS:
        try:
            objs = api.list(av, kind, namespace, selector(sel))
        except ClusterError as e:
            if kind != "Job" and "serves no" in str(e):  # Chaos Mesh not installed: nothing of it to sweep
                continue
            raise
        for o in objs:
            if {FAULT_LABEL, ACTION_LABEL} & set(o["metadata"].get("labels") or {}):
                api.delete(av, kind, o["metadata"]["name"], namespace)
                gone.append(f"{kind}/{o['metadata']['name']}")
    return gone


def down(api: ClusterApi, config: K8sConfig, *, stack_too: bool = False) -> dict[str, list[str]]:
    """``llmrca k8s down``: sweep the faults by label, and with ``stack_too`` delete the rendered stack (reverse order).

    Returns ``{"faults": [...], "stack": [...]}`` (``kind/name`` of what was deleted).
    """
    out = {"faults": sweep_faults(api, config.namespace, config.name), "stack": []}
    if stack_too:
        for obj in reversed(render_stack(config)):
            av, kind, ns, name = ref(obj)
            if api.delete(av, kind, name, ns):
                out["stack"].append(f"{kind}/{name}")
    return out
