"""Methods from outside llmrca: an installed plug-in's entry point, or a module named in $LLMRCA_PLUGINS."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

from llmrca.dataset.io import Dataset
from llmrca.synthetic import make_case

SRC = str(Path(__file__).parents[1] / "src")
TEMPLATE = Path(__file__).parent / "data" / "template_method.py"


def _llmrca(*args: str, path: Path, env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    full = {k: v for k, v in os.environ.items() if k != "LLMRCA_PLUGINS"}
    full.update({"PYTHONPATH": os.pathsep.join([SRC, str(path)]), **(env or {})})
    return subprocess.run([sys.executable, "-m", "llmrca", *args], capture_output=True, text=True, env=full, timeout=180)


def _case(tmp_path: Path) -> Path:
    Dataset.write([make_case(root="ray-worker-2", fault="cpu", seed=3, with_logs=False, with_traces=False)], tmp_path / "ds")
    return tmp_path / "ds" / "ray-worker-2_cpu" / "1"


def test_an_installed_plug_in_is_listed_and_ranks(tmp_path: Path) -> None:
    site = tmp_path / "site"
    site.mkdir()
    shutil.copy(TEMPLATE, site / "demo_rca.py")
    info = site / "demo_rca-0.1.dist-info"
    info.mkdir()
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: demo-rca\nVersion: 0.1\n")
    (info / "entry_points.txt").write_text("[llmrca.methods]\nmedian-shift = demo_rca:ENTRY\n")
    r = _llmrca("methods", "--json", path=site)
    assert r.returncode == 0, r.stderr
    rows = {m["name"]: m for m in json.loads(r.stdout)}
    assert rows["median-shift"]["family"] == "statistical" and "baro" in rows
    r = _llmrca("rank", str(_case(tmp_path)), "--method", "median-shift", "--json", "-q", path=site)
    assert r.returncode == 0, r.stderr
    assert json.loads(r.stdout)["ranking"]["components"][0] == "ray-worker-2"


def test_a_module_named_in_the_environment_registers_its_method(tmp_path: Path) -> None:
    site = tmp_path / "mods"
    site.mkdir()
    shutil.copy(TEMPLATE, site / "demo_method.py")
    (site / "demo_plugin.py").write_text("from llmrca.methods.registry import register\nfrom demo_method import ENTRY\n\nregister(ENTRY)\n")
    r = _llmrca("methods", "--json", path=site, env={"LLMRCA_PLUGINS": "demo_plugin"})
    assert r.returncode == 0 and "median-shift" in {m["name"] for m in json.loads(r.stdout)}
    r = _llmrca("methods", "--json", path=site, env={"LLMRCA_PLUGINS": "no_such_module, demo_plugin"})
    assert r.returncode == 0 and "plug-in module 'no_such_module'" in r.stderr  # named, and the others still load
    assert "median-shift" in {m["name"] for m in json.loads(r.stdout)}


def _plugin_dir(tmp_path: Path) -> Path:
    site = tmp_path / "mods"
    site.mkdir()
    shutil.copy(TEMPLATE, site / "demo_method.py")
    (site / "demo_plugin.py").write_text("from llmrca.methods.registry import register\nfrom demo_method import ENTRY\n\nregister(ENTRY)\n")
    return site


def test_editing_a_plug_in_re_runs_it_on_resume_and_run_json_names_its_code(tmp_path: Path) -> None:
    site = _plugin_dir(tmp_path)
    Dataset.write([make_case(root=r, fault="cpu", seed=1, with_logs=False, with_traces=False) for r in ("ray-worker-1", "ray-worker-2")],
                  tmp_path / "ds")
    env = {"LLMRCA_PLUGINS": "demo_plugin"}
    args = ("evaluate", str(tmp_path / "ds"), "--methods", "median-shift", "--out", str(tmp_path / "ev"), "-q")
    r = _llmrca(*args, path=site, env=env)
    assert r.returncode == 0, r.stderr
    r = _llmrca(*args, path=site, env=env)
    assert r.returncode == 0 and "0 run now, 2 resumed" in r.stdout + r.stderr, r.stdout + r.stderr
    code = json.loads((tmp_path / "ev" / "run.json").read_text())
    last = (code["sessions"][-1] if "sessions" in code else code)["methods"]["median-shift"]["code"]
    assert last["target"] == "demo_method:MedianShift" and last["builtin"] is False and len(last["digest"]) == 12
    with (site / "demo_method.py").open("a") as fh:  # the plug-in's code changes: its stored runs are stale
        fh.write("\n# edited\n")
    r = _llmrca(*args, path=site, env=env)
    assert r.returncode == 0 and "2 run now" in r.stdout + r.stderr, r.stdout + r.stderr
    # the report rebuilt without the plug-in loaded keeps the paper name its evaluation recorded
    r = _llmrca("report", str(tmp_path / "ev"), path=tmp_path)
    assert r.returncode == 0, r.stderr
    assert "MedianShift" in (tmp_path / "ev" / "table1.md").read_text()


def test_a_plug_in_that_replaces_a_built_in_has_another_code_version() -> None:
    from llmrca.evaluate.fingerprint import method_code_version
    from llmrca.methods import registry

    shipped = registry.REGISTRY["nsigma"]
    before = method_code_version("nsigma")
    assert registry.is_builtin("nsigma") and registry.method_source("nsigma")["builtin"] is True
    registry.register(registry.Entry("nsigma", "llmrca.methods.statistical.baro:Baro", "statistical", display="NSigma"), replace=True)
    try:
        assert not registry.is_builtin("nsigma")
        assert method_code_version("nsigma") != before  # stored runs of the real N-Sigma are not resumed as this one's
    finally:
        registry.register(shipped, replace=True)
    assert registry.is_builtin("nsigma") and method_code_version("nsigma") == before


def test_a_plug_in_row_that_cannot_be_loaded_is_unavailable_with_its_reason(tmp_path: Path) -> None:
    import pytest

    from llmrca.evaluate.runner import EvaluationError, full_config
    from llmrca.methods import registry

    registry.register(registry.Entry("tmp-typo", "no_such_module_xyz:Thing", "statistical", display="T"))
    # the row names N-Sigma's class, which declares another name: metadata would come from the wrong row
    target = registry.REGISTRY["nsigma"].target
    registry.register(registry.Entry("tmp-alias", target, "statistical", display="A", metric_set="extended"))
    try:
        rows = {m["name"]: m for m in registry.list_methods()}  # listing never raises
        assert rows["tmp-typo"]["available"] is False and "no_such_module_xyz" in rows["tmp-typo"]["reason"]
        assert rows["tmp-alias"]["available"] is False and "declares name = 'nsigma'" in rows["tmp-alias"]["reason"]
        assert rows["nsigma"]["available"] is True
        with pytest.raises(registry.MethodLoadError, match="tmp-typo"):
            registry.method_class("tmp-typo")
        with pytest.raises(EvaluationError, match=r"tmp-alias.*declares name"):
            full_config("tmp-alias", None)
    finally:
        registry.unregister("tmp-typo")
        registry.unregister("tmp-alias")
    # through the CLI: `llmrca methods` lists the row as unavailable instead of failing with a traceback
    (tmp_path / "badrow.py").write_text(
        "from llmrca.methods.registry import Entry, register\nregister(Entry('my-typo', 'myrca_typo:X', 'statistical', display='T'))\n"
    )
    r = _llmrca("methods", "--json", path=tmp_path, env={"LLMRCA_PLUGINS": "badrow"})
    assert r.returncode == 0, r.stderr
    row = {m["name"]: m for m in json.loads(r.stdout)}["my-typo"]
    assert row["available"] is False and "myrca_typo" in row["reason"]


def test_a_plug_in_that_fails_part_way_names_what_it_registered(tmp_path: Path) -> None:
    (tmp_path / "half.py").write_text(
        "from llmrca.methods.registry import Entry, register\n"
        "register(Entry('my-a', 'half:A', 'statistical', display='A'))\n"
        "register(Entry('nsigma', 'half:B', 'statistical', display='B'))\n"
        "register(Entry('my-b', 'half:C', 'statistical', display='C'))\n"
    )
    r = _llmrca("methods", "--json", path=tmp_path, env={"LLMRCA_PLUGINS": "half"})
    assert r.returncode == 0, r.stderr
    assert "failed part-way" in r.stderr and "registered before that: my-a" in r.stderr and "replace=True" in r.stderr
    assert "load_plugins()" not in r.stderr  # the warning points at the plug-in, not at llmrca's line that loads it
    names = {m["name"] for m in json.loads(r.stdout)}
    assert "my-a" in names and "my-b" not in names
    r = _llmrca("rank", str(_case(tmp_path)), "--method", "my-shift", path=tmp_path)
    assert r.returncode != 0 and "LLMRCA_PLUGINS" in r.stderr  # an unknown name says how a plug-in's method becomes known


def test_what_a_method_returns_is_checked_before_it_is_scored() -> None:
    import warnings

    import pytest

    from llmrca.methods.base import Method, RankingWarning
    from llmrca.model import Ranking

    case = make_case(root="ray-worker-2", fault="cpu", seed=3, with_logs=False, with_traces=False).without_truth()

    class Edits(Method):
        name = "tmp-edits"
        mode = "string"

        def _rank(self, c):
            r = Ranking(components=list(c.components))
            if self.mode == "string":
                r.components = r.components[0]  # edited after construction: a str, not a list
            elif self.mode == "twice":
                r.components = [r.components[0], r.components[0]]
                r.scores = [2.0, 1.0]
            elif self.mode == "unknown":
                r.components = ["not-a-component", *r.components]
                r.scores = [len(r.components) + 1.0, *r.scores]
            elif self.mode == "rising":
                r.scores = sorted(r.scores)
            return r

    with pytest.raises(TypeError, match=r"tmp-edits .* not a list of component names"):
        Edits().rank(case)
    Edits.mode = "twice"
    with pytest.raises(ValueError, match="more than once"):
        Edits().rank(case)
    for mode, said in (("unknown", "not candidates of the case: not-a-component"), ("rising", "rise down the ranking")):
        Edits.mode = mode
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            Edits().rank(case)
        assert [str(w.message) for w in caught if issubclass(w.category, RankingWarning) and said in str(w.message)], mode
    Edits.mode = "fine"
    with warnings.catch_warnings():
        warnings.simplefilter("error", RankingWarning)
        assert Edits().rank(case).components == case.components


def test_a_plug_in_config_is_checked_like_a_built_in_one() -> None:
    from dataclasses import dataclass

    import pytest

    from llmrca.config import Config, ConfigError
    from llmrca.methods.base import Method

    @dataclass
    class MyCfg(Config):
        normal_window_s: float | None = None
        abstain_below: float | None = None
        weight: float = 1.0

    class Mine(Method):
        name = "tmp-mine"
        config_cls = MyCfg

    for bad in ({"abstain_below": float("nan")}, {"normal_window_s": -3.0}, {"weight": float("nan")}):
        with pytest.raises(ConfigError):
            Mine(bad)
    assert Mine({"normal_window_s": 60.0}).config.normal_window_s == 60.0


def test_findings_count_only_the_papers_baselines() -> None:
    import pandas as pd

    from llmrca.report.findings import findings, findings_lines

    rows = []
    for i in range(4):  # baro blames the gateway; a plug-in blames another worker in every case
        rows.append({"method": "baro", "case": f"c{i}", "fault": "gpu", "target": "ray-worker-1", "top1": "nginx-gateway", "hit1": False, "ac@1": 0.0})
        rows.append({"method": "my-shift", "case": f"c{i}", "fault": "gpu", "target": "ray-worker-1", "top1": "ray-worker-2", "hit1": False, "ac@1": 0.0})
    f = findings(pd.DataFrame(rows))
    assert set(f.top_blamed) == {"baro"} and set(f.gpu_ac1) == {"baro"} and f.not_baselines == ["my-shift"]
    assert f.blame_share == {"gateway": 1.0}
    assert any("Not counted as baselines" in line and "my-shift" in line for line in findings_lines(f))
