"""The few Kubernetes API verbs llmrca uses, behind one interface, and its implementation on the official client.

:class:`ClusterApi` is what the backend, the fault classes and the actuator call; :class:`KubeApi`
implements it with the ``kubernetes`` package's dynamic client (extra ``k8s``), and
:class:`llmrca.testbed.k8s.fake.FakeCluster` in-process for tests.  Objects are plain dicts
(``apiVersion``, ``kind``, ``metadata``, ...), as rendered by :mod:`llmrca.testbed.k8s.render`.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from typing import Any

from llmrca.errors import require


class ClusterError(RuntimeError):
    """The cluster refused or failed a call; the message names the verb, the object and the cluster's reason."""


def ref(obj: dict[str, Any]) -> tuple[str, str, str, str]:
    """``(apiVersion, kind, namespace, name)`` of ``obj`` (namespace ``""`` for cluster-scoped)."""
    m = obj.get("metadata", {})
    return obj["apiVersion"], obj["kind"], m.get("namespace", ""), m["name"]


class ClusterApi(ABC):
    """Apply, get, list, patch and delete objects; every method raises :class:`ClusterError` on failure."""

    @abstractmethod
    def apply(self, obj: dict[str, Any]) -> dict[str, Any]:
        """Create ``obj`` or update it to this content (server-side apply, field manager ``llmrca``); returns the stored object."""

    @abstractmethod
    def get(self, api_version: str, kind: str, name: str, namespace: str = "") -> dict[str, Any] | None:
        """The object, or None when there is none."""

    @abstractmethod
    def list(self, api_version: str, kind: str, namespace: str = "", label_selector: str = "") -> list[dict[str, Any]]:
        """Objects of ``kind`` in ``namespace`` (``""``: every namespace) matching ``label_selector`` (``k=v,k2=v2``)."""

    @abstractmethod
    def patch(self, api_version: str, kind: str, name: str, namespace: str, patch: dict[str, Any]) -> dict[str, Any]:
        """JSON merge patch (RFC 7386) of the object; returns it.  Raises ClusterError when it is absent."""

    @abstractmethod
    def delete(self, api_version: str, kind: str, name: str, namespace: str = "") -> bool:
        """Delete the object (dependents in the background); False when there was none."""


class KubeApi(ClusterApi):
    """:class:`ClusterApi` on a real cluster through the official ``kubernetes`` client's dynamic client.

    ``kubeconfig`` / ``context``: as for kubectl (None: ``$KUBECONFIG`` or ``~/.kube/config``, its current
    context; inside a pod, the pod's service account).  Raises :class:`~llmrca.errors.MissingDependency`
    naming the ``k8s`` extra when the client is not installed, :class:`ClusterError` when no configuration
    is found.
    """

    def __init__(self, kubeconfig: str | None = None, context: str | None = None) -> None:
        k8s = require("kubernetes", "k8s", "the Kubernetes backend")
        from kubernetes import config, dynamic  # the extra is there (require checked it)

        try:
            config.load_kube_config(config_file=kubeconfig, context=context)
        except Exception as e:
            try:
                config.load_incluster_config()
            except Exception:
                raise ClusterError(f"no Kubernetes configuration ({e}); give a kubeconfig (--kubeconfig, or --set k8s.kubeconfig=PATH for a campaign), set $KUBECONFIG, or run inside the cluster") from e
        self._exc = k8s.client.exceptions.ApiException
        self._dyn = dynamic.DynamicClient(k8s.client.ApiClient())
        from kubernetes.dynamic.exceptions import NotFoundError

        self._notfound = NotFoundError

    def _res(self, api_version: str, kind: str) -> Any:
        try:
            return self._dyn.resources.get(api_version=api_version, kind=kind)
        except Exception as e:
            raise ClusterError(f"the cluster serves no {api_version} {kind} ({e}); is its operator (KubeRay, Chaos Mesh, Prometheus Operator) installed?") from e

    def _call(self, what: str, fn: Any, *a: Any, **kw: Any) -> Any:
        try:
            return fn(*a, **kw)
        except self._notfound:
            raise
        except Exception as e:
            reason = getattr(e, "body", None) or str(e)
            raise ClusterError(f"{what}: {reason}") from e

    def apply(self, obj: dict[str, Any]) -> dict[str, Any]:
        av, kind, ns, name = ref(obj)
        r = self._res(av, kind)
        out = self._call(f"apply {kind} {ns}/{name}", self._dyn.server_side_apply, r, body=obj, name=name, namespace=ns or None,
                         field_manager="llmrca", force_conflicts=True)
        return out.to_dict()

    def get(self, api_version: str, kind: str, name: str, namespace: str = "") -> dict[str, Any] | None:
        r = self._res(api_version, kind)
        try:
            return self._call(f"get {kind} {namespace}/{name}", self._dyn.get, r, name=name, namespace=namespace or None).to_dict()
        except self._notfound:
            return None

    def list(self, api_version: str, kind: str, namespace: str = "", label_selector: str = "") -> list[dict[str, Any]]:
        r = self._res(api_version, kind)
        out = self._call(f"list {kind} in {namespace or 'all namespaces'}", self._dyn.get, r, namespace=namespace or None, label_selector=label_selector or None)
        return [i.to_dict() if hasattr(i, "to_dict") else dict(i) for i in out.items]

    def patch(self, api_version: str, kind: str, name: str, namespace: str, patch: dict[str, Any]) -> dict[str, Any]:
        r = self._res(api_version, kind)
        try:
            out = self._call(f"patch {kind} {namespace}/{name}", self._dyn.patch, r, body=patch, name=name, namespace=namespace or None,
                             content_type="application/merge-patch+json")
        except self._notfound:
            raise ClusterError(f"patch {kind} {namespace}/{name}: not found") from None
        return out.to_dict()

    def delete(self, api_version: str, kind: str, name: str, namespace: str = "") -> bool:
        r = self._res(api_version, kind)
        try:
            self._call(f"delete {kind} {namespace}/{name}", self._dyn.delete, r, name=name, namespace=namespace or None,
                       body={"propagationPolicy": "Background"})
        except self._notfound:
            return False
        return True


def selector(labels: dict[str, str]) -> str:
    """``{"a": "1", "b": "2"}`` -> ``"a=1,b=2"`` (a label selector)."""
    return ",".join(f"{k}={v}" for k, v in labels.items())


def matches(obj_labels: dict[str, str] | None, label_selector: str) -> bool:
    """Whether labels match an equality-based selector (``k=v``, ``k!=v``, ``k`` exists), comma-separated."""
    have = obj_labels or {}
    for term in filter(None, (t.strip() for t in label_selector.split(","))):
        if "!=" in term:
            k, v = term.split("!=", 1)
            if have.get(k) == v:
                return False
        elif "=" in term:
            k, v = term.split("=", 1)
            if have.get(k) != v.lstrip("="):
                return False
        elif term not in have:
            return False
    return True
