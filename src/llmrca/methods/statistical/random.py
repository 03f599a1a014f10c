"""The random baseline: a seeded random permutation of the candidates."""

from __future__ import annotations

import zlib
from dataclasses import dataclass

import numpy as np

from llmrca.config import Config
from llmrca.methods.base import Method
from llmrca.model import Case, Ranking


@dataclass
class RandomConfig(Config):
    seed: int = 0


def case_fingerprint(case: Case) -> int:
    """A stable 32-bit fingerprint of what a method sees of a case, whatever the order of its columns (the same data
    with its columns in another order is the same case)."""
    h = zlib.crc32("\0".join(sorted(case.components)).encode())
    h = zlib.crc32(repr(float(case.inject_time)).encode(), h)
    num = case.metrics.select_dtypes("number")
    values = np.ascontiguousarray(num[sorted(num.columns, key=str)].to_numpy(dtype=float))
    return zlib.crc32(values.tobytes(), h)


class RandomRank(Method):
    """Uniformly random ranking of the case's components (AC@1 = 1/n in expectation).

    The seed is mixed with a fingerprint of the case's data (components,
    injection time and metric values) so that every case gets its own
    permutation while the same seed and case always give the same answer.
    (The case name cannot serve: methods see a blinded case.)
    """

    name = "random"
    config_cls = RandomConfig

    def _rank(self, case: Case) -> Ranking:
        comps = sorted(case.components)  # a permutation of the names, not of the order the columns came in
        rng = np.random.default_rng([self.config.seed, case_fingerprint(case)])
        order = rng.permutation(len(comps))
        return Ranking(components=[comps[i] for i in order], scores=[float(len(comps) - k) for k in range(len(comps))])
