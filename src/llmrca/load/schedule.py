"""The request schedule of a load run: when each request arrives and how long it is.

The schedule is a pure function of its parameters and the seed, so two runs
with the same seed send the same requests at the same offsets (the server's
answers may differ, the offered load does not).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

#: Short English words that common BPE tokenizers (Llama, Mistral, GPT, Falcon)
#: encode as one token each when preceded by a space, so a prompt of N of them
#: is about N tokens (± the chat template's few tokens).
_WORDS: tuple[str, ...] = (
    "the",
    "of",
    "and",
    "to",
    "in",
    "is",
    "that",
    "for",
    "it",
    "as",
    "was",
    "with",
    "be",
    "by",
    "on",
    "not",
    "he",
    "this",
    "are",
    "or",
    "his",
    "from",
    "at",
    "which",
    "but",
    "have",
    "an",
    "had",
    "they",
    "you",
    "were",
    "their",
    "one",
    "all",
    "we",
    "can",
    "her",
    "has",
    "there",
    "been",
    "if",
    "more",
    "when",
    "will",
    "would",
    "who",
    "so",
    "no",
    "time",
    "day",
    "year",
    "work",
    "city",
    "water",
    "house",
    "world",
    "light",
    "river",
    "stone",
    "cloud",
    "green",
    "small",
    "great",
    "long",
    "old",
    "new",
    "good",
)

ARRIVALS = ("constant", "poisson")


@dataclass(frozen=True)
class Schedule:
    """Arrival offsets (s from the start) and per-request token targets."""

    offsets_s: np.ndarray
    prompt_tokens: np.ndarray
    output_tokens: np.ndarray
    seed: int

    def __len__(self) -> int:
        return len(self.offsets_s)


#: most requests one schedule holds (its arrays are drawn up front: 10^7 is ~0.3 GB)
MAX_REQUESTS = 10_000_000


def make_schedule(
    *,
    qps: float,
    duration_s: float,
    max_requests: int | None = None,
    arrival: str = "constant",
    prompt_tokens: int = 512,
    output_tokens: int = 256,
    length_spread: float = 0.0,
    seed: int = 0,
) -> Schedule:
    """Arrivals in ``[0, duration_s)`` at rate ``qps``, at most ``max_requests`` of them.

    ``constant``: one request every ``1/qps`` s starting at 0.  ``poisson``:
    exponential gaps with mean ``1/qps`` (a Poisson process).  Token targets
    are uniform in ``target·[1-spread, 1+spread]`` (integers, at least 1), so
    their mean is the target; ``length_spread=0`` gives fixed lengths.
    """
    if not (qps > 0 and math.isfinite(qps)):  # NaN compares false with everything: said, not slipped through
        raise ValueError(f"qps must be a finite number > 0, got {qps}")
    if not duration_s > 0:
        raise ValueError(f"duration_s must be > 0, got {duration_s}")
    if math.isinf(duration_s) and max_requests is None:
        raise ValueError("duration_s is infinite and max_requests is not given: the run would never end; give one of them")
    if arrival not in ARRIVALS:
        raise ValueError(f"arrival must be one of {ARRIVALS}, got {arrival!r}")
    if not 0.0 <= length_spread < 1.0:
        raise ValueError(f"length_spread must be in [0, 1), got {length_spread}")
    if max_requests is not None and max_requests < 0:
        raise ValueError(f"max_requests must be >= 0, got {max_requests}")
    rng = np.random.default_rng(seed)
    expected_f = qps * duration_s  # may be inf (duration_s inf with max_requests)
    bound = expected_f if max_requests is None else min(expected_f, float(max_requests))
    if bound > MAX_REQUESTS:
        raise ValueError(f"{bound:.3g} requests would be scheduled (qps x duration_s); at most {MAX_REQUESTS:,} per run: "
                         "lower qps or duration_s, or give max_requests")
    expected = int(np.ceil(min(expected_f, float(MAX_REQUESTS))))
    cap = expected if max_requests is None else min(expected, max_requests)
    if arrival == "constant":
        offsets = np.arange(cap, dtype=float) / qps
    else:
        # Draw generously, then cut at the duration: the count is random, as it should be.
        n = int(cap + 10 * np.sqrt(cap) + 10)  # never more draws than the requests that can be kept
        offsets = np.cumsum(rng.exponential(1.0 / qps, size=n))
        offsets = np.concatenate([[0.0], offsets[:-1]])  # first arrival at t=0, like the constant case
        offsets = offsets[offsets < duration_s]
        if max_requests is not None:
            offsets = offsets[:max_requests]
    offsets = offsets[offsets < duration_s]
    n = len(offsets)
    return Schedule(
        offsets_s=offsets,
        prompt_tokens=_lengths(rng, prompt_tokens, length_spread, n),
        output_tokens=_lengths(rng, output_tokens, length_spread, n),
        seed=seed,
    )


def _lengths(rng: np.random.Generator, target: int, spread: float, n: int) -> np.ndarray:
    if target < 1:
        raise ValueError(f"token targets must be >= 1, got {target}")
    if spread == 0.0:
        return np.full(n, int(target), dtype=int)
    lo, hi = target * (1 - spread), target * (1 + spread)
    return np.maximum(1, np.rint(rng.uniform(lo, hi, size=n))).astype(int)


def synth_prompt(n_tokens: int, seed: int) -> str:
    """A prompt of about ``n_tokens`` tokens: ``n_tokens`` one-token words, seeded.

    Each request gets different text (its own seed), so a server's prefix
    cache does not turn the load into a cache benchmark.
    """
    rng = np.random.default_rng(seed)
    idx = rng.integers(0, len(_WORDS), size=max(1, int(n_tokens)))
    return " ".join(_WORDS[i] for i in idx)
