"""CausalRCA: DAG-GNN structure learning, then PageRank on the learned graph.

Xin, R., Chen, P., Zhao, Z. "CausalRCA: Causal inference based precise
fine-grained root cause localization for microservice applications."
Journal of Systems and Software 203 (2023), 111724.

The structure learner is DAG-GNN (Yu, Chen, Gao, Yu, "DAG-GNN: DAG Structure
Learning with Graph Neural Networks", ICML 2019): a variational autoencoder
whose encoder maps the data through ``(I - Aᵀ)`` and whose decoder inverts
it, trained with the evidence lower bound plus the acyclicity constraint
``h(A) = tr[(I + A∘A/d)^d] - d`` handled by an augmented Lagrangian. Edges with
``|A_ij| >= graph_threshold`` form the graph; PageRank on the reversed,
weighted graph (effect -> cause) scores the metrics (CausalRCA Sec. 3).

Budget: the paper trains 500 epochs per augmented-Lagrangian step, up to 100
steps (``paper_budget=True``); the default is a smaller budget (``epochs``
per step, ``max_outer`` steps) so a case takes seconds. Unlike RCAEval's
copy, one step trains once and then raises the penalty (its inner loop that
retrains until the penalty reaches 1e20 is what makes it take minutes). Seeded with ``torch.manual_seed``.
Needs torch: ``pip install "llmrca[torch]"``.

Data: each metric standardised (``normalize="zscore"``); RCAEval divides by
the column maximum instead (``normalize="max"``).
An empty learned graph is an error (there is nothing to rank), not a
column-order answer.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar

import networkx as nx
import numpy as np

from llmrca.config import Config
from llmrca.errors import require
from llmrca.methods.base import Method
from llmrca.methods.causal._data import windows
from llmrca.model import Case, Ranking


@dataclass
class CausalRcaConfig(Config):
    option_choices: ClassVar[dict[str, tuple[str, ...]]] = {"normalize": ("zscore", "max")}
    epochs: int = 50
    max_outer: int = 4
    #: the paper's budget: 500 epochs per step, 100 augmented-Lagrangian steps (overrides the two above).
    paper_budget: bool = False
    lr: float = 1e-2
    hidden: int = 64
    #: edge threshold on |A|; the paper's 0.3 leaves the graph empty at the default budget on short windows.
    graph_threshold: float = 0.1
    l1: float = 0.0
    damping: float = 0.85
    #: "zscore" (default) or "max" (divide by the column maximum, as RCAEval's copy does; on
    #: metrics that vary by a few percent around a large mean it leaves DAG-GNN nothing to learn).
    normalize: str = "zscore"
    seed: int = 0


class CausalRca(Method):
    """CausalRCA (Xin et al., JSS 2023): DAG-GNN + PageRank."""

    @classmethod
    def test_configs(cls) -> list[dict[str, Any]]:
        """A short training budget: the conformance checks test the interface, not the fit."""
        return [{"epochs": 10, "max_outer": 2}]

    name = "causalrca"
    config_cls = CausalRcaConfig

    def _rank(self, case: Case) -> Ranking:
        cfg: CausalRcaConfig = self.config  # type: ignore[assignment]
        torch = require("torch", "torch", what="method 'causalrca'")
        w = windows(case, min_normal=3, what="causalrca")
        cols = w.columns
        x = w.frame.to_numpy()
        if cfg.normalize == "zscore":
            x = (x - x.mean(axis=0)) / x.std(axis=0)
        elif cfg.normalize == "max":
            x = x / np.abs(x).max(axis=0)
        else:
            raise ValueError(f"causalrca: normalize must be 'zscore' or 'max', got {cfg.normalize!r}")
        epochs, outer = (500, 100) if cfg.paper_budget else (cfg.epochs, cfg.max_outer)
        threads = torch.get_num_threads()
        # one thread: the model is tiny, and intra-op threads spin-wait badly on a busy machine
        torch.set_num_threads(1)
        try:
            a = _dag_gnn(torch, x, epochs=epochs, max_outer=outer, lr=cfg.lr, hidden=cfg.hidden, l1=cfg.l1, seed=cfg.seed)
        finally:
            torch.set_num_threads(threads)
        a[np.abs(a) < cfg.graph_threshold] = 0.0
        np.fill_diagonal(a, 0.0)
        g = nx.DiGraph()
        g.add_nodes_from(cols)
        for i, j in zip(*np.nonzero(a), strict=True):
            g.add_edge(cols[j], cols[i], weight=float(abs(a[i, j])))  # A[i, j]: i -> j; walk from effect to cause
        if g.number_of_edges() == 0:
            raise RuntimeError(
                f"causalrca: DAG-GNN learned no edge with |weight| >= {cfg.graph_threshold} on {case.label}; "
                "raise epochs / max_outer (or paper_budget=true) or lower graph_threshold"
            )
        pr = nx.pagerank(g, alpha=cfg.damping, weight="weight")
        scores = [(c, float(pr[c])) for c in cols]
        expl = {"edges": g.number_of_edges(), "epochs": epochs, "max_outer": outer}
        return Ranking.from_metric_scores(scores, candidates=case.components, explanation=expl)


def _dag_gnn(torch, x: np.ndarray, *, epochs: int, max_outer: int, lr: float, hidden: int, l1: float, seed: int) -> np.ndarray:
    """Weighted adjacency A (A[i, j] != 0: i -> j) learned by DAG-GNN on ``x`` (n x d)."""
    torch.manual_seed(seed)
    n, d = x.shape
    nn = torch.nn
    data = torch.tensor(x, dtype=torch.float64).unsqueeze(-1)  # n x d x 1
    eye = torch.eye(d, dtype=torch.float64)

    class Model(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.adj = nn.Parameter(torch.zeros(d, d, dtype=torch.float64))
            self.enc = nn.Sequential(nn.Linear(1, hidden), nn.ReLU(), nn.Linear(hidden, 1)).double()
            self.dec = nn.Sequential(nn.Linear(1, hidden), nn.ReLU(), nn.Linear(hidden, 1)).double()

        def forward(self, inp):
            a = self.adj * (1.0 - eye)  # no self-loops
            z = torch.matmul((eye - a.T), self.enc(inp))  # encoder: Z = (I - Aᵀ) f(X)
            mixed = torch.matmul(torch.linalg.inv(eye - a.T), z)  # decoder input: (I - Aᵀ)^{-1} Z
            return self.dec(mixed), z

    def h_of(a):
        m = eye + a * a / d
        return torch.trace(torch.linalg.matrix_power(m, d)) - d

    model = Model()
    opt = torch.optim.Adam(model.parameters(), lr=lr)
    lam, c, h_old = 0.0, 1.0, float("inf")
    for _ in range(max_outer):
        # one augmented-Lagrangian step: train, then tighten the acyclicity penalty if h fell too little
        for _ in range(epochs):
            opt.zero_grad()
            recon, z = model(data)
            nll = 0.5 * torch.sum((recon - data) ** 2) / n
            kl = 0.5 * torch.sum(z**2) / n
            h = h_of(model.adj)
            loss = nll + kl + lam * h + 0.5 * c * h * h + l1 * torch.sum(torch.abs(model.adj))
            loss.backward()
            opt.step()
        with torch.no_grad():
            h_new = float(h_of(model.adj))
        if h_new > 0.25 * h_old:
            c = min(c * 10.0, 1e20)
        lam += c * h_new
        h_old = h_new
        if h_new <= 1e-8:
            break
    return (model.adj * (1.0 - eye)).detach().numpy().copy()
