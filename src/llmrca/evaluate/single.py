"""Rank one case with one method (``llmrca rank``), blind to its ground truth."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from llmrca.dataset.io import is_warning_note, read_case, warning_lines
from llmrca.errors import MethodUnavailable
from llmrca.model import Case, CaseValidationError, Ranking, no_basic_set_problem


class MethodFailed(Exception):
    """The method raised ``original`` while ranking the case: the evaluator records such a run as failed, with the
    exception's name (:func:`llmrca.evaluate.task.execute`), not as a bad option or input."""

    def __init__(self, method: str, original: BaseException) -> None:
        super().__init__(f"{method}: {type(original).__name__}: {original}")
        self.method = method
        self.original = original


@dataclass
class RankOutcome:
    case: Case
    method: str
    config: dict[str, Any]
    metric_set: str
    ranking: Ranking
    duration_s: float
    warnings: dict[str, dict[str, Any]] = field(default_factory=dict)  # the method's library warnings (evaluate.task.warning_summary)
    #: the case as a dataset names it, from its folder (``<parent>/<name>``; evaluate's name for it), not case.json's
    folder: str | None = None

    def truth_positions(self) -> dict[str, int | None]:
        """1-based rank of each true root cause (None: not in the ranking)."""
        pos = {c: i + 1 for i, c in enumerate(self.ranking.components)}
        return {r: pos.get(r) for r in sorted(self.case.root_causes)}

    def verdict(self) -> str:
        """What the evaluator makes of this answer, in one sentence (the rules of docs/evaluate.md).

        Healthy case: abstaining is right, naming a component is a false alarm.  Faulty case: an
        abstention is a miss (AC@k = 0); otherwise where the root cause landed.  A case without
        ground truth is not scored.
        """
        r = self.ranking
        abstained = r.abstained or not r.components
        if self.case.healthy:
            head = "healthy case (nothing injected): the right answer is no root cause; "
            return head + ("the method abstained (right)" if abstained else f"the method named {r.components[0]}: a false alarm")
        if not self.case.root_causes:
            return "no ground truth for this case: the evaluator does not score it (invalid_case)"
        if abstained:
            return "faulty case: the method abstained, which scores as a miss (AC@k = 0 for every k)"
        pos = [p for p in self.truth_positions().values() if p is not None]
        first = min(pos) if pos else None
        if not first:
            return "faulty case: no root cause in the ranking: a miss"
        from llmrca.evaluate.metrics import _same, case_scores

        scores = list(r.scores) if r.scores is not None and len(r.scores) == len(r.components) else None
        if scores is not None:  # the order inside a group of equal scores is arbitrary: the evaluator counts the expectation
            lo = first - 1
            while lo > 0 and _same(scores[lo - 1], scores[first - 1]):
                lo -= 1
            hi = first
            while hi < len(scores) and _same(scores[hi], scores[first - 1]):
                hi += 1
            if hi - lo > 1:
                got = case_scores(r.components, self.case.root_causes, scores)
                return (f"faulty case: a root cause is tied with {hi - lo - 1} other(s) at #{lo + 1}-#{hi} (equal scores, "
                        f"shown in arbitrary order): AC@1 {got['ac@1']:.2f}, Avg@5 {got['avg@5']:.2f} as the evaluator counts ties")
        return f"faulty case: a root cause is ranked #{first} (AC@1 {'hit' if first == 1 else 'miss'})"

    def to_dict(self) -> dict[str, Any]:
        return {
            "case": self.folder or self.case.name,
            "method": self.method,
            "status": "ok",
            "config": self.config,
            "metric_set": self.metric_set,
            "duration_s": self.duration_s,
            "ranking": self.ranking.to_dict(),
            "root_causes": sorted(self.case.root_causes),
            "truth_positions": self.truth_positions(),
            "healthy": self.case.healthy,
            "verdict": self.verdict(),
            "warnings": self.warnings,
            # what the reader said of the case: warnings about it as it is (a short window, an unread copy) and repairs
            "case_warnings": warning_lines(self._read_notes()),
            "case_repairs": list(dict.fromkeys(n for n in self._read_notes() if not is_warning_note(n))),
        }

    def _read_notes(self) -> list[str]:
        return [str(n) for n in (self.case.meta or {}).get("normalised") or []]


def _refuse_dataset_folder(path: Path, method: str) -> None:
    """Raise ``ValueError`` when ``path`` is a folder of cases (a dataset), naming one of them and ``evaluate``."""
    from llmrca.dataset.io import find_case_dirs

    if not path.is_dir():
        return
    dirs = find_case_dirs(path)
    if not dirs or dirs == [path]:
        return
    raise ValueError(
        f"{path} is a folder of {len(dirs)} case(s), not one case: rank reads one case folder, e.g. {dirs[0]}; "
        f"to run {method} on every case, use `llmrca evaluate {path} --methods {method}`"
    )


def rank_case(
    case_dir: str | Path, method: str, config: dict[str, Any] | None = None, *, metric_set: str | None = None, sli: str | None = None
) -> RankOutcome:
    """Read ``case_dir``, strip its truth, rank it with ``method`` (same metric-set rule as the evaluator).

    ``sli``: the service-level-indicator column for methods that walk from one (default: chosen by meaning).
    """
    import time

    from llmrca.methods.registry import get_method

    _refuse_dataset_folder(Path(case_dir), method)
    from llmrca.config import ConfigError

    try:
        m = get_method(method, config or {})  # a bad option is refused before a large case is read
    except ConfigError as e:  # named as evaluate names it
        raise ConfigError(f"method {method!r}: {e}") from e
    case = read_case(case_dir)
    no_basic = no_basic_set_problem(case.name, case.metric_sets)
    if no_basic is not None:  # dataset validate and evaluate (invalid_case) say the same
        raise CaseValidationError([no_basic], where=str(case_dir))
    from llmrca.methods.common.metric_set import choose_metric_set

    try:
        wanted = choose_metric_set(case.metric_sets, m.tags.metric_set, metric_set)
    except MethodUnavailable as e:
        raise MethodUnavailable(f"{case_dir}: {e}") from None
    t0 = time.perf_counter()
    blind = case.with_metric_set(wanted).without_truth()
    from llmrca.evaluate.task import HEALTHY_NO_HARNESS_SLI, recorded_warnings, sli_problem, wants_harness_sli

    problem = None if sli is None else sli_problem(sli, blind.metrics.columns, f"the {wanted} metric set of {case_dir}", case_dir, wanted)
    if problem is not None:
        raise ValueError(problem)

    if sli is not None:
        blind.meta = {**blind.meta, "sli": sli}
    elif wants_harness_sli(m.config) and case.fault is not None and not case.fault.target:
        # rank stays blind to a faulty case's target, but may say why a healthy case has no SLI
        blind.meta = {**blind.meta, "harness_sli_unavailable": HEALTHY_NO_HARNESS_SLI}
    said: dict[str, Any] = {}
    from llmrca.errors import MissingDependency

    with recorded_warnings(into=said):  # kept in the outcome, not printed over the answer
        try:
            ranking = m.rank(blind)
        except (MethodUnavailable, MissingDependency):  # the case lacks the method's input: "unavailable", as evaluate says
            raise
        except Exception as e:  # anything else the method raised is a failed run, as evaluate records it
            raise MethodFailed(method, e) from e
    where = Path(case_dir).resolve()
    return RankOutcome(case, method, m.config.to_dict(), wanted, ranking, time.perf_counter() - t0, said.get("warnings", {}),
                       folder=f"{where.parent.name}/{where.name}")  # fmt: skip
