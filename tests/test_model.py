from __future__ import annotations

import numpy as np
import pytest

from llmrca.model import CaseValidationError, Ranking
from llmrca.synthetic import make_case


def test_synthetic_case_is_valid_and_truth_is_stripped() -> None:
    c = make_case(seed=1)
    c.validate()
    blind = c.without_truth()
    assert blind.root_causes == frozenset() and blind.fault is None
    assert "ray-worker-2" in blind.components


def test_component_rank_from_metric_rank_keeps_first_occurrence() -> None:
    r = Ranking.from_metric_scores({"a_cpu": 1.0, "b_mem": 3.0, "a_mem": 2.0, "c_x": np.nan}, candidates=["a", "b", "c", "d"])
    assert r.components == ["b", "a", "c", "d"]
    assert r.metrics[0] == ("b_mem", 3.0)


def test_injection_outside_data_is_reported() -> None:
    c = make_case(seed=1)
    c.inject_time = float(c.metrics["time"].iloc[-1] + 100)
    with pytest.raises(CaseValidationError, match="outside the data"):
        c.validate()


def test_dataset_opened_by_relative_path_loads_its_cases(tmp_path, monkeypatch) -> None:
    from llmrca.dataset import Dataset

    Dataset.write([make_case(seed=s) for s in range(2)], tmp_path / "ds")
    monkeypatch.chdir(tmp_path)
    ds = Dataset("ds")
    loaded = [c for _, c in ds.iter_cases()]
    assert len(loaded) == 2 and all(not isinstance(c, Exception) for c in loaded)
    assert ds.case_id(ds.case_dirs()[0]) == "ray-worker-2_cpu/1"


def test_anomalous_stops_at_the_fault_end_only_when_the_case_knows_it() -> None:
    import dataclasses

    from llmrca.methods.common.windows import split_frame
    from llmrca.model import FaultRecord

    case = make_case(root="ray-worker-1", fault="cpu", seed=1, n_normal=20, n_anomal=12, step_s=5.0)
    t0 = case.inject_time
    ended = dataclasses.replace(case, fault=FaultRecord("cpu", "ray-worker-1", start=t0, end=t0 + 30.0))
    rows = ended.anomalous()
    assert len(rows) == 6 and rows["time"].min() == t0 and rows["time"].max() == t0 + 25.0  # 5 s grid, end excluded
    assert len(ended.without_truth().anomalous()) == 12  # no truth, no end: every row from the injection on
    # the methods' split never reads the fault end
    normal, anomal = split_frame(ended.metrics, t0)
    assert (len(normal), len(anomal)) == (20, 12)


def test_non_finite_scores_are_stored_as_null_and_read_back() -> None:
    import json

    from llmrca.model import Ranking

    r = Ranking.from_metric_scores({"a_cpu": 2.0, "b_cpu": float("nan")}, candidates=["a", "b", "c"])
    d = r.to_dict()
    text = json.dumps(d, allow_nan=False)  # raises on NaN / Infinity
    assert d["scores"] == [2.0, None, None]
    back = Ranking.from_dict(json.loads(text))
    assert back.components == ["a", "b", "c"] and back.scores[0] == 2.0 and back.scores[1] == float("-inf")
