"""The GPU power cap on Kubernetes: a short privileged Job on the target's node running ``nvidia-smi -pl``.

Chaos Mesh has no GPU chaos, so the cap (paper §4.3: ``nvidia-smi -pl 150`` on a 300 W A100) is set by
a Job pinned to the node (``nodeName``) of the target pod, with the NVIDIA runtime and every GPU visible
(``NVIDIA_VISIBLE_DEVICES=all``, ``NVIDIA_DRIVER_CAPABILITIES=utility``: the container toolkit mounts
``nvidia-smi``).  The script reads the device's default limit, sets the cap, holds it for ``hold_s`` and
restores the default in an ``EXIT`` trap, so the default comes back however the pod ends:

* the fault's ``stop`` deletes the Job -> the pod gets SIGTERM -> the trap restores;
* llmrca is killed -> the script's own ``sleep`` ends after ``hold_s`` -> the trap restores;
* the pod hangs -> ``activeDeadlineSeconds`` (``hold_s`` + 60) makes the Job controller terminate it -> SIGTERM -> the trap;
* ``ttlSecondsAfterFinished`` removes the finished Job, the RayService as owner removes it with the
  stack, and ``llmrca k8s down`` deletes it by label.

The same Job without a cap (``limit_w=None``) is the ``reset-power-limit`` remediation.  The device is
named by UUID, found through dcgm-exporter's series of the target pod (``pod`` / ``namespace`` labels,
the GPU Operator's pod mapping), or given as ``gpu`` (UUID or index).
"""

from __future__ import annotations

from typing import Any

from llmrca.testbed.k8s.config import K8sConfig

#: The Job's script (bash): env GPU, LIMIT_W (empty: reset only), HOLD_S.
SCRIPT = r"""set -u
default=$(nvidia-smi -i "$GPU" --query-gpu=power.default_limit --format=csv,noheader,nounits | head -n1)
default=${default%.*}
restore() { nvidia-smi -i "$GPU" -pl "$default" && echo "llmrca: restored the default limit ${default} W on $GPU"; }
trap restore EXIT
trap 'exit 0' TERM INT
if [ -z "$LIMIT_W" ]; then exit 0; fi
nvidia-smi -i "$GPU" -pl "$LIMIT_W" || exit 1
echo "llmrca: power limit ${LIMIT_W} W on $GPU for ${HOLD_S} s"
sleep "$HOLD_S" &
wait $!
"""


def power_job(cfg: K8sConfig, metadata: dict[str, Any], node: str, gpu: str, limit_w: float | None, hold_s: float,
              owner: dict[str, Any] | None = None) -> dict[str, Any]:
    """The ``batch/v1`` Job that caps (``limit_w`` W) or resets (``None``) the power limit of ``gpu`` on ``node``.

    ``metadata``: name, namespace, labels (copied to the pod); ``owner``: an object (the RayService) to
    set as the Job's owner, so deleting the stack deletes the Job.
    """
    meta = {**metadata, "labels": dict(metadata.get("labels") or {})}
    if owner is not None and owner.get("metadata", {}).get("uid"):
        meta["ownerReferences"] = [{
            "apiVersion": owner["apiVersion"], "kind": owner["kind"], "name": owner["metadata"]["name"],
            "uid": owner["metadata"]["uid"], "blockOwnerDeletion": False,
        }]
    hold = round(hold_s)
    pod: dict[str, Any] = {
        "nodeName": node,
        "restartPolicy": "Never",
        "terminationGracePeriodSeconds": 30,
        "tolerations": [{"operator": "Exists"}],
        "containers": [{
            "name": "power-limit",
            "image": cfg.gpu_job_image,
            "command": ["/bin/bash", "-c", SCRIPT],
            "env": [
                {"name": "GPU", "value": gpu},
                {"name": "LIMIT_W", "value": "" if limit_w is None else f"{round(limit_w)}"},
                {"name": "HOLD_S", "value": str(hold)},
                {"name": "NVIDIA_VISIBLE_DEVICES", "value": "all"},
                {"name": "NVIDIA_DRIVER_CAPABILITIES", "value": "utility"},
            ],
            "securityContext": {"privileged": True},
            "resources": {"limits": {"cpu": "100m", "memory": "64Mi"}},
        }],
    }
    if cfg.gpu_runtime_class:
        pod["runtimeClassName"] = cfg.gpu_runtime_class
    return {
        "apiVersion": "batch/v1",
        "kind": "Job",
        "metadata": meta,
        "spec": {
            "backoffLimit": 0,
            "activeDeadlineSeconds": hold + 60,
            "ttlSecondsAfterFinished": 300,
            "template": {"metadata": {"labels": dict(meta["labels"])}, "spec": pod},
        },
    }


def gpu_of_pod(prom: Any, namespace: str, pod: str, at: float) -> dict[str, Any] | None:
    """``{"uuid", "hostname", "gpu", "power_limit_w"}`` of the GPU dcgm-exporter maps to ``pod``, or None.

    ``prom``: a client with ``.query(promql, time)`` (:class:`llmrca.collect.PromClient`).
    """
    try:
        res = prom.query(f'DCGM_FI_DEV_POWER_MGMT_LIMIT{{namespace="{namespace}",pod="{pod}"}}', at)
    except Exception:
        return None
    if not res:
        return None
    s = res[0]
    return {"uuid": s.labels.get("UUID"), "hostname": s.labels.get("Hostname"), "gpu": s.labels.get("gpu"), "power_limit_w": float(s.values[-1])}


def read_limit(prom: Any, uuid: str, at: float) -> float | None:
    """The power limit (W) dcgm-exporter reports for the device ``uuid`` at ``at``, or None."""
    try:
        res = prom.query(f'DCGM_FI_DEV_POWER_MGMT_LIMIT{{UUID="{uuid}"}}', at)
    except Exception:
        return None
    return float(res[0].values[-1]) if res else None
