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
