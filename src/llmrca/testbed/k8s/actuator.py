"""Remediations on Kubernetes (``llmrca watch`` with backend ``k8s``), always behind :class:`~llmrca.heal.actuators.GuardedActuator`.

* ``restart``: delete the target component's pod; KubeRay's RayCluster controller (or the gateway's
  Deployment) creates a new one, which kills whatever lived in the old one (a stressor, a leak).
* ``drain``: label the pod ``llmrca.io/routing=out``.  The gateway's upstream is the headless Service
  ``<stack>-serve-pods``, which selects Ray pods with ``llmrca.io/routing=in``; the pod leaves its
  endpoints and NGINX stops sending it requests when it re-resolves the name (every 5 s,
  ``resolver ... valid=5s`` and ``server ... resolve`` in the rendered nginx.conf).  This takes the
  pod's Serve proxy out of the gateway's routing; Ray Serve's own router may still hand requests
  entering through another pod's proxy to the replica on this pod (Serve has no per-replica drain
  through the Kubernetes API).  Undo: ``kubectl label pod <pod> llmrca.io/routing=in --overwrite``.
* ``reset-power-limit``: a short privileged Job on the pod's node that sets the GPU's power limit back
  to its default (:func:`llmrca.testbed.k8s.gpujob.power_job` without a cap).

Needs the ``k8s`` extra (the official client) unless an ``api`` is given.  The RBAC rendered by
``llmrca k8s render`` grants exactly these verbs (pods: delete, patch; jobs: create).
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from typing import Any

from llmrca.testbed.actuator import Actuator, ActuatorError
from llmrca.testbed.k8s.api import ClusterApi
from llmrca.testbed.k8s.config import ACTION_LABEL, MANAGED_BY, MANAGER, ROUTING_LABEL, STACK_LABEL, K8sConfig
from llmrca.testbed.k8s.stack import K8sStack


class K8sActuator(Actuator):
    """``restart``, ``drain`` and ``reset-power-limit`` of a component of the stack ``config`` describes.

    ``api``: a :class:`ClusterApi` (default: the official client with ``kubeconfig`` / ``context``);
    ``prom``: a client with ``.query`` (or ``prometheus_url``) to find a pod's GPU through dcgm-exporter;
    ``gpu``: a device (UUID or index) to use instead; other keyword options are :class:`K8sConfig` fields
    (``namespace``, ``name``, ...).  Raises :class:`ActuatorError` from :meth:`act` when the target has no pod.
    """

    backend = "k8s"

    def __init__(self, api: ClusterApi | None = None, config: K8sConfig | None = None, *, kubeconfig: str | None = None,
                 context: str | None = None, prom: Any = None, prometheus_url: str | None = None, gpu: str = "", **settings: Any) -> None:
        self.config = config or K8sConfig.from_dict(settings)
        if api is None:
            from llmrca.testbed.k8s.api import KubeApi

            api = KubeApi(kubeconfig, context)
        self.api = api
        if prom is None and prometheus_url:
            from llmrca.collect import PromClient

            prom = PromClient(prometheus_url)
        self.prom = prom
        self.gpu = gpu
        self.stack = K8sStack(api, self.config)

    def _pod(self, target: str) -> dict[str, Any]:
        pods = self.stack.component_pods()
        if target not in pods:
            raise ActuatorError(f"{target} has no pod in {self.config.namespace}/{self.config.name}; components with pods: {', '.join(pods) or 'none'}")
        return pods[target]

    def _do(self, action: str, target: str) -> Mapping[str, Any] | None:
        pod = self._pod(target)
        name, ns = pod["metadata"]["name"], pod["metadata"]["namespace"]
        if action == "restart":
            self.api.delete("v1", "Pod", name, ns)
            return {"pod": name, "namespace": ns, "deleted": True}
        if action == "drain":
            if (pod["metadata"].get("labels") or {}).get(ROUTING_LABEL) is None:
                raise ActuatorError(f"{target} ({name}) is not routed through the gateway's Service (no {ROUTING_LABEL} label); only Ray pods can be drained")
            self.api.patch("v1", "Pod", name, ns, {"metadata": {"labels": {ROUTING_LABEL: "out"}}})
            return {"pod": name, "namespace": ns, "label": f"{ROUTING_LABEL}=out", "undo": f"kubectl -n {ns} label pod {name} {ROUTING_LABEL}=in --overwrite"}
        if action == "reset-power-limit":
            from llmrca.testbed.k8s.gpujob import gpu_of_pod, power_job

            node = (pod.get("spec") or {}).get("nodeName")
            found = gpu_of_pod(self.prom, ns, name, time.time()) if self.prom is not None else None
            gpu = self.gpu or (found or {}).get("uuid") or ""
            if not node or not gpu:
                raise ActuatorError(f"cannot find the GPU of {target} ({name}): node {node or 'unknown'}, device {gpu or 'unknown'} "
                                    "(give prometheus_url with dcgm-exporter's pod mapping, or gpu=<UUID>)")
            job_name = f"llmrca-reset-power-{name}"[:52].rstrip("-") + f"-{int(time.time()) % 100000}"
            meta = {"name": job_name, "namespace": ns,
                    "labels": {MANAGED_BY: MANAGER, STACK_LABEL: self.config.name, ACTION_LABEL: "reset-power-limit"}}
            self.api.apply(power_job(self.config, meta, node, gpu, None, 0, owner=self.stack.rayservice()))
            return {"pod": name, "node": node, "gpu": gpu, "job": job_name, "power_limit_w_before": (found or {}).get("power_limit_w")}
        raise ActuatorError(f"unknown action {action!r}")
