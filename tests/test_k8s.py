"""The Kubernetes backend without a cluster: rendered objects against the real schemas, faults, campaign and actuator on the fake API.

No cluster runs here.  What is checked: every rendered object validates against Kubernetes' schemas
(two minor versions, from kubernetes-validate) and the operators' CRD schemas (tests/data/crds);
a misspelt field is rejected; the campaign, the faults and the actuator drive an in-process API
(:class:`llmrca.testbed.k8s.fake.FakeCluster`) that rejects objects failing those schemas.
"""

from __future__ import annotations

import copy
import json
import re
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml

pytest.importorskip("kubernetes_validate")

from llmrca.campaign import run_campaign
from llmrca.config import ConfigError
from llmrca.model import FaultSpec
from llmrca.testbed.base import Timeline
from llmrca.testbed.injection import FaultError, inject, injector_class
from llmrca.testbed.k8s.api import ClusterError
from llmrca.testbed.k8s.backend import K8sBackend, K8sOptions
from llmrca.testbed.k8s.config import K8sConfig, profile_config
from llmrca.testbed.k8s.fake import DEFAULT_LIMIT_W, FakeCluster, FakePrometheus
from llmrca.testbed.k8s.render import DCGM_FIELDS, render_stack, write_manifests
from llmrca.testbed.k8s.schema import K8S_VERSIONS, crd_dir, crd_schemas, validate_object
from llmrca.testbed.k8s.stack import K8sStack, down

FAULT_SEL = "llmrca.io/fault"
NO_WAIT = {"sleep": lambda s: None}


def _by_kind(objs: list[dict]) -> dict[str, list[dict]]:
    out: dict[str, list[dict]] = {}
    for o in objs:
        out.setdefault(o["kind"], []).append(o)
    return out


def _stack(profile: str = "paper", **kw) -> tuple[FakeCluster, K8sStack]:
    fc = FakeCluster(**kw)
    st = K8sStack(fc, profile_config(profile), sleep=lambda s: None)
    st.apply()
    return fc, st


# -- rendering and schemas -------------------------------------------------------------------
def test_schemas_cover_two_versions_and_the_three_operators() -> None:
    assert len(K8S_VERSIONS) >= 2
    kinds = {k for _, k in crd_schemas(str(crd_dir()))}
    assert kinds == {"RayService", "StressChaos", "NetworkChaos", "ServiceMonitor", "PodMonitor"}


@pytest.mark.parametrize("profile", ["paper", "small"])
def test_every_rendered_object_validates(profile: str) -> None:
    objs = render_stack(profile_config(profile))
    problems = [p for o in objs for p in validate_object(o)]
    assert problems == []
    assert set(_by_kind(objs)) == {"Namespace", "ServiceAccount", "Role", "RoleBinding", "RayService", "Service", "ConfigMap",
                                   "Deployment", "PodMonitor", "ServiceMonitor"}


def test_paper_profile_matches_the_paper() -> None:
    cfg = profile_config("paper")
    objs = _by_kind(render_stack(cfg))
    rs = objs["RayService"][0]
    cc = rs["spec"]["rayClusterConfig"]
    assert cc["workerGroupSpecs"][0]["replicas"] == 3
    for tpl in (cc["headGroupSpec"]["template"], cc["workerGroupSpecs"][0]["template"]):
        limits = tpl["spec"]["containers"][0]["resources"]["limits"]
        assert limits == {"cpu": "8", "memory": "16Gi", "nvidia.com/gpu": 1}
    serve = yaml.safe_load(rs["spec"]["serveConfigV2"])
    llm = serve["applications"][0]["args"]["llm_configs"][0]
    assert llm["deployment_config"] == {"num_replicas": 4, "max_ongoing_requests": 500}
    assert llm["model_loading_config"]["model_id"] == cfg.model
    # DCGM: the opt-in power / clock fields are in the counters CSV
    csv = next(o for o in objs["ConfigMap"] if o["metadata"]["name"] == cfg.dcgm_configmap)["data"]["dcgm-metrics.csv"]
    fields = [line.split(",")[0] for line in csv.splitlines() if line and not line.startswith("#")]
    for f in ("DCGM_FI_DEV_POWER_USAGE", "DCGM_FI_DEV_POWER_MGMT_LIMIT", "DCGM_FI_DEV_CLOCKS_EVENT_REASONS", "DCGM_FI_DEV_SM_CLOCK"):
        assert f in fields
    assert len(fields) == len(DCGM_FIELDS)
    monitors = {o["metadata"]["name"] for o in objs["PodMonitor"] + objs["ServiceMonitor"]}
    assert monitors == {"llmrca-ray", "llmrca-vllm", "llmrca-gateway", "llmrca-dcgm"}
    # RBAC: no wildcard, no cluster-wide role, only what the campaign and the actuator do
    rules = objs["Role"][0]["rules"]
    assert all("*" not in r["verbs"] and "*" not in r["resources"] for r in rules)
    assert "ClusterRole" not in objs
    verbs = {(res, v) for r in rules for res in r["resources"] for v in r["verbs"]}
    assert ("pods", "delete") in verbs and ("stresschaos", "create") in verbs and ("jobs", "create") in verbs
    assert ("rayservices", "delete") not in verbs and ("deployments", "patch") not in verbs


def test_settings_change_the_rendering() -> None:
    cfg = profile_config("small", {"model": "org/m", "workers": 2, "image": "reg/ray:1"})
    rs = _by_kind(render_stack(cfg))["RayService"][0]
    assert rs["spec"]["rayClusterConfig"]["workerGroupSpecs"][0]["replicas"] == 2
    assert rs["spec"]["rayClusterConfig"]["headGroupSpec"]["template"]["spec"]["containers"][0]["image"] == "reg/ray:1"
    assert "org/m" in rs["spec"]["serveConfigV2"]
    with pytest.raises(ValueError, match="workerz"):
        profile_config("paper", {"workerz": 1})


def test_gpus_per_pod_set_the_tensor_parallel_size_and_namespaces_are_checked() -> None:
    rs = _by_kind(render_stack(profile_config("small", {"gpus": 2})))["RayService"][0]
    serve = yaml.safe_load(rs["spec"]["serveConfigV2"])
    engine = serve["applications"][0]["args"]["llm_configs"][0]["engine_kwargs"]
    assert engine["tensor_parallel_size"] == 2  # a pod's GPUs serve its one replica, none idle
    with pytest.raises(ConfigError, match="dcgm_namespace 'BAD_NS' must be a DNS label"):
        profile_config("small", {"dcgm_namespace": "BAD_NS"})


def test_render_cli_names_a_file_in_the_way_and_missing_crd_schemas(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from typer.testing import CliRunner

    from llmrca.cli import app

    (tmp_path / "afile").write_text("x")
    r = CliRunner().invoke(app, ["k8s", "render", "--out", str(tmp_path / "afile")])
    assert r.exit_code == 2 and "is a file" in r.output, r.output
    monkeypatch.setenv("LLMRCA_CRD_DIR", str(tmp_path / "nonexistent"))
    r = CliRunner().invoke(app, ["k8s", "render", "--out", str(tmp_path / "m"), "--validate"])
    assert r.exit_code != 0 and "Traceback" not in r.output and "LLMRCA_CRD_DIR" in r.output, r.output


def test_render_into_a_used_folder_removes_its_own_stale_manifests_only(tmp_path: Path) -> None:
    from typer.testing import CliRunner

    from llmrca.cli import app

    out = tmp_path / "m"
    r = CliRunner().invoke(app, ["k8s", "render", "--out", str(out)])
    assert r.exit_code == 0, r.output
    written = sorted(p.name for p in out.iterdir())
    # a manifest an earlier render wrote that this one does not (same header), and a file of the user's
    (out / "old.yaml").write_text((out / "gateway.yaml").read_text())
    (out / "mine.yaml").write_text("apiVersion: v1\nkind: ConfigMap\nmetadata: {name: mine}\n")
    r = CliRunner().invoke(app, ["k8s", "render", "--out", str(out)])
    assert r.exit_code == 0, r.output
    assert not (out / "old.yaml").exists() and (out / "mine.yaml").read_text().startswith("apiVersion")
    assert sorted(p.name for p in out.iterdir()) == sorted([*written, "mine.yaml"])
    assert "removed what an earlier render left there and this one does not write: old.yaml" in r.stdout
    assert "also holds mine.yaml, which llmrca did not write" in r.stderr


def test_k8s_status_and_down_say_a_bad_profile_before_asking_the_cluster() -> None:
    from typer.testing import CliRunner

    from llmrca.cli import app

    for cmd in ("status", "down"):
        r = CliRunner().invoke(app, ["k8s", cmd, "--profile", "nope", "--kubeconfig", "/nonexistent/kubeconfig"])
        assert r.exit_code != 0 and "unknown k8s profile 'nope'" in r.output and "Traceback" not in r.output, r.output


def _mutate(obj: dict, path: list, new_key: str | None = None, value: object = None) -> dict:
    o = copy.deepcopy(obj)
    node = o
    for p in path[:-1]:
        node = node[p]
    if new_key is None:
        node[path[-1]] = value
    else:
        node[new_key] = node.pop(path[-1])
    return o


MISSPELT = [
    ("Deployment", ["spec", "template", "spec", "containers", 0, "resources"], "resource"),
    ("Service", ["spec", "ports"], "port"),
    ("RoleBinding", ["roleRef"], "roleref"),
    ("RayService", ["spec", "rayClusterConfig", "workerGroupSpecs"], "workerGroupSpec"),
    ("RayService", ["spec", "rayClusterConfig", "headGroupSpec", "rayStartParams"], "rayStartParam"),
    ("PodMonitor", ["spec", "podMetricsEndpoints"], "podMetricEndpoints"),
    ("ServiceMonitor", ["spec", "endpoints", 0, "interval"], "intervall"),
]


@pytest.mark.parametrize(("kind", "path", "typo"), MISSPELT, ids=[f"{k}-{t}" for k, _, t in MISSPELT])
def test_a_misspelt_field_fails(kind: str, path: list, typo: str) -> None:
    obj = next(o for o in render_stack(profile_config("paper")) if o["kind"] == kind)
    assert validate_object(obj) == []
    bad = validate_object(_mutate(obj, path, typo))
    assert bad and any(typo in p for p in bad), bad
    if kind in ("Deployment", "Service", "RoleBinding"):  # built-in kinds: every version says so
        assert {v for v in K8S_VERSIONS if any(f"Kubernetes {v}:" in p for p in bad)} == set(K8S_VERSIONS)


def test_a_wrong_type_or_value_fails() -> None:
    objs = {o["kind"]: o for o in render_stack(profile_config("paper"))}
    assert validate_object(_mutate(objs["Deployment"], ["spec", "replicas"], value="one"))
    assert validate_object(_mutate(objs["RayService"], ["spec", "rayClusterConfig", "workerGroupSpecs", 0, "replicas"], value="3"))
    assert validate_object({"apiVersion": "chaos-mesh.org/v1alpha1", "kind": "NetworkChaos", "metadata": {"name": "x"},
                            "spec": {"action": "delay", "mode": "one", "selector": {}, "direction": "sideways", "delay": {"latency": "1000ms"}}})
    assert validate_object({"apiVersion": "example.com/v1", "kind": "Unknown", "metadata": {"name": "x"}})  # no schema: not waved through


def test_render_cli_writes_manifests_and_kustomization(tmp_path: Path) -> None:
    from typer.testing import CliRunner

    from llmrca.cli import app

    r = CliRunner().invoke(app, ["k8s", "render", "--profile", "small", "--set", "model=org/tiny", "--out", str(tmp_path), "--validate"])
    assert r.exit_code == 0, r.output
    kust = yaml.safe_load((tmp_path / "kustomization.yaml").read_text())
    docs = [d for f in kust["resources"] for d in yaml.safe_load_all((tmp_path / f).read_text()) if d]
    assert docs == render_stack(profile_config("small", {"model": "org/tiny"}))
    r = CliRunner().invoke(app, ["k8s", "render", "--set", "workers=-1", "--out", str(tmp_path / "x")])
    assert r.exit_code == 2 and "workers must be >= 0" in r.output and "Traceback" not in r.output


def test_write_manifests_round_trips(tmp_path: Path) -> None:
    cfg = profile_config("paper")
    paths = write_manifests(render_stack(cfg), tmp_path, cfg)
    assert [p.name for p in paths][-1] == "kustomization.yaml"
    nginx = yaml.safe_load_all((tmp_path / "gateway.yaml").read_text())
    conf = next(d for d in nginx if d["kind"] == "ConfigMap")["data"]["nginx.conf"]
    assert "server llmrca-serve-pods.llmrca.svc.cluster.local:8000 resolve;" in conf


# -- the fake API ------------------------------------------------------------------------------
def test_fake_rejects_what_the_schemas_reject() -> None:
    fc = FakeCluster()
    obj = next(o for o in render_stack(profile_config("paper")) if o["kind"] == "RayService")
    with pytest.raises(ClusterError, match="workerGroupSpec"):
        fc.apply(_mutate(obj, ["spec", "rayClusterConfig", "workerGroupSpecs"], "workerGroupSpec"))
    assert fc.objects == {}


def test_stack_is_ready_and_numbers_workers_stably() -> None:
    fc, st = _stack()
    assert st.readiness() == {"ready": True, "waiting_for": []}
    before = {c: p["metadata"]["name"] for c, p in st.serving_pods().items()}
    assert list(before) == ["ray-head", "ray-worker-1", "ray-worker-2", "ray-worker-3"]
    fc.delete("v1", "Pod", before["ray-worker-1"], "llmrca")  # KubeRay recreates it under a new name
    after = {c: p["metadata"]["name"] for c, p in st.serving_pods().items()}
    assert after["ray-worker-1"] != before["ray-worker-1"]
    assert (after["ray-worker-2"], after["ray-worker-3"]) == (before["ray-worker-2"], before["ray-worker-3"])


# -- faults ------------------------------------------------------------------------------------
def _spec(ft: str, **params) -> FaultSpec:
    return FaultSpec(type=ft, target="ray-worker-2", params=params, duration_s=60.0)


def test_chaos_faults_carry_the_paper_parameters_and_are_removed() -> None:
    fc, st = _stack()
    pod = st.serving_pods()["ray-worker-2"]["metadata"]["name"]
    seen = {}
    for ft in ("cpu", "memory", "network"):
        with inject(_spec(ft), backend="k8s", stack=st, prom=FakePrometheus(fc), **NO_WAIT) as act:
            (obj,) = [o for k, o in fc.objects.items() if FAULT_SEL in o["metadata"]["labels"]]
            seen[ft] = obj
        assert act.record.achieved["achieved"] is True
        assert act.record.achieved["conditions"]["AllInjected"] == "True"
        assert fc.remaining(FAULT_SEL) == []
    assert seen["cpu"]["kind"] == "StressChaos" and seen["cpu"]["spec"]["stressors"] == {"cpu": {"workers": 16, "load": 100}}
    assert seen["memory"]["spec"]["stressors"] == {"memory": {"workers": 1, "size": "8000MB"}}
    net = seen["network"]["spec"]
    assert (net["action"], net["direction"], net["delay"]) == ("delay", "to", {"latency": "1000ms", "jitter": "100ms", "correlation": "25"})
    for o in seen.values():
        assert o["spec"]["selector"] == {"pods": {"llmrca": [pod]}}
        assert o["spec"]["duration"] == "90s"  # ends by itself 30 s after the planned end
    assert "containerNames" not in net and seen["cpu"]["spec"]["containerNames"] == ["ray-worker"]


def test_not_injected_is_recorded_as_not_achieved() -> None:
    fc, st = _stack(chaos_outcome="not-injected")
    with inject(_spec("cpu"), backend="k8s", stack=st, **NO_WAIT, wait_s=0) as act:
        pass
    a = act.record.achieved
    assert a["achieved"] is False
    assert a["conditions"] == {"Selected": "True", "AllInjected": "False", "AllRecovered": "False", "Paused": "False"}
    assert "Not Injected" in a["reason"] and a["records"][0]["injected_count"] == 0
    assert fc.remaining(FAULT_SEL) == []


def test_gpu_cap_job_reads_back_and_restores() -> None:
    fc, st = _stack()
    prom = FakePrometheus(fc)
    with inject(_spec("gpu"), backend="k8s", stack=st, prom=prom, **NO_WAIT) as act:
        (job,) = [o for o in fc.objects.values() if o["kind"] == "Job"]
        assert fc.power_limits[("gpu-node-2", "GPU-gpu-node-2")] == 150.0
    a = act.record.achieved
    assert a["achieved"] is True and a["power_limit_w_read_back"] == 150.0 and a["power_limit_w_before"] == DEFAULT_LIMIT_W
    assert fc.power_limits[("gpu-node-2", "GPU-gpu-node-2")] == DEFAULT_LIMIT_W
    spec = job["spec"]
    pod = spec["template"]["spec"]
    env = {e["name"]: e["value"] for e in pod["containers"][0]["env"]}
    assert (env["GPU"], env["LIMIT_W"], env["HOLD_S"]) == ("GPU-gpu-node-2", "150", "90")
    assert pod["nodeName"] == "gpu-node-2" and pod["containers"][0]["securityContext"]["privileged"] is True
    assert spec["activeDeadlineSeconds"] == 150 and spec["ttlSecondsAfterFinished"] == 300
    assert job["metadata"]["ownerReferences"][0]["kind"] == "RayService"
    script = pod["containers"][0]["command"][2]
    assert "trap restore EXIT" in script and 'nvidia-smi -i "$GPU" -pl "$LIMIT_W"' in script


def test_gpu_without_dcgm_mapping() -> None:
    fc, st = _stack()
    with pytest.raises(FaultError, match=r"fault\.gpu\.gpu"):
        with inject(_spec("gpu"), backend="k8s", stack=st, prom=FakePrometheus(fc, answer=False), **NO_WAIT):
            pass
    with inject(_spec("gpu", gpu="0"), backend="k8s", stack=st, prom=FakePrometheus(fc, answer=False), **NO_WAIT, wait_s=0) as act:
        pass
    assert act.record.achieved["achieved"] is False and "DCGM reports no W" in act.record.achieved["reason"]
    assert fc.remaining(FAULT_SEL) == []


@pytest.mark.parametrize("ftype", ["cpu", "memory", "network", "gpu"])
def test_every_fault_type_has_a_k8s_implementation_next_to_the_others(ftype: str) -> None:
    from llmrca.faults.kubernetes import K8sInjector
    from llmrca.testbed.base import fault_class

    k8s = injector_class("k8s", ftype)
    assert issubclass(k8s, K8sInjector) and k8s.fault_type == ftype
    assert k8s.__module__ == fault_class("sim", ftype).__module__ == f"llmrca.faults.{ftype}"


def test_unknown_target_or_parameter() -> None:
    _, st = _stack()
    with pytest.raises(FaultError, match="not a serving pod"):
        injector_class("k8s", "cpu")(FaultSpec(type="cpu", target="ray-worker-9", params={}, duration_s=1), stack=st)
    with pytest.raises(FaultError, match="unknown parameter"):
        injector_class("k8s", "memory")(FaultSpec(type="memory", target="ray-worker-1", params={"fraction": 0.5}, duration_s=1), stack=st)


def test_kill_in_the_middle_then_down_leaves_nothing() -> None:
    fc, st = _stack()
    prom = FakePrometheus(fc)
    # llmrca is SIGKILLed with three faults on: their stop() never runs
    for ft in ("cpu", "network", "gpu"):
        injector_class("k8s", ft)(_spec(ft), stack=st, prom=prom, **NO_WAIT).start()
    assert len(fc.remaining(FAULT_SEL)) == 3 and fc.power_limits[("gpu-node-2", "GPU-gpu-node-2")] == 150.0
    res = down(fc, st.config)
    assert len(res["faults"]) == 3 and fc.remaining(FAULT_SEL) == []
    assert fc.power_limits[("gpu-node-2", "GPU-gpu-node-2")] == DEFAULT_LIMIT_W  # the Job's pod ran its exit trap
    res = down(fc, st.config, stack_too=True)
    assert "RayService/llmrca" in res["stack"] and fc.remaining("app.kubernetes.io/managed-by=llmrca") == []
    assert fc.objects == {}


# -- campaign ----------------------------------------------------------------------------------
def _fake_collector(calls: list):
    """A documented stand-in for collect_case (no Prometheus with backfilled series here): a synthetic case
    with the real fault record, the selectors and the meta the backend passes."""
    from llmrca.synthetic import make_case

    def collect(prom_url, components, start, end, inject_time, record, topology, *, step_s, meta, name):
        calls.append({"components": dict(components), "record": record, "prom": prom_url, "start": start, "end": end, "inject": inject_time})
        case = make_case(root=record.target, fault=record.type, n_workers=len(topology.nodes) - 3, seed=len(calls), with_traces=False, with_logs=False)
        case.fault = record
        case.meta.update(meta)
        case.name = name
        return case.validate()

    return collect


class _Boom(RuntimeError):
    pass


def test_campaign_runs_full_cases_resumes_and_cleans(tmp_path: Path) -> None:
    from llmrca.load.stub_server import StubBehaviour, StubServer

    fc = FakeCluster()
    cfg = K8sConfig(workers=1)
    calls: list = []
    tl = Timeline(normal_s=0.2, fault_s=0.2, tail_s=0.1, cooldown_s=0.0, warmup_s=0.1)
    with StubServer(StubBehaviour(ttft_s=0.005, itl_s=0.001)) as srv:
        opts = K8sOptions(gateway_url=srv.url, prometheus_url="http://127.0.0.1:9", qps=20.0, prompt_tokens=8, output_tokens=4, step_s=0.01)

        def backend(fail_at: int | None = None) -> K8sBackend:
            be = K8sBackend(cfg, opts, api=fc, prom=FakePrometheus(fc), collector=_fake_collector(calls), sleep=time.sleep)
            if fail_at is not None:
                real = be.run_case

                def run_case(fault, **kw):
                    if len(calls) == fail_at:
                        raise _Boom("killed")
                    return real(fault, **kw)

                be.run_case = run_case  # type: ignore[method-assign]
            return be

        out = tmp_path / "ds"
        with pytest.raises(_Boom):
            run_campaign("k8s", "quick", seed=4, out=out, progress=False, protocol=tl, backend_obj=backend(fail_at=2))
        man = json.loads((out / "dataset.json").read_text())
        assert man["complete"] is False and [c["path"] for c in man["cases"]] == ["ray-worker-1_cpu/1", "ray-worker-1_memory/1"]
        assert fc.remaining(FAULT_SEL) == []
        with pytest.raises(FileExistsError, match="--resume"):
            run_campaign("k8s", "quick", seed=4, out=out, progress=False, protocol=tl, backend_obj=backend())
        run_campaign("k8s", "quick", seed=4, out=out, progress=False, protocol=tl, backend_obj=backend(), resume=True)
    man = json.loads((out / "dataset.json").read_text())
    assert man["complete"] is True and man["backend"] == "k8s"
    assert [c["path"] for c in man["cases"]] == ["ray-worker-1_cpu/1", "ray-worker-1_memory/1", "ray-worker-1_network/1", "ray-worker-1_gpu/1"]
    assert all(c["achieved"]["achieved"] is True for c in man["cases"])
    assert [c["seed"] for c in man["cases"]] == [json.loads((out / c["path"] / "case.json").read_text())["meta"]["seed"] for c in man["cases"]]
    assert len(calls) == 4
    c = calls[-1]
    assert c["record"].type == "gpu" and c["start"] <= c["inject"] <= c["end"]
    assert set(c["components"]) == {"nginx-gateway", "ray-head", "ray-worker-1"}
    assert c["components"]["ray-worker-1"].startswith('namespace="llmrca",pod="llmrca-gpu-worker-')
    meta = json.loads((out / "ray-worker-1_gpu/1/case.json").read_text())["meta"]
    assert meta["requests"]["ok"] > 0 and meta["k8s"]["pods"]["ray-worker-1"].startswith("llmrca-gpu-worker-")
    # every object a fault made was deleted; the stack was applied once per run (server-side apply: no duplicates)
    applied = [k for v, k, _, _ in fc.calls if v == "apply"]
    assert len(K8sStack(fc, cfg).serving_pods()) == 2
    assert applied.count("RayService") == 2 and applied.count("StressChaos") == 2 and applied.count("NetworkChaos") == 1 and applied.count("Job") == 1
    assert fc.remaining(FAULT_SEL) == [] and fc.power_limits[("gpu-node-1", "GPU-gpu-node-1")] == DEFAULT_LIMIT_W


def test_campaign_options_are_checked() -> None:
    from llmrca.config import ConfigError

    with pytest.raises(ConfigError, match=r"k8s\.gateway_url"):
        K8sBackend.from_options(workers=None, qps=None, scrape_interval_s=None, params={})
    with pytest.raises(ConfigError, match="allow"):
        K8sBackend.from_options(workers=None, qps=None, scrape_interval_s=None, params={"gateway_url": "http://192.0.2.1", "prometheus_url": "http://x"})
    be = K8sBackend.from_options(workers=2, qps=1.0, scrape_interval_s=None,
                                 params={"gateway_url": "http://192.0.2.1", "prometheus_url": "http://x", "allow_remote": True, "namespace": "x"})
    assert (be.config.workers, be.config.namespace, be.options.qps) == (2, "x", 1.0)
    with pytest.raises(ConfigError, match="unknown k8s option"):
        K8sBackend.from_options(workers=None, qps=None, scrape_interval_s=None, params={"gatway_url": "x"})


# -- actuator ----------------------------------------------------------------------------------
def test_actuator_restart_drain_reset_behind_the_rails() -> None:
    from llmrca.heal.actuators import guarded

    fc, st = _stack()
    pods = {c: p["metadata"]["name"] for c, p in st.serving_pods().items()}
    dry = guarded("k8s", api=fc, config=st.config)
    assert dry.request("restart", "ray-worker-1").status == "dry-run" and ("v1", "Pod", "llmrca", pods["ray-worker-1"]) in fc.objects
    g = guarded("k8s", execute=True, allow=["ray-worker-1", "ray-worker-2", "ray-worker-3"], api=fc, config=st.config, prom=FakePrometheus(fc))
    r = g.request("restart", "ray-worker-1")
    assert r.status == "done" and ("v1", "Pod", "llmrca", pods["ray-worker-1"]) not in fc.objects
    assert st.serving_pods()["ray-worker-1"]["metadata"]["name"] != pods["ray-worker-1"]
    r = g.request("drain", "ray-worker-2")
    assert r.status == "done" and fc.objects[("v1", "Pod", "llmrca", pods["ray-worker-2"])]["metadata"]["labels"]["llmrca.io/routing"] == "out"
    svc = fc.objects[("v1", "Service", "llmrca", "llmrca-serve-pods")]
    assert svc["spec"]["selector"]["llmrca.io/routing"] == "in"  # so the drained pod leaves the gateway's upstream
    fc.power_limits[("gpu-node-3", "GPU-gpu-node-3")] = 150.0
    r = g.request("reset-power-limit", "ray-worker-3")
    assert r.status == "done" and r.detail["power_limit_w_before"] == 150.0
    assert fc.power_limits[("gpu-node-3", "GPU-gpu-node-3")] == DEFAULT_LIMIT_W
    assert g.request("restart", "ray-head").status == "refused"
    assert g.request("restart", "ray-worker-1").status == "refused"  # rate limit
    down(fc, st.config)
    assert fc.remaining("llmrca.io/action") == []


def test_actuator_failure_is_reported_not_raised() -> None:
    from llmrca.heal.actuators import guarded

    fc, st = _stack()
    g = guarded("k8s", execute=True, api=fc, config=st.config)  # no Prometheus: the GPU cannot be found
    r = g.request("reset-power-limit", "ray-worker-1")
    assert r.status == "failed" and "gpu=<UUID>" in r.reason
    r = g.request("drain", "nginx-gateway")
    assert r.status == "failed" and "only Ray pods" in r.reason


def test_missing_client_names_the_extra(monkeypatch: pytest.MonkeyPatch) -> None:
    import builtins

    from llmrca.errors import MissingDependency
    from llmrca.testbed.k8s.api import KubeApi

    real = builtins.__import__

    def no_k8s(name, *a, **kw):
        if name == "kubernetes" or name.startswith("kubernetes."):
            raise ImportError("No module named 'kubernetes'")
        return real(name, *a, **kw)

    monkeypatch.setattr(builtins, "__import__", no_k8s)
    with pytest.raises(MissingDependency, match=r'llmrca\[k8s\]'):
        KubeApi()


def test_set_values_keep_their_type_or_are_refused() -> None:
    """`--set` reads YAML: 2.50 would become the float 2.5, so a text setting refuses a number (quote it) and an int one a fraction."""
    from llmrca.config import ConfigError, parse_overrides
    from llmrca.testbed.k8s.config import K8sConfig

    with pytest.raises(ConfigError, match=r"expected text.*quote"):
        K8sConfig.from_dict(parse_overrides(["ray_version=2.50"]))
    with pytest.raises(ConfigError, match="expected an integer"):
        K8sConfig.from_dict(parse_overrides(["workers=2.5"]))
    assert K8sConfig.from_dict(parse_overrides(['ray_version="2.50"'])).ray_version == "2.50"
    assert K8sConfig.from_dict(parse_overrides(["workers=2.0"])).workers == 2


@pytest.mark.parametrize(
    ("setting", "message"),
    [
        ("memory=lots", "memory 'lots' is not a Kubernetes quantity"),
        ("cpu=0", "cpu '0' must be more than zero"),
        ("gateway_cpu=-1", "gateway_cpu '-1' is not a Kubernetes quantity"),
        ("gpus=0", "gpus must be >= 1"),
        ('scrape_interval="0s"', "scrape_interval '0s' must be a Prometheus duration above zero"),
        ('scrape_interval="5 seconds"', "must be a Prometheus duration"),
    ],
)
def test_resource_values_are_checked_when_the_config_is_made(setting: str, message: str) -> None:
    """Values are checked when the settings are read, so `k8s render` without --validate cannot write `memory: lots`."""
    from llmrca.config import ConfigError, parse_overrides
    from llmrca.testbed.k8s.config import K8sConfig

    with pytest.raises(ConfigError, match=re.escape(message)):
        K8sConfig.from_dict(parse_overrides([setting]))


def test_a_quantity_may_be_written_as_a_number() -> None:
    from llmrca.config import parse_overrides
    from llmrca.testbed.k8s.config import K8sConfig

    c = K8sConfig.from_dict(parse_overrides(["cpu=8", "gateway_cpu=0.5", "memory=17179869184", 'gateway_memory="512Mi"']))
    assert (c.cpu, c.gateway_cpu, c.memory, c.gateway_memory) == ("8", "0.5", "17179869184", "512Mi")
    r = subprocess.run([sys.executable, "-m", "llmrca", "k8s", "render", "--set", "memory=lots", "--out", "/dev/null/x"], capture_output=True, text=True, timeout=120)
    assert r.returncode != 0 and "not a Kubernetes quantity" in r.stderr + r.stdout and "Traceback" not in r.stderr


def test_a_k8s_campaign_can_use_the_small_stack_profile() -> None:
    urls = {"gateway_url": "http://127.0.0.1:8080", "prometheus_url": "http://127.0.0.1:9090"}
    be = K8sBackend.from_options(workers=None, qps=None, scrape_interval_s=None, params={**urls, "stack_profile": "small", "cpu": "6"})
    assert (be.config.workers, be.config.model, be.config.cpu) == (1, "Qwen/Qwen2.5-0.5B-Instruct", "6")
    assert K8sBackend.from_options(workers=None, qps=None, scrape_interval_s=None, params=urls).config.workers == 3
    with pytest.raises(ConfigError, match="unknown k8s profile 'tiny'"):
        K8sBackend.from_options(workers=None, qps=None, scrape_interval_s=None, params={**urls, "stack_profile": "tiny"})
