"""Non-default configs of the statistical / topology / trace / multi-source methods round-trip."""

from __future__ import annotations

import pytest

from llmrca.config import ConfigError
from llmrca.methods.registry import get_method, method_class

CHANGES = {
    "e-diagnosis": {"alpha": 0.01, "reference_mode": "pyrca", "seed": 3},
    "microrca": {"detector": "sigma", "threshold": 4.0, "reverse_graph": False},
    "microscope": {"k": 2.5, "rank_on": "latency"},
    "monitorrank": {"rho": 0.2, "restart": "entry", "metric": "latency"},
    "microrank": {"spectrum": "ochiai", "reference_mode": "rcaeval"},
    "tracerca": {"min_support": 0.3, "max_set_size": 1},
    "mm-baro": {"use_traces": False, "absolute": True},
    "pdiagnose": {"weight_logs": 2.0, "reference_mode": "rcaeval"},
}


@pytest.mark.parametrize("name", list(CHANGES))
def test_non_default_config_round_trips(name: str) -> None:
    cls = method_class(name)
    cfg = cls.config_cls().replace(**CHANGES[name])
    assert cls.config_cls.from_yaml(cfg.to_yaml()) == cfg
    m = get_method(name, cfg.to_dict())
    assert m.config == cfg
    assert m.describe()["config"] == cfg.to_dict()
    assert m.paper  # cites its paper
    with pytest.raises(ConfigError):
        cls.config_cls.from_dict({"not_an_option": 1})
