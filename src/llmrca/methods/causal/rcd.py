"""RCD: root causes as the children of an F-node, found by a localized, hierarchical Ψ-PC.

Ikram, A., Chakraborty, S., Mitra, S., Saini, S., Bagchi, S., Kocaoglu, M.
"Root Cause Analysis of Failures in Microservices through Causal Discovery."
NeurIPS 2022.

The failure is modelled as an intervention; an F-node (0 = normal window,
1 = anomalous window) is appended to the discretized metrics and the
variables that stay dependent on it given every tested conditioning set are
its children, the root-cause candidates (Ψ-PC). Only the F-node's
neighbourhood is learned (the paper's *localized* search), and the variables
are processed hierarchically: random chunks of ``gamma`` variables each give
their F-node children (phase 1, repeated until at most ``gamma`` remain or
nothing more is removed), then one Ψ-PC over the survivors orders them
(phase 2). Each level tries increasing significance levels until a chunk
yields at least one child, as the paper's implementation does.

The conditional-independence tests are causal-learn's chi-square (or
G-square) tests (:class:`causallearn.utils.cit.CIT`), called directly: no
patched causal-learn is needed (RCAEval's copy needs one and fails on the
stock package). Discretization: scikit-learn's ``KBinsDiscretizer``
(k-means, ``bins`` bins) over both windows. Chunking is seeded by ``seed``.

Ranking: the phase-2 order (strongest dependence on the F-node, i.e. lowest
p-value, first), then the remaining metrics by their smallest F-node p-value.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from itertools import combinations
from typing import ClassVar

import numpy as np
import pandas as pd

from llmrca.config import Config
from llmrca.methods.base import Method
from llmrca.methods.causal._data import windows
from llmrca.model import Case, Ranking


@dataclass
class RcdConfig(Config):
    #: γ is RCD's number of localised chunks (an integer; at least one)
    option_bounds: ClassVar[dict[str, str]] = {"gamma": "[1, inf)"}

    bins: int = 5
    gamma: int = 5
    #: first alpha of a chunk (phase 1) and of the final run (phase 2); both grow by alpha_step up to 1.
    chunk_alpha: float = 0.01
    final_alpha: float = 0.001
    alpha_step: float = 0.1
    #: largest conditioning set in the F-node tests (bounds the cost).
    max_cond: int = 3
    ci_test: str = "chisq"
    seed: int = 0
    #: give up (DiscoveryTimeout, a TimeoutError) after this many seconds.
    time_budget_s: float = 60.0


class Rcd(Method):
    """RCD (Ikram et al., NeurIPS 2022): localized hierarchical Ψ-PC with an F-node."""

    name = "rcd"
    config_cls = RcdConfig

    def _rank(self, case: Case) -> Ranking:
        cfg: RcdConfig = self.config  # type: ignore[assignment]
        if cfg.ci_test not in {"chisq", "gsq"}:
            raise ValueError(f"rcd: ci_test must be 'chisq' or 'gsq', got {cfg.ci_test!r}")
        if cfg.gamma < 1 or cfg.bins < 2:
            raise ValueError(f"rcd: need gamma >= 1 and bins >= 2 (got gamma={cfg.gamma}, bins={cfg.bins})")
        w = windows(case, min_normal=3, what="rcd")
        if cfg.bins > len(w.frame):  # k-means cannot make more bins than there are samples
            raise ValueError(f"rcd: bins={cfg.bins} is more than the {len(w.frame)} samples of the case's windows; give at most {len(w.frame)}")
        disc = _discretize(w.frame, cfg.bins)
        f = np.r_[np.zeros(w.n_normal, dtype=int), np.ones(len(disc) - w.n_normal, dtype=int)]
        search = _FNodeSearch(disc, f, cfg)
        rng = np.random.default_rng(cfg.seed)
        survivors = list(disc.columns)
        levels = 0
        while True:  # phase 1
            perm = [survivors[i] for i in rng.permutation(len(survivors))]
            chunks = [perm[i : i + cfg.gamma] for i in range(0, len(perm), cfg.gamma)]
            nxt: list[str] = []
            for chunk in chunks:
                nxt += search.children(chunk, cfg.chunk_alpha, min_found=1)
            levels += 1
            if len(nxt) <= cfg.gamma or len(nxt) == len(survivors):
                survivors = nxt
                break
            survivors = nxt
        ordered = search.children(survivors, cfg.final_alpha, min_found=len(survivors)) if survivors else []
        rest = sorted((c for c in disc.columns if c not in ordered), key=lambda c: search.min_p.get(c, 1.0))
        n = len(disc.columns)
        scores = [(c, float(n - i)) for i, c in enumerate(ordered + rest)]
        expl = {"root_cause_candidates": ordered, "levels": levels, "ci_tests": search.tests, "ci_test": cfg.ci_test}
        return Ranking.from_metric_scores(scores, candidates=case.components, explanation=expl)


def _discretize(frame: pd.DataFrame, bins: int) -> pd.DataFrame:
    import warnings

    from sklearn.preprocessing import KBinsDiscretizer

    with warnings.catch_warnings():
        # columns with fewer distinct values than bins get fewer bins; that is intended
        warnings.simplefilter("ignore")
        out = KBinsDiscretizer(n_bins=bins, encode="ordinal", strategy="kmeans").fit_transform(frame.to_numpy())
    return pd.DataFrame(out.astype(int), columns=frame.columns)


class _FNodeSearch:
    """The F-node's adjacency search of PC (localized Ψ-PC) on one variable set."""

    def __init__(self, disc: pd.DataFrame, f: np.ndarray, cfg: RcdConfig) -> None:
        from causallearn.utils.cit import CIT

        self.cols = list(disc.columns)
        self.index = {c: i for i, c in enumerate(self.cols)}
        self.fidx = len(self.cols)
        self.cit = CIT(np.column_stack([disc.to_numpy(), f]), cfg.ci_test)
        self.cfg = cfg
        self.min_p: dict[str, float] = {}
        self.tests = 0
        self.deadline = time.monotonic() + cfg.time_budget_s

    def _p(self, x: str, cond: tuple[str, ...]) -> float:
        if time.monotonic() > self.deadline:
            from llmrca.methods.graph.discovery import DiscoveryTimeout

            raise DiscoveryTimeout(f"rcd: exceeded its budget of {self.cfg.time_budget_s} s after {self.tests} CI tests; raise time_budget_s or lower max_cond")
        self.tests += 1
        p = float(self.cit(self.index[x], self.fidx, [self.index[c] for c in cond]))
        self.min_p[x] = min(self.min_p.get(x, 1.0), p)
        return p

    def _adjacent(self, variables: list[str], alpha: float) -> dict[str, float]:
        """Variables still adjacent to F at level alpha, with their largest p-value."""
        adj = list(variables)
        pmax = dict.fromkeys(adj, 0.0)
        for depth in range(self.cfg.max_cond + 1):
            snapshot = list(adj)  # order-independent (PC-stable) removal within a depth
            removed = []
            for x in snapshot:
                others = [v for v in snapshot if v != x]
                if len(others) < depth:
                    continue
                for cond in combinations(others, depth):
                    p = self._p(x, cond)
                    pmax[x] = max(pmax[x], p)
                    if p > alpha:
                        removed.append(x)
                        break
            adj = [v for v in adj if v not in removed]
            if len(adj) - 1 < depth + 1:
                break
        return {x: pmax[x] for x in adj}

    def children(self, variables: list[str], alpha0: float, *, min_found: int) -> list[str]:
        """F-node children, lowest p first, raising alpha until ``min_found`` are found (or alpha reaches 1)."""
        found: list[str] = []
        for alpha in np.arange(alpha0, 1.0, self.cfg.alpha_step):
            adj = self._adjacent(variables, float(alpha))
            new = sorted((x for x in adj if x not in found), key=lambda x: (adj[x], self.index[x]))
            found += new
            if len(found) >= min_found:
                break
        return found
