"""The random baseline: a seeded random permutation of the candidates."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from llmrca.config import Config
from llmrca.methods.base import Method, Tags
from llmrca.model import Case, Ranking


@dataclass
class RandomConfig(Config):
    seed: int = 0


class RandomRank(Method):
    """Uniformly random ranking of the case's components (AC@1 = 1/n in expectation).

    The seed is mixed with the case's component list so that every case gets
    its own permutation while the same seed always gives the same answer.
    """

    name = "random"
    config_cls = RandomConfig
    tags = Tags(family="statistical")

    def _rank(self, case: Case) -> Ranking:
        comps = list(case.components)
        salt = sum(ord(ch) for ch in "".join(comps)) + int(case.inject_time)
        rng = np.random.default_rng([self.config.seed, salt])
        order = rng.permutation(len(comps))
        return Ranking(components=[comps[i] for i in order], scores=[float(len(comps) - k) for k in range(len(comps))])
