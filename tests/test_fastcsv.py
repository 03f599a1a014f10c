"""The fast CSV writer writes exactly what ``DataFrame.to_csv(index=False)`` writes."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from llmrca.dataset.fastcsv import frame_to_csv_bytes, write_csv


def _floats(rng: np.random.Generator, n: int) -> np.ndarray:
    x = rng.standard_normal(n) * 10.0 ** rng.integers(-30, 30, n)
    x[::7] = np.round(x[::7])  # integral values are written with ".0"
    x[::11] = np.nan
    x[:8] = [0.0, -0.0, np.inf, -np.inf, 1e15, 1e16, 1e-5, 0.1 + 0.2]
    return x


FRAMES = {
    "metric matrix": lambda rng: pd.DataFrame({"time": 1.7e9 + 5.0 * np.arange(40), **{f"pod-{i}_cpu": _floats(rng, 40) for i in range(30)}}),
    "logs": lambda rng: pd.DataFrame(
        {
            "time": 1.7e9 + rng.random(50),
            "container_name": pd.array(["nginx-gateway", "ray-head"] * 25, dtype="string"),
            "message": pd.array(['GET "/v1" 200', "a, b", "plain", "two\nlines", "cr\rhere", None, "", 'say ""hi""', "x", "y"] * 5, dtype="string"),
        }
    ),
    "traces": lambda rng: pd.DataFrame(
        {
            "traceID": [f"{i:016x}" for i in range(30)],
            "parentSpanID": [None if i % 3 == 0 else f"{i:x}-g" for i in range(30)],  # object column with missing values
            "duration": rng.integers(0, 10**9, 30),
            "statusCode": np.array([200, 504] * 15, dtype=np.int16),
            "ok": np.array([True, False] * 15),
        }
    ),
    "no rows": lambda rng: pd.DataFrame({"time": np.zeros(0), "a_b": np.zeros(0)}),
    "header needs quotes": lambda rng: pd.DataFrame({"time": [1.0, 2.0], 'a_"q,b': [3.0, np.nan]}),
}


@pytest.mark.parametrize("name", list(FRAMES))
def test_same_bytes_as_pandas(name: str, tmp_path) -> None:
    df = FRAMES[name](np.random.default_rng(3))
    data = frame_to_csv_bytes(df)
    assert data is not None, "this writer should handle these column kinds itself"
    df.to_csv(tmp_path / "pandas.csv", index=False)
    assert data == (tmp_path / "pandas.csv").read_bytes()
    write_csv(df, tmp_path / "fast.csv")
    assert (tmp_path / "fast.csv").read_bytes() == data


def test_float_values_round_trip_exactly(tmp_path) -> None:
    df = FRAMES["metric matrix"](np.random.default_rng(5))
    write_csv(df, tmp_path / "m.csv")
    back = pd.read_csv(tmp_path / "m.csv")
    assert list(back.columns) == list(df.columns)
    assert (back.dtypes == np.float64).all()
    np.testing.assert_array_equal(back.to_numpy(), df.to_numpy())  # NaN == NaN here, every other value bit for bit


def test_kinds_it_does_not_format_fall_back_to_pandas(tmp_path) -> None:
    df = pd.DataFrame({"when": pd.to_datetime(["2026-01-01", "2026-01-02"]), "mixed": [1, "a"]})
    assert frame_to_csv_bytes(df) is None
    write_csv(df, tmp_path / "f.csv")
    assert (tmp_path / "f.csv").read_text() == df.to_csv(index=False)
    one = pd.DataFrame({"only": ["", "x"]})  # csv quotes an empty single field: pandas writes it
    assert frame_to_csv_bytes(one) is None
