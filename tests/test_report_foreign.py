"""The report on datasets from other tools: RE2 and RCD layouts with raw exporter names.

A quick sim campaign is rewritten into RCAEval RE2's layout (``simple_metrics.csv``
+ ``metrics.csv``; cAdvisor, Istio, vLLM v0 under Ray, new DCGM field names,
memory in MB, latency in ms, SM clock in Hz) and, for one case per fault,
into RCD's layout (``normal.csv`` + ``anomalous.csv``).  The fault-effect
figure and the REPORT.html drill-down must draw every key signal from those
columns, in the same canonical units as on our own naming.
"""

from __future__ import annotations

import re
import sys
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pandas as pd
import pytest

sys.path.insert(0, str(Path(__file__).parent / "telemetry"))
from foreign_naming import _re2_frame, re2_component, to_prometheus_re2

from llmrca.campaign import run_campaign
from llmrca.dataset.io import Dataset, read_case
from llmrca.evaluate import run_evaluation
from llmrca.report.document import _fidelity_md, write_documents
from llmrca.report.fault_effects import fault_effect_panels, key_series
from llmrca.report.fidelity import FAULTS, Fidelity


def _to_rcd(src: Path, dst: Path) -> list[str]:
    """The first case of each fault type of ``src`` in RCD's layout with RE2's names; returns the case names."""
    names = []
    seen: set[str] = set()
    ds = Dataset(src)
    for folder in ds.case_dirs():
        case = ds.load(folder)
        if case.fault.type in seen:
            continue
        seen.add(case.fault.type)
        df = _re2_frame(case.metric_sets["basic"])
        out = dst / f"{re2_component(case.fault.target)}_{case.fault.type}" / f"rcd{folder.name}"
        out.mkdir(parents=True)
        before = df["time"] < case.inject_time
        df[before].to_csv(out / "normal.csv", index=False)
        df[~before].to_csv(out / "anomalous.csv", index=False)
        names.append(f"{out.parent.name}/{out.name}")
    return names


@pytest.fixture(scope="module")
def foreign(tmp_path_factory: pytest.TempPathFactory) -> dict[str, object]:
    base = tmp_path_factory.mktemp("foreign-report")
    run_campaign(backend="sim", profile="quick", seed=5, out=base / "ours", progress=False)
    root = base / "dataset"
    to_prometheus_re2(base / "ours", root)
    rcd = _to_rcd(base / "ours", root)
    res = run_evaluation(root, ["nsigma", "baro"], base / "eval", jobs=1, progress=False)
    docs = write_documents(base / "eval")
    return {"ours": base / "ours", "root": root, "rcd": rcd, "docs": docs, "eval": res}


@pytest.mark.slow  # the module's dataset: a campaign, two rewrites, an evaluation, the report (~30 s)
def test_the_dataset_really_is_foreign(foreign: dict) -> None:
    root = foreign["root"]
    re2 = read_case(next(p for p in Dataset(root).case_dirs() if (p / "metrics.csv").is_file()))
    cols = list(re2.metric_sets["extended"].columns)
    assert any(c.endswith("_container_cpu_usage_seconds_total:rate") for c in cols)
    assert any(c.endswith("_istio_request_duration_milliseconds:p90") for c in cols)
    assert not any(c.endswith(("_cpu", "_mem", "_latency-90")) for c in cols)
    assert len(foreign["rcd"]) == 4
    assert all((root / n / "anomalous.csv").is_file() and not (root / n / "data.csv").exists() for n in foreign["rcd"])


@pytest.mark.slow  # the module's dataset: a campaign, two rewrites, an evaluation, the report (~30 s)
def test_fault_effect_panels_draw_foreign_columns_in_canonical_units(foreign: dict) -> None:
    panels = fault_effect_panels(foreign["root"])
    assert [(p.fault, p.column) for p in panels] == [(f, j) for f in ("cpu", "memory", "network", "gpu") for j in (0, 1)]
    for p in panels:
        assert p.series, f"{p.fault} panel {p.column} would say 'no data in this dataset'"
        for s in p.series:
            assert np.isfinite(s.v).sum() > 10 and np.isfinite(s.t).all()
    cols = {p.fault: [s.column.split("_", 1)[1] for s in p.series] for p in panels if p.column == 0}
    assert cols["cpu"] == ["container_cpu_usage_seconds_total:rate"]
    assert cols["memory"] == ["container_memory_working_set_mb"]
    assert cols["network"] == ["container_network_transmit_bytes_total:rate", "container_network_receive_bytes_total:rate"]
    assert cols["gpu"] == ["DCGM_FI_DEV_GPU_UTIL"]
    right = {p.fault: [s.column.split("_", 1)[1] for s in p.series] for p in panels if p.column == 1}
    assert right["cpu"] == ["istio_request_duration_milliseconds:p90"]
    assert right["gpu"] == ["DCGM_FI_DEV_POWER_USAGE", "DCGM_FI_DEV_ENFORCED_POWER_LIMIT", "ray_vllm:time_per_output_token_seconds:mean"]
    # the same case in our naming gives the same numbers (MB -> GiB, ms -> s converted through the vocabulary)
    ours = Dataset(foreign["ours"])
    for p in panels:
        if p.column:
            continue
        case = p.case
        mine = next(c for _, c in ours.iter_cases() if c.fault.type == case.fault.type and re2_component(c.fault.target) == case.fault.target and c.inject_time == case.inject_time)
        theirs_all = {s.signal.label: s.v for s in key_series(case)}
        for s in key_series(mine):
            np.testing.assert_allclose(theirs_all[s.signal.label], s.v, rtol=1e-6, err_msg=f"{case.fault.type}: {s.signal.label}")


@pytest.mark.slow  # the module's dataset: a campaign, two rewrites, an evaluation, the report (~30 s)
def test_report_html_draws_signals_for_re2_and_rcd_cases(foreign: dict) -> None:
    docs = foreign["docs"]
    assert docs.fault_effects is not None and docs.fault_effects.is_file()
    page = docs.html.read_text()
    blocks = re.findall(r'<details class="case"><summary><b>([^<]+)</b>.*?</details>', page, flags=re.S)
    bodies = re.findall(r'<details class="case">.*?</details>', page, flags=re.S)
    assert len(blocks) == len(bodies) == 12 + 4
    assert set(foreign["rcd"]) <= set(blocks)
    for name, body in zip(blocks, bodies, strict=True):
        assert "signals not shown" not in body and "no signal columns" not in body, name
        assert body.count("<svg") >= 2, name
        assert "minutes from injection</text>" in body, name
    md = docs.markdown.read_text()
    assert "fault_effects.png" in md and "Fault-effect figure:" not in md


def _fid(diffs: list[float]) -> Fidelity:
    cells = pd.DataFrame(
        [{"method": "m", "fault": f, "metric": "ac@1", "ours": 0.5 + d, "paper": 0.5, "diff": d} for f, d in zip(FAULTS, diffs, strict=True)]
    )
    table = pd.DataFrame(columns=["scope", "metric", "rho", "lo", "hi", "n"])
    return Fidelity(table=table, cells=cells, methods=["m"], n_boot=10)


def test_warning_mark_follows_the_difference_as_shown() -> None:
    md = "\n".join(_fidelity_md(SimpleNamespace(fidelity=_fid([0.4996, -0.4996, 0.4949, 0.5]))))
    row = next(line for line in md.splitlines() if line.startswith("| m |"))
    cells = [c.strip() for c in row.strip("|").split("|")[1:]]
    assert cells[0].endswith("(+0.50) ⚠")
    assert cells[1].endswith("(-0.50) ⚠")
    assert cells[2].endswith("(+0.49)")
    assert cells[3].endswith("(+0.50) ⚠")
    assert "⚠ marks a difference of 0.5 or more" in md
