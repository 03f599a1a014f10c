"""RCAEval 1.8.1's N-Sigma / BARO conventions (the ``reference_mode="rcaeval"`` of nsigma, baro and mm-baro)."""

from __future__ import annotations

import numpy as np
import pytest

from llmrca.methods.common.scaling import rcaeval_kept, rcaeval_max, rcaeval_scores
from llmrca.methods.registry import get_method
from llmrca.synthetic import make_case


def test_a_series_flat_before_the_fault_is_never_scored():
    normal = np.column_stack([np.zeros(20), np.arange(20.0) % 3])
    anomal = np.column_stack([np.full(5, 50.0), np.array([1.0, 2.0, 9.0, 1.0, 0.0])])
    s = rcaeval_scores(normal, anomal, robust=False)
    assert np.isnan(s[0])  # constant in the normal window: dropped, however much it moves
    assert s[1] == pytest.approx((9.0 - np.mean(normal[:, 1])) / np.std(normal[:, 1]))
    # flat in the anomalous window: dropped too
    assert not rcaeval_kept(normal[:, 1:], np.full((5, 1), 2.0))[0]


def test_the_score_is_the_signed_maximum_and_a_leading_nan_poisons_it():
    scaled = np.array([[-9.0, np.nan, 1.0], [-8.0, 5.0, np.nan], [-7.0, 6.0, 3.0]])
    out = rcaeval_max(scaled)
    assert out[0] == -7.0  # a fall scores low (RCAEval takes max, not max |z|)
    assert np.isnan(out[1])  # Python's max keeps a leading NaN
    assert out[2] == 3.0  # a later NaN is skipped


def test_zero_spread_is_one_as_in_scikit_learn():
    normal = np.column_stack([np.r_[np.zeros(19), 1.0], np.ones(20) * 3.0])
    normal[0, 1] = 3.5  # not constant, but median / IQR give a zero IQR
    anomal = np.column_stack([[2.0, 1.5, 2.0, 1.0], [7.0, 6.0, 7.0, 5.0]])
    s = rcaeval_scores(normal, anomal, robust=True)
    assert s[0] == pytest.approx(2.0)  # (2 - median 0) / 1
    assert s[1] == pytest.approx(4.0)  # (7 - 3) / 1


@pytest.mark.parametrize("name", ["nsigma", "baro", "mm-baro"])
def test_reference_mode_ranks_a_case_and_says_so(name):
    case = make_case(n_workers=2, n_normal=40, n_anomal=10, traces_per_step=1)
    r = get_method(name, reference_mode="rcaeval").rank(case)
    assert sorted(r.components) == sorted(case.components)
    assert (r.explanation or {}).get("reference_mode") == "rcaeval"
    with pytest.raises(ValueError, match="reference_mode"):
        get_method(name, reference_mode="pyrca").rank(case)
