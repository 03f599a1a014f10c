"""The one interface every RCA method honours.

A method is built from a typed :class:`~llmrca.config.Config` and answers
``rank(case) -> Ranking``.  A method may answer "no root cause" (an empty
ranking, or ``Ranking.abstained`` with its ``confidence``: see
:func:`abstain_below`); the evaluator counts that as right on a healthy case
and as a miss on a faulty one.  The public :meth:`Method.rank` checks that the
case carries what the method needs (raising
:class:`~llmrca.errors.MethodUnavailable` otherwise) and then calls the
subclass's ``_rank``.  Methods never see the ground truth: the evaluator
strips it with :meth:`Case.without_truth` before calling ``rank``.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, replace
from typing import Any, ClassVar

import numpy as np

from llmrca.config import Config
from llmrca.errors import MethodUnavailable
from llmrca.methods.registry import Tags
from llmrca.model import Case, Ranking


class RankingWarning(UserWarning):
    """A ranking that can be scored but is not what the contract asks (see :func:`check_ranking`)."""


def check_ranking(ranking: Ranking, candidates: list[str], method: str) -> None:
    """Check what a method returned before it is scored (a plug-in may build or edit a Ranking by hand).

    Raises TypeError / ValueError (the run fails, naming the method) when the ranking cannot be read: components
    that are not a list of names, scores that are not numbers or not one per component, a component ranked
    twice.  Warns with :class:`RankingWarning` (the evaluator records it with the run) when it can be scored but
    breaks the contract: components that are not candidates of the case, NaN scores, scores that rise down the
    list (AC@k's tie rule reads the scores, most likely first).
    """
    import warnings

    comps, scores = ranking.components, ranking.scores
    if not isinstance(comps, list) or not all(isinstance(c, str) for c in comps):
        got = type(comps).__name__ if not isinstance(comps, list) else "a list holding " + ", ".join(sorted({type(c).__name__ for c in comps if not isinstance(c, str)}))
        raise TypeError(f"{method} returned a ranking whose components are {got}, not a list of component names (str)")
    if not isinstance(scores, list) or len(scores) != len(comps):
        raise ValueError(f"{method} returned {len(comps)} component(s) and {len(scores) if isinstance(scores, list) else type(scores).__name__} score(s): one score per component")
    try:
        vals = np.array([float(x) for x in scores], dtype=float)
    except (TypeError, ValueError) as e:
        raise TypeError(f"{method} returned scores that are not numbers ({e})") from e
    if len(set(comps)) != len(comps):
        dup = sorted({c for c in comps if comps.count(c) > 1})
        raise ValueError(f"{method} ranked {', '.join(dup)} more than once")
    known = set(candidates)
    if unknown := [c for c in comps if c not in known]:
        warnings.warn(f"{method} ranked {len(unknown)} component(s) that are not candidates of the case: "
                      f"{', '.join(unknown[:5])}{' …' if len(unknown) > 5 else ''} (candidates: {', '.join(candidates[:8])}"
                      f"{' …' if len(candidates) > 8 else ''})", RankingWarning, stacklevel=3)
    if np.isnan(vals).any():
        warnings.warn(f"{method} returned {int(np.isnan(vals).sum())} NaN score(s): NaN ties with every score in AC@k",
                      RankingWarning, stacklevel=3)
    ranked = vals[~np.isnan(vals)]
    fin = ranked[np.isfinite(ranked)]  # -inf: the unranked tail, +inf: a certain answer; no difference between two of them
    rises = fin.size > 1 and (np.diff(fin) > 0).any()
    if rises or (ranked.size > 1 and (np.diff(np.isposinf(ranked).astype(int)) > 0).any()) or (
            ranked.size > 1 and (np.diff(np.isneginf(ranked).astype(int)) < 0).any()):
        warnings.warn(f"{method} returned scores that rise down the ranking ({ranked[0]:g} first, {ranked.max():g} later): "
                      "components come most likely first, with non-increasing scores", RankingWarning, stacklevel=3)


class _FromRegistry:
    """Class attribute read from the method's registry row (by ``name``).

    A class that sets the attribute itself (a test or plugin method) keeps its
    own value; a class whose name is not registered gets ``default``.
    """

    def __init__(self, what: str, default: Any) -> None:
        self.what = what
        self.default = default

    def __get__(self, obj: Any, owner: type) -> Any:
        from llmrca.methods.registry import REGISTRY

        e = REGISTRY.get(getattr(owner, "name", ""))
        if e is None:
            return self.default
        return e.tags if self.what == "tags" else e.citation


def abstain_below(ranking: Ranking, confidence: float, threshold: float | None) -> Ranking:
    """``ranking`` with ``confidence`` recorded, marked "no root cause" when ``threshold`` is set and ``confidence < threshold``.

    ``confidence`` is the method's own evidence that something is wrong (e.g.
    NSigma's largest |z|), on its own scale; ``threshold`` None (the default
    of every baseline) never abstains, so the method's numbers do not change.
    A NaN confidence counts as no evidence (below any threshold).
    """
    conf = float(confidence) if np.isfinite(confidence) else float("nan")
    if threshold is not None and not (conf >= float(threshold)):
        return ranking.abstain(conf)
    return replace(ranking, confidence=conf)


def max_finite(scores: Any) -> float:
    """The largest finite value of ``scores`` (an array or list), NaN when there is none."""
    a = np.asarray(scores, dtype=float)
    a = a[np.isfinite(a)]
    return float(a.max()) if a.size else float("nan")


@dataclass
class NoConfig(Config):
    """Configuration of a method that has no options."""



def none_usable(case: Case, file: str) -> str:
    """`` usable (<why>)`` when ``file`` (logs.csv, traces.csv) is in the case but the reader could not use it (its
    ``warning: not used:`` note), else ``""``: appended to "this case has none"."""
    from llmrca.dataset.io import NOT_USED_PREFIX

    said = [n for n in (case.meta or {}).get("normalised") or [] if str(n).startswith(f"{NOT_USED_PREFIX}{file}")]
    return f" usable ({str(said[0]).removeprefix(NOT_USED_PREFIX)})" if said else ""

class Method:
    """Base class of RCA methods.

    Subclasses set ``name`` and ``config_cls`` and implement ``_rank(case)``;
    their metadata (tags, citation, paper name) is their row in
    :mod:`llmrca.methods.registry`.  A subclass may offer cheap configurations
    for the conformance checks (:meth:`test_configs`).  A method that draws random numbers takes a
    ``seed`` field in its config and uses :meth:`rng`.
    """

    name: ClassVar[str] = "method"
    config_cls: ClassVar[type[Config]] = NoConfig
    #: What the method needs and uses: its registry row's tags (a class may set its own).
    tags: ClassVar[Tags] = _FromRegistry("tags", Tags())  # type: ignore[assignment]
    #: The paper(s) it implements: its registry row's citation.
    paper: ClassVar[str] = _FromRegistry("citation", "")  # type: ignore[assignment]

    def __init_subclass__(cls, **kw: Any) -> None:
        """A method's options are checked against the option vocabulary's ranges (NaN refused) wherever the
        method is defined: a plug-in's config class too, unless it sets ``checked_ranges = False``."""
        super().__init_subclass__(**kw)
        cfg = cls.__dict__.get("config_cls")
        if isinstance(cfg, type) and issubclass(cfg, Config) and cfg.__dict__.get("checked_ranges") is None and cfg is not NoConfig:
            cfg.checked_ranges = True

    def __init__(self, config: Config | Mapping[str, Any] | None = None, **overrides: Any) -> None:
        if config is None:
            cfg = self.config_cls()
        elif isinstance(config, Mapping):
            cfg = self.config_cls.from_dict(config)
        elif isinstance(config, self.config_cls):
            cfg = config
        else:
            raise TypeError(f"{self.name}: config must be {self.config_cls.__name__} or a dict, got {type(config).__name__}")
        if overrides:
            cfg = cfg.replace(**overrides)
        self.config = cfg

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.config!r})"

    def rng(self, case: Case | None = None) -> np.random.Generator:
        """A generator seeded from the config's ``seed`` (0 if it has none)."""
        seed = getattr(self.config, "seed", 0)
        return np.random.default_rng(seed)

    def check(self, case: Case) -> None:
        """Raise MethodUnavailable if ``case`` lacks what this method needs."""
        t = self.tags
        if t.needs_logs and (case.logs is None or case.logs.empty):
            raise MethodUnavailable(f"{self.name} needs logs and this case has none{none_usable(case, 'logs.csv')}")
        if t.needs_traces and (case.traces is None or case.traces.empty):
            raise MethodUnavailable(f"{self.name} needs traces and this case has none{none_usable(case, 'traces.csv')}")
        if t.needs_topology and (case.topology is None or not case.topology.edges):
            raise MethodUnavailable(f"{self.name} needs a call graph and this case has none")

    def rank(self, case: Case) -> Ranking:
        """Rank the case's components, most likely root cause first."""
        self.check(case)
        try:
            ranking = self._rank(case)
        except (ValueError, np.linalg.LinAlgError) as e:
            if isinstance(e, MethodUnavailable):
                raise
            if str(e).startswith("Ranking:"):  # a Ranking built wrong inside _rank: name the method that built it
                raise ValueError(f"{self.name} built an invalid ranking: {str(e).removeprefix('Ranking: ')}") from e
            rows, cols = len(case.metrics), max(0, case.metrics.shape[1] - 1)
            if rows <= cols:  # fewer samples than variables: the estimate is ill-posed, whatever the library says
                raise MethodUnavailable(
                    f"{self.name} cannot estimate from {rows} rows of {cols} metric columns (fewer rows than columns): "
                    f"{type(e).__name__}: {str(e)[:200]}"
                ) from e
            raise
        if not isinstance(ranking, Ranking):
            raise TypeError(f"{self.name}._rank returned {type(ranking).__name__}, not Ranking")
        check_ranking(ranking, case.components, self.name)
        return ranking

    def _rank(self, case: Case) -> Ranking:  # pragma: no cover - abstract
        raise NotImplementedError

    @classmethod
    def test_configs(cls) -> list[dict[str, Any]]:
        """Configurations (as dicts) that make the conformance checks fast; default: the default config.

        :func:`llmrca.methods.checks.check_method` runs every check on each of
        them (like sktime's ``get_test_params``).  Override to shrink budgets,
        iterations or column caps.
        """
        return [{}]

    def describe(self) -> dict[str, Any]:
        """How this method was configured: name, config, tags (for provenance)."""
        return {"method": self.name, "config": self.config.to_dict(), "tags": self.tags.to_dict()}
