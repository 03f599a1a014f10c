"""One conformance test over the whole registry: every method honours the interface."""

from __future__ import annotations

import json

import pytest

from llmrca.methods.registry import REGISTRY, available, get_method, method_class
from llmrca.model import Ranking
from llmrca.synthetic import make_case

NAMES = list(REGISTRY)


def _method_or_skip(name: str):
    ok, why = available(name)
    if not ok:
        pytest.skip(f"{name} unavailable here: {why}")
    return get_method(name)


@pytest.fixture(scope="module")
def case():
    return make_case(root="ray-worker-1", fault="cpu", seed=7).without_truth()


@pytest.mark.parametrize("name", NAMES)
def test_config_round_trip(name: str) -> None:
    cls = method_class(name) if available(name)[0] else pytest.skip("unavailable")
    cfg = cls.config_cls()
    assert cls.config_cls.from_dict(cfg.to_dict()) == cfg
    assert cls.config_cls.from_yaml(cfg.to_yaml()) == cfg
    with pytest.raises(ValueError, match="unknown option"):
        cls.config_cls.from_dict({**cfg.to_dict(), "no_such_option_xyz": 1})


@pytest.mark.parametrize("name", NAMES)
def test_rank_contract(name: str, case) -> None:
    m = _method_or_skip(name)
    assert m.name == name
    r1 = m.rank(case)
    assert isinstance(r1, Ranking)
    cands = set(case.components)
    assert r1.components, "empty ranking"
    assert set(r1.components) <= cands, f"ranked non-candidates {set(r1.components) - cands}"
    assert len(r1.components) == len(set(r1.components))
    json.dumps(r1.to_dict())
    json.dumps(m.describe())
    assert Ranking.from_dict(json.loads(json.dumps(r1.to_dict()))).components == r1.components
    if m.tags.deterministic:
        r2 = get_method(name).rank(case)
        assert r2.components == r1.components, "same config, same case, different ranking"
