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


# -- option ranges: a value every run would fail on is refused before the first -----------------------


def _outside(interval: str, opt: str) -> list[float]:
    """Values below ``interval``: one below its lower bound, and an open bound itself (a window's 0 excepted:
    it is the old spelling of the whole window, llmrca.config.WINDOW_OPTIONS)."""
    from llmrca.config import WINDOW_OPTIONS

    lo = float(interval[1:-1].split(",")[0])
    return [lo - 1, *([lo] if interval[0] == "(" and opt not in WINDOW_OPTIONS else [])]


def _method_options() -> list[tuple[str, str, str]]:
    import dataclasses
    import typing

    from llmrca.config import METHOD_OPTION_BOUNDS
    from llmrca.methods.registry import names

    out = []
    for m in names():
        try:
            cls = method_class(m)
        except ImportError:  # an extra that is not installed: its options are checked where it is
            continue
        bounds = {**METHOD_OPTION_BOUNDS, **cls.config_cls.option_bounds}
        hints = typing.get_type_hints(cls.config_cls)
        numeric = {f.name for f in dataclasses.fields(cls.config_cls) if {int, float} & set(typing.get_args(hints[f.name]) or [hints[f.name]])}
        out += [(m, f.name, bounds[f.name]) for f in dataclasses.fields(cls.config_cls) if f.name in bounds and f.name in numeric]
    return out


def test_every_bounded_option_of_every_method_refuses_a_value_below_its_range() -> None:
    """Each method's numeric option that has a range (llmrca.config.METHOD_OPTION_BOUNDS, or the class's own)
    refuses the first value below it, naming the option and the range, and accepts its default."""
    cases = _method_options()
    assert len({m for m, _, _ in cases}) >= 15 and len({o for _, o, _ in cases}) >= 25  # the table reaches the registry
    for m, opt, interval in cases:
        cls = method_class(m)
        for v in _outside(interval, opt):
            with pytest.raises(ConfigError, match=rf"option '{opt}' must be in \{interval[0]}"):
                cls.config_cls.from_dict({opt: v})
        cls.config_cls.from_dict({opt: getattr(cls.config_cls(), opt)})
    with pytest.raises(ConfigError, match="option 'q_high' is NaN"):
        method_class("baro").config_cls.from_dict({"q_high": float("nan")})


def test_counts_that_set_the_work_of_a_run_have_an_upper_limit_and_thresholds_refuse_infinity() -> None:
    """A walk of 10^12 steps asked for 7 TiB and MicroRank with 10^9 rounds never finished: every bounded option with
    a finite upper end refuses the next value above it (and accepts the end itself); no range admits infinity."""
    cases = _method_options()
    capped = [(m, o, i) for m, o, i in cases if not i.rstrip(")]").endswith("inf")]
    assert {"walk_steps", "iterations", "n_permutations", "epochs"} <= {o for _, o, _ in capped}
    for m, opt, interval in capped:
        cfg = method_class(m).config_cls
        hi = float(interval[1:-1].split(",")[1])
        above = hi + 1 if hi >= 1 else hi + 0.5
        with pytest.raises(ConfigError, match=rf"option '{opt}' must be in"):
            cfg.from_dict({opt: above})
        if interval.endswith("]") and hi >= 2:  # a count's largest value is taken (shares: q_low has its own rule)
            assert getattr(cfg.from_dict({opt: int(hi)}), opt) == hi
    for m, opt, _ in cases:
        with pytest.raises(ConfigError, match=rf"option '{opt}' must be in|\.{opt}: expected an integer, got inf"):
            method_class(m).config_cls.from_dict({opt: float("inf")})
    llm = method_class("llm-rca").config_cls
    with pytest.raises(ConfigError, match=r"option 'z_threshold' must be in \(0, inf\)"):  # a change is divided by it
        llm.from_dict({"z_threshold": 0})
    for opt in ("rel_floor", "power_tolerance", "min_strength", "abstain_below"):
        with pytest.raises(ConfigError, match=rf"option '{opt}' must be in \[0"):
            llm.from_dict({opt: -0.5})


def test_q_low_must_be_below_q_high_and_microrca_alpha_is_a_weight() -> None:
    baro = method_class("baro").config_cls
    with pytest.raises(ConfigError, match=r"'q_low' \(0.8\) must be below 'q_high' \(0.75\)"):
        baro.from_dict({"q_low": 0.8})
    assert baro.from_dict({"q_low": 0.1, "q_high": 0.9}).q_high == 0.9
    # MicroRCA's α weighs anomalous edges: 0 and 1 are weights, though no significance levels
    assert method_class("microrca").config_cls.from_dict({"alpha": 1.0}).alpha == 1.0
    with pytest.raises(ConfigError, match=r"'alpha' must be in \(0, 1\)"):
        method_class("e-diagnosis").config_cls.from_dict({"alpha": 1.0})


def test_evaluate_refuses_an_out_of_range_option_before_any_run(tmp_path) -> None:
    """`--set baro.hazard_lambda=0` made every BOCPD run fail with a ZeroDivisionError and evaluate exit 0;
    it is a usage error now, with no output folder, and rank says the same."""
    from typer.testing import CliRunner

    from llmrca.cli import app
    from llmrca.dataset.io import write_case
    from llmrca.synthetic import make_case

    case = write_case(make_case(root="ray-worker-1", fault="cpu", seed=0, with_logs=False, with_traces=False), tmp_path / "ds" / "ray-worker-1_cpu" / "1")
    r = CliRunner().invoke(app, ["evaluate", str(tmp_path / "ds"), "--methods", "baro,nsigma", "--out", str(tmp_path / "ev"),
                                 "--set", "baro.hazard_lambda=0", "--set", "baro.detect_change_point=true", "-q"], terminal_width=400)
    assert r.exit_code == 2 and "option 'hazard_lambda' must be in (1, inf), got 0" in r.output, r.output
    assert not (tmp_path / "ev").exists()
    r = CliRunner().invoke(app, ["rank", str(case), "-m", "baro", "--set", "hazard_lambda=0.5", "-q"], terminal_width=400)
    assert r.exit_code == 2 and "option 'hazard_lambda' must be in (1, inf), got 0.5" in r.output, r.output


def test_every_text_option_with_choices_refuses_another_value_and_null_lists_and_nan_are_refused() -> None:
    """Text options that take one of a few (baro.zero_spread, circa.graph, *.anomaly_stat, ...) refuse another
    value up front, naming the choices; null where the option has no None, a list for one value, and NaN are
    refused too (each used to pass and fail every run with a TypeError, or abstain on NaN)."""
    import dataclasses

    from llmrca.config import METHOD_OPTION_CHOICES
    from llmrca.methods.common.scaling import ZERO_SPREAD_CHOICES
    from llmrca.methods.graph.discovery import GRANGER_TESTS
    from llmrca.methods.registry import names
    from llmrca.methods.trace._spectrum import FORMULAS

    assert (METHOD_OPTION_CHOICES["spectrum"], METHOD_OPTION_CHOICES["granger_test"], METHOD_OPTION_CHOICES["zero_spread"]) == (
        tuple(FORMULAS), tuple(GRANGER_TESTS), tuple(ZERO_SPREAD_CHOICES))
    checked = 0
    for m in names():
        try:
            cls = method_class(m).config_cls
        except ImportError:
            continue
        default = cls()
        choices = {**METHOD_OPTION_CHOICES, **cls.option_choices}
        for f in dataclasses.fields(cls):
            if f.name in choices and isinstance(getattr(default, f.name), str):
                with pytest.raises(ConfigError, match=rf"option '{f.name}' must be one of {choices[f.name][0]}"):
                    cls.from_dict({f.name: "abc"})
                for ok in choices[f.name]:
                    assert getattr(cls.from_dict({f.name: ok}), f.name) == ok
                checked += 1
    assert checked >= 15
    baro = method_class("baro").config_cls
    with pytest.raises(ConfigError, match=r"BaroConfig.q_low: null is not a value of this option \(expected a number\)"):
        baro.from_dict({"q_low": None})
    import datetime

    with pytest.raises(ConfigError, match=r"BaroConfig.q_low: expected a number, got date datetime.date\(2001, 1, 1\)"):
        baro.from_dict({"q_low": datetime.date(2001, 1, 1)})  # YAML reads 2001-01-01 as a date
    with pytest.raises(ConfigError, match=r"BaroConfig.detect_change_point: expected true/false, got bytes"):
        baro.from_dict({"detect_change_point": b"\x00"})  # !!binary
    with pytest.raises(ConfigError, match=r"expected an integer, not a list: got \[1, 2\]"):
        method_class("random").config_cls.from_dict({"seed": [1, 2]})
    assert baro.from_dict({"abstain_below": None}).abstain_below is None  # an option whose type has None keeps it
    with pytest.raises(ConfigError, match="option 'abstain_below' is NaN"):
        method_class("nsigma").config_cls.from_dict({"abstain_below": float("nan")})
    with pytest.raises(ConfigError, match=r"must be in \(0, inf\), got -5.0; null \(or the old 0\) means the whole window"):
        method_class("nsigma").config_cls.from_dict({"normal_window_s": -5})
