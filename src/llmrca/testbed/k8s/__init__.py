"""The Kubernetes backend: the paper's stack as manifests, faults through Chaos Mesh and a GPU Job, campaigns and remediations.

* :mod:`.config` — :class:`K8sConfig`, the settings of a rendered stack (profiles ``paper`` and ``small``);
* :mod:`.render` — the stack as plain objects (KubeRay ``RayService`` with vLLM, the NGINX gateway,
  Prometheus-Operator monitors, DCGM counters, RBAC) and :func:`write_manifests`;
* :mod:`.schema` — validation of objects against Kubernetes' OpenAPI schemas and the operators' CRD schemas;
* :mod:`.api` — :class:`ClusterApi`, the few verbs llmrca needs, and :class:`KubeApi` (the official client);
* :mod:`.fake` — :class:`FakeCluster`, an in-process API that validates every object and records every call;
* :mod:`.backend` — :class:`K8sBackend` (``llmrca campaign --backend k8s``) and :func:`down`;
* :mod:`.actuator` — :class:`K8sActuator` (``restart``, ``drain``, ``reset-power-limit``).

The fault classes themselves are ``K8s...`` in :mod:`llmrca.faults` (one module per fault type).
No cluster runs on the development machine: see docs/k8s.md for what is checked here and what needs a cluster.
"""
