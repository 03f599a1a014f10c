"""An in-process Kubernetes API for tests: it validates every object, records every call, and plays the operators.

:class:`FakeCluster` implements :class:`~llmrca.testbed.k8s.api.ClusterApi`.  ``apply`` rejects an object
that fails :func:`~llmrca.testbed.k8s.schema.validate_object` (Kubernetes' schemas and the CRD schemas)
with :class:`~llmrca.testbed.k8s.api.ClusterError`, as an API server with strict field validation would.
Every call is appended to :attr:`FakeCluster.calls` as ``(verb, kind, namespace, name)``.

Stand-ins for the controllers, just enough to drive the backend, the faults and the actuator:

* KubeRay: a ``RayService`` gets a head pod and ``workers`` worker pods built from its templates
  (``Running``, ``Ready``, one node each: ``gpu-node-<i>``) and a ``Ready`` condition; a deleted Ray pod
  is recreated under a new name (as the RayCluster controller does);
* the Deployment controller: one ready pod per Deployment;
* Chaos Mesh: a ``StressChaos`` / ``NetworkChaos`` gets status conditions and container records;
  :attr:`FakeCluster.chaos_outcome` chooses ``"injected"`` (``AllInjected=True``) or ``"not-injected"``
  (``Selected=True``, ``AllInjected=False``, records in phase ``Not Injected``);
* the GPU: a Job of :mod:`~llmrca.testbed.k8s.gpujob` sets :attr:`FakeCluster.power_limits` of its
  node's device while it exists; deleting it (its pod's exit trap) restores the default;
* garbage collection: deleting an object deletes its dependents (``ownerReferences``) and a
  Namespace everything in it.

:class:`FakePrometheus` answers the DCGM power-limit queries of the GPU fault from that state.
"""

from __future__ import annotations

import copy
import itertools
import re
import time
from typing import Any

import numpy as np

from llmrca.collect.prom import Series
from llmrca.testbed.k8s.api import ClusterApi, ClusterError, matches, ref
from llmrca.testbed.k8s.schema import validate_object

DEFAULT_LIMIT_W = 300.0
_RAY = ("ray.io/v1", "RayService")


def _now() -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())


class FakeCluster(ClusterApi):
    """See the module docstring.  ``validate=False`` skips schema validation (never in tests of rendered objects)."""

    def __init__(self, *, validate: bool = True, chaos_outcome: str = "injected") -> None:
        self.objects: dict[tuple[str, str, str, str], dict[str, Any]] = {}
        self.calls: list[tuple[str, str, str, str]] = []
        self.validate = validate
        self.chaos_outcome = chaos_outcome
        self.power_limits: dict[tuple[str, str], float] = {}
        self._uid = itertools.count(1)
        self._suffix = itertools.count(1)

    # -- ClusterApi ------------------------------------------------------------------
    def apply(self, obj: dict[str, Any]) -> dict[str, Any]:
        obj = copy.deepcopy(obj)
        key = ref(obj)
        self.calls.append(("apply", key[1], key[2], key[3]))
        self._store(obj)
        self._reconcile(obj)
        return copy.deepcopy(self.objects[key])

    def get(self, api_version: str, kind: str, name: str, namespace: str = "") -> dict[str, Any] | None:
        self.calls.append(("get", kind, namespace, name))
        o = self.objects.get((api_version, kind, namespace, name))
        return copy.deepcopy(o) if o is not None else None

    def list(self, api_version: str, kind: str, namespace: str = "", label_selector: str = "") -> list[dict[str, Any]]:
        self.calls.append(("list", kind, namespace, label_selector))
        return [copy.deepcopy(o) for (av, k, ns, _), o in sorted(self.objects.items())
                if av == api_version and k == kind and (not namespace or ns == namespace) and matches(o["metadata"].get("labels"), label_selector)]

    def patch(self, api_version: str, kind: str, name: str, namespace: str, patch: dict[str, Any]) -> dict[str, Any]:
        self.calls.append(("patch", kind, namespace, name))
        key = (api_version, kind, namespace, name)
        if key not in self.objects:
            raise ClusterError(f"patch {kind} {namespace}/{name}: not found")
        new = _merge(copy.deepcopy(self.objects[key]), patch)
        self._store(new)
        return copy.deepcopy(self.objects[key])

    def delete(self, api_version: str, kind: str, name: str, namespace: str = "") -> bool:
        self.calls.append(("delete", kind, namespace, name))
        return self._delete((api_version, kind, namespace, name))

    # -- state -----------------------------------------------------------------------
    def _store(self, obj: dict[str, Any]) -> None:
        if self.validate:
            probs = validate_object(obj)
            if probs:
                raise ClusterError("the API server rejected the object: " + "; ".join(probs[:5]))
        key = ref(obj)
        m = obj["metadata"]
        old = self.objects.get(key)
        m["uid"] = old["metadata"]["uid"] if old else f"uid-{next(self._uid)}"
        m.setdefault("creationTimestamp", old["metadata"]["creationTimestamp"] if old else _now())
        if old and "status" in old and "status" not in obj:
            obj["status"] = old["status"]
        self.objects[key] = obj

    def _delete(self, key: tuple[str, str, str, str]) -> bool:
        obj = self.objects.pop(key, None)
        if obj is None:
            return False
        uid = obj["metadata"]["uid"]
        _, kind, _, name = key
        if kind == "Job":
            self._job_ended(obj)
        if kind == "Namespace":
            for k in [k for k in self.objects if k[2] == name]:
                self._delete(k)
        for k, o in list(self.objects.items()):
            if any(r.get("uid") == uid for r in o["metadata"].get("ownerReferences") or []):
                self._delete(k)
        if kind == "Pod" and (obj["metadata"].get("labels") or {}).get("app.kubernetes.io/component") == "ray":
            owner = self._owner_rayservice(obj)
            if owner is not None:  # the RayCluster controller replaces a deleted Ray pod
                self._ray_pod(owner, obj["metadata"]["labels"].get("llmrca.io/role", "ray-worker"), obj["spec"].get("nodeName", "gpu-node-x"))
        return True

    def remaining(self, label_selector: str = "") -> list[str]:
        """``kind/namespace/name`` of every object matching ``label_selector`` still stored."""
        return [f"{k}/{ns}/{n}" for (av, k, ns, n), o in sorted(self.objects.items()) if matches(o["metadata"].get("labels"), label_selector)]

    # -- controllers -----------------------------------------------------------------
    def _reconcile(self, obj: dict[str, Any]) -> None:
        kind = obj["kind"]
        if (obj["apiVersion"], kind) == _RAY:
            self._rayservice(obj)
        elif kind == "Deployment":
            self._deployment(obj)
        elif kind in ("StressChaos", "NetworkChaos"):
            self._chaos(obj)
        elif kind == "Job":
            self._job(obj)

    def _owner_rayservice(self, pod: dict[str, Any]) -> dict[str, Any] | None:
        uid = next((r["uid"] for r in pod["metadata"].get("ownerReferences") or [] if r["kind"] == "RayService"), None)
        return next((o for (av, k, _, _), o in self.objects.items() if (av, k) == _RAY and o["metadata"]["uid"] == uid), None)

    def _pod(self, owner: dict[str, Any], name: str, template: dict[str, Any], node: str) -> dict[str, Any]:
        spec = copy.deepcopy(template["spec"])
        spec["nodeName"] = node
        pod = {
            "apiVersion": "v1",
            "kind": "Pod",
            "metadata": {
                "name": name,
                "namespace": owner["metadata"]["namespace"],
                "labels": dict(template.get("metadata", {}).get("labels") or {}),
                "ownerReferences": [{"apiVersion": owner["apiVersion"], "kind": owner["kind"], "name": owner["metadata"]["name"], "uid": owner["metadata"]["uid"]}],
            },
            "spec": spec,
            "status": {"phase": "Running", "conditions": [{"type": "Ready", "status": "True"}], "hostIP": "10.0.0.1"},
        }
        self._store(pod)
        return pod

    def _ray_pod(self, rs: dict[str, Any], role: str, node: str) -> dict[str, Any]:
        cc = rs["spec"]["rayClusterConfig"]
        if role == "ray-head":
            tpl, name = cc["headGroupSpec"]["template"], f"{rs['metadata']['name']}-head-{next(self._suffix):05d}"
        else:
            tpl, name = cc["workerGroupSpecs"][0]["template"], f"{rs['metadata']['name']}-gpu-worker-{next(self._suffix):05d}"
        return self._pod(rs, name, tpl, node)

    def _rayservice(self, rs: dict[str, Any]) -> None:
        key = ref(rs)
        rs = self.objects[key]
        if not any(r.get("uid") == rs["metadata"]["uid"] for o in self.objects.values() for r in o["metadata"].get("ownerReferences") or []):
            self._ray_pod(rs, "ray-head", "gpu-node-0")
            groups = rs["spec"]["rayClusterConfig"].get("workerGroupSpecs") or []
            for i in range(int(groups[0].get("replicas", 0)) if groups else 0):
                self._ray_pod(rs, "ray-worker", f"gpu-node-{i + 1}")
        rs["status"] = {"conditions": [{"type": "Ready", "status": "True", "reason": "NonZeroServeEndpoints", "lastTransitionTime": _now(), "message": ""}],
                        "numServeEndpoints": 1}

    def _deployment(self, dep: dict[str, Any]) -> None:
        d = self.objects[ref(dep)]
        if not any(r.get("uid") == d["metadata"]["uid"] for o in self.objects.values() for r in o["metadata"].get("ownerReferences") or []):
            self._pod(d, f"{d['metadata']['name']}-{next(self._suffix):05d}", d["spec"]["template"], "cpu-node-0")

    def _chaos(self, obj: dict[str, Any]) -> None:
        o = self.objects[ref(obj)]
        ns_pods = o["spec"].get("selector", {}).get("pods") or {}
        targets = [(ns, p) for ns, names in ns_pods.items() for p in names if ("v1", "Pod", ns, p) in self.objects]
        ok = self.chaos_outcome == "injected"
        conds = [
            {"type": "Selected", "status": "True" if targets else "False"},
            {"type": "AllInjected", "status": "True" if ok and targets else "False"},
            {"type": "AllRecovered", "status": "False"},
            {"type": "Paused", "status": "False"},
        ]
        records = [{"id": f"{ns}/{p}/{c}", "selectorKey": ".", "phase": "Injected" if ok else "Not Injected", "injectedCount": 1 if ok else 0, "recoveredCount": 0}
                   for ns, p in targets for c in o["spec"].get("containerNames") or ["main"]]
        o["status"] = {"conditions": conds, "experiment": {"desiredPhase": "Run", "containerRecords": records}}
        self._store(o)

    def _job_env(self, job: dict[str, Any]) -> tuple[str, dict[str, str]]:
        spec = job["spec"]["template"]["spec"]
        env = {e["name"]: e.get("value", "") for e in spec["containers"][0].get("env") or []}
        return spec.get("nodeName", ""), env

    def _job(self, obj: dict[str, Any]) -> None:
        job = self.objects[ref(obj)]
        node, env = self._job_env(job)
        if "GPU" in env:
            self.power_limits[(node, env["GPU"])] = float(env["LIMIT_W"]) if env.get("LIMIT_W") else DEFAULT_LIMIT_W
        job["status"] = {"active": 1, "startTime": _now()} if env.get("LIMIT_W") else {"succeeded": 1, "startTime": _now()}
        self._store(job)

    def _job_ended(self, job: dict[str, Any]) -> None:
        node, env = self._job_env(job)
        if "GPU" in env:  # the script's EXIT trap
            self.power_limits[(node, env["GPU"])] = DEFAULT_LIMIT_W


def _merge(target: Any, patch: Any) -> Any:
    """RFC 7386 JSON merge patch."""
    if not isinstance(patch, dict):
        return copy.deepcopy(patch)
    if not isinstance(target, dict):
        target = {}
    for k, v in patch.items():
        if v is None:
            target.pop(k, None)
        else:
            target[k] = _merge(target.get(k), v)
    return target


class FakePrometheus:
    """Answers ``DCGM_FI_DEV_POWER_MGMT_LIMIT{...}`` instant queries from a :class:`FakeCluster` (a test double).

    Each Ray pod's GPU has UUID ``GPU-<node>`` on its node (``Hostname``); the value is the cluster's
    :attr:`~FakeCluster.power_limits` entry (default 300 W).  Any other query returns no series.
    ``answer=False`` makes every query return nothing (a Prometheus without DCGM data).
    """

    def __init__(self, cluster: FakeCluster, answer: bool = True) -> None:
        self.cluster = cluster
        self.answer = answer
        self.queries: list[str] = []

    def query(self, promql: str, time: float | None = None) -> list[Series]:
        self.queries.append(promql)
        m = re.fullmatch(r"DCGM_FI_DEV_POWER_MGMT_LIMIT\{(.*)\}", promql)
        if not self.answer or m is None:
            return []
        want = dict(re.findall(r'(\w+)="([^"]*)"', m.group(1)))
        out = []
        for (_, kind, ns, name), pod in self.cluster.objects.items():
            if kind != "Pod" or (pod["metadata"].get("labels") or {}).get("app.kubernetes.io/component") != "ray":
                continue
            node = pod["spec"]["nodeName"]
            labels = {"namespace": ns, "pod": name, "Hostname": node, "UUID": f"GPU-{node}", "gpu": "0"}
            if all(labels.get(k) == v for k, v in want.items()):
                v = self.cluster.power_limits.get((node, labels["UUID"]), DEFAULT_LIMIT_W)
                out.append(Series(labels, np.array([time or 0.0]), np.array([v])))
        return out
