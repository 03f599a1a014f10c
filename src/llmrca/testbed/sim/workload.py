"""The open-loop workload: arrival times and prompt / output lengths.

Open loop (as the paper's Locust setup at a constant 5 QPS): arrivals do not
wait for responses, so a slow replica builds a queue instead of slowing the
load.  Lengths are lognormal around the configured means (a Q&A chat mix);
outputs are exact (``ignore_eos``).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from llmrca.testbed.sim.config import SimConfig


@dataclass
class Workload:
    """The requests of a run: arrival times (epoch s, increasing) and token counts, arrays of shape ``(N,)``."""
    arrival: np.ndarray  # epoch s, increasing
    prompt: np.ndarray  # prompt tokens (float64 for vector math)
    output: np.ndarray  # output tokens, >= 1

    def __len__(self) -> int:
        return int(self.arrival.size)


def _lognormal(rng: np.random.Generator, mean: float, cv: float, n: int, lo: float, hi: float) -> np.ndarray:
    sigma = np.sqrt(np.log1p(cv * cv))
    mu = np.log(mean) - sigma * sigma / 2.0
    return np.clip(np.rint(rng.lognormal(mu, sigma, n)), lo, hi)


def make_workload(cfg: SimConfig, t_start: float, t_end: float, rng: np.random.Generator) -> Workload:
    """Requests arriving in ``[t_start, t_end)``."""
    span = t_end - t_start
    if cfg.arrivals == "poisson":
        n_max = int(cfg.qps * span + 10 * np.sqrt(cfg.qps * span) + 10)
        gaps = rng.exponential(1.0 / cfg.qps, n_max)
        t = t_start + np.cumsum(gaps)
        t = t[t < t_end]
    else:
        # constant rate; a random phase so that cases do not share arrival instants
        t = t_start + (rng.random() + np.arange(int(np.ceil(cfg.qps * span)))) / cfg.qps
        t = t[t < t_end]
    n = t.size
    prompt = _lognormal(rng, cfg.prompt_tokens_mean, cfg.length_cv, n, 8, 8 * cfg.prompt_tokens_mean)
    output = _lognormal(rng, cfg.output_tokens_mean, cfg.length_cv, n, 1, 8 * cfg.output_tokens_mean)
    return Workload(arrival=t, prompt=prompt.astype(np.float64), output=output.astype(np.float64))
