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
