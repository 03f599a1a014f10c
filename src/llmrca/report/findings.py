"""The paper's three findings, computed from an evaluation (REPORT.md's "Findings" section).

The paper (*Beyond Microservices: RCA for LLM inference deployments*, §5.2–5.3,
Fig. 5, Table 1) states three things about the baselines on its stack:

1. **Misattribution goes upstream** — when a baseline is wrong, it mostly blames the
   NGINX gateway or the Ray head pod, the gateway first (Fig. 5: five of six
   methods blame the gateway; PDiagnose the head).
2. **GPU throttling is invisible** — no baseline localises it from the basic
   metric set (best AC@1 0.37, Table 1).
3. **Trace methods fail** — TraceRCA and MicroRank reach AC@1 <= 0.03.

:func:`findings` measures each of them on an evaluation's scored runs; baselines
are every method but ``llm-rca`` and the data-blind Random (a chance-level
ranking neither sees a fault nor blames a component).  The paper's Fig. 5 looks at
six named methods (:data:`FIGURE5_METHODS`); their own line says what each of them
blames most, beside the paper's answer (:data:`FIGURE5_PAPER`), whenever at least
one of them ran.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from llmrca.evaluate.metrics import blame_rows
from llmrca.telemetry import GATEWAY, HEAD, OPERATOR

OURS = ("llm-rca",)
#: Methods that do not read the data: not counted as baselines in the findings.
DATA_BLIND = ("random",)
#: The six methods whose misattributions the paper's Fig. 5 shows (§5.3: "two methods for each category").
#: How :attr:`Findings.top_blamed` writes a tie between kinds (``"gateway = other worker"``).
TIE = " = "

FIGURE5_METHODS: tuple[str, ...] = ("baro", "nsigma", "mm-baro", "pdiagnose", "microrank", "tracerca")
#: What each of them blames in the paper (§5.3: five of the six "regularly assigned responsibility to the NGINX
#: Gateway"; PDiagnose "attributed failures to the Ray head Pod").
FIGURE5_PAPER: dict[str, str] = {
    "baro": "gateway", "nsigma": "gateway", "mm-baro": "gateway", "pdiagnose": "head",
    "microrank": "gateway", "tracerca": "gateway",
}  # fmt: skip


#: The paper's fault types (its campaign placed them on worker replicas only, §5.1).
PAPER_FAULTS: tuple[str, ...] = ("cpu", "memory", "network", "gpu")
#: Where a fault can be placed, in report order.
PLACEMENTS: tuple[str, ...] = ("gateway", "head", "worker", "operator")


def placement(component: str | None) -> str:
    """The role of a component: ``gateway``, ``head``, ``operator``, or ``worker`` for any other (a replica, or a
    foreign dataset's service); ``unknown`` for None."""
    if component is None or (isinstance(component, float) and component != component):
        return "unknown"
    if component == GATEWAY:
        return "gateway"
    if component == HEAD:
        return "head"
    if component == OPERATOR:
        return "operator"
    return "worker"


def _kind(component: str, target: str | None = None) -> str:
    """The kind of a wrongly blamed ``component`` relative to the true ``target``: ``gateway``, ``head``,
    ``operator``, ``other worker`` (a worker other than a worker target, or any worker when the target is not
    known) or ``worker`` (a worker blamed for a fault placed on the gateway, head or operator)."""
    role = placement(component)
    if role != "worker":
        return role
    return "worker" if placement(target) in ("gateway", "head", "operator") else "other worker"


def with_targets(scored: pd.DataFrame, records: list[dict[str, Any]]) -> pd.DataFrame:
    """``scored`` with a ``target`` column: each case's fault target as its records give it (None when unknown)."""
    targets = {r["case"]: r.get("target") for r in records if r.get("target")}
    return scored.assign(target=scored["case"].map(targets) if "case" in scored else None)


def paper_scope(scored: pd.DataFrame) -> tuple[pd.DataFrame, dict[str, int]]:
    """The runs comparable with the paper: faults of its four types placed on a worker (``scored`` needs a
    ``target`` column, see :func:`with_targets`; without one every run counts as placed on a worker).

    Returns the runs kept and, for the cases left out, their count per reason
    (``"<placement>"`` for a paper fault type placed elsewhere, ``"other types"``).
    """
    if scored.empty:
        return scored, {}
    roles = scored["target"].map(placement) if "target" in scored else pd.Series("worker", index=scored.index)
    roles = roles.where(roles != "unknown", "worker")
    paper_type = scored["fault"].isin(PAPER_FAULTS)
    keep = paper_type & (roles == "worker")
    left = scored.loc[~keep].assign(_why=roles[~keep].where(paper_type[~keep], "other types"))
    counts = left.drop_duplicates("case")["_why"].value_counts() if "case" in left else left["_why"].value_counts()
    return scored.loc[keep], {str(k): int(v) for k, v in counts.items()}


def scope_sentence(left_out: dict[str, int], kept_cases: int) -> str:
    """One sentence saying which cases the paper comparisons use, or '' when none was left out."""
    if not left_out:
        return ""
    n = sum(left_out.values())
    parts = [f"{v} of other fault types" if k == "other types" else f"{v} placed on the {k}" for k, v in left_out.items()]
    if set(left_out) == {"other types"}:  # nothing left out for its placement (a dataset without the paper's pods, too)
        return (f"The paper's Table 1 has four fault types (cpu, memory, network, gpu), so these comparisons use the {kept_cases} "
                f"cases of those types and leave out the other {n} faulty cases (of other fault types).")
    return (
        f"The paper placed its four fault types (cpu, memory, network, gpu) on worker replicas only, so these comparisons use "
        f"the {kept_cases} such cases and leave out the other {n} faulty cases ({', '.join(parts)})."
    )


@dataclass
class Findings:
    """The three findings' numbers (shares in 0..1, AC@1 values); ``None`` where the evaluation has no such runs."""

    blame_share: dict[str, float] = field(default_factory=dict)  # wrong top-1 of the baselines, by kind of component
    top_blamed: dict[str, str] = field(default_factory=dict)  # per baseline: the kind it blames most when wrong (a tie: "a = b")
    gpu_ac1: dict[str, float] = field(default_factory=dict)  # per baseline run on the basic set: GPU AC@1
    gpu_n: dict[str, int] = field(default_factory=dict)  # per baseline of gpu_ac1: the GPU cases it averages
    trace_ac1: dict[str, float] = field(default_factory=dict)  # per trace method: AC@1 over every fault
    baseline_runs: int = 0  # scored runs of the baselines on faulty cases
    unnamed_misses: dict[str, int] = field(default_factory=dict)  # baselines' misses with no component first: abstained / no ranking
    fallback_runs: int = 0  # baselines' runs scored on the random fallback (--as-paper): not counted as blame
    random_ran: bool = False  # Random was evaluated (and left out of the blame: it is data-blind)
    not_baselines: list[str] = field(default_factory=list)  # methods evaluated that are not the paper's (plug-ins): not counted
    #: the components blamed when wrong, by name (share of the wrong rank-1 answers), when the dataset is not the paper's
    #: stack (none of its components is the gateway, the head, the operator or a ray-worker-N): roles are then unknown
    foreign_blame: dict[str, float] = field(default_factory=dict)

    @property
    def upstream_majority(self) -> bool | None:
        """Do most baselines blame the gateway or the head most, with the gateway ahead of the head?"""
        if not self.top_blamed:
            return None
        up = sum(set(k.split(TIE)) <= {"gateway", "head"} for k in self.top_blamed.values())  # a tie counts if all of it is
        return up > len(self.top_blamed) / 2 and self.blame_share.get("gateway", 0.0) >= self.blame_share.get("head", 0.0)

    @property
    def figure5(self) -> dict[str, str]:
        """What each of Fig. 5's six methods that ran blames most when wrong (method -> kind), in the paper's order."""
        return {m: self.top_blamed[m] for m in FIGURE5_METHODS if m in self.top_blamed}

    @property
    def figure5_agree(self) -> int:
        """How many of :attr:`figure5`'s methods blame the same kind of component as in the paper."""
        return sum(FIGURE5_PAPER[m] == k for m, k in self.figure5.items())

    @property
    def max_gpu(self) -> tuple[str, float] | None:
        return max(self.gpu_ac1.items(), key=lambda kv: kv[1]) if self.gpu_ac1 else None

    def to_dict(self) -> dict[str, Any]:
        return {
            "blame_share": self.blame_share, "top_blamed": self.top_blamed, "upstream_majority": self.upstream_majority,
            "figure5_top_blamed": self.figure5, "figure5_agree": self.figure5_agree,
            "gpu_ac1_basic": self.gpu_ac1, "gpu_cases": self.gpu_n, "max_gpu_ac1": self.max_gpu, "trace_ac1": self.trace_ac1, "not_baselines": self.not_baselines,
            "foreign_blame": self.foreign_blame,
        }  # fmt: skip


def findings(scored: pd.DataFrame, metric_sets: dict[str, str] | None = None) -> Findings:
    """The findings of ``scored`` (rows: one scored run, columns method, fault, top1, hit1, ac@1 and optionally
    target; see :func:`llmrca.evaluate.results.scored_frame` and :func:`with_targets`).  A wrong component is
    classified relative to the run's true target (:func:`_kind`).  The report passes the runs of
    :func:`paper_scope` (the paper's fault types placed on workers).

    ``metric_sets``: method -> the metric set its runs used (finding 2 counts the ``basic`` ones;
    default: every baseline).  Trace methods are the registry's ``trace`` family.
    """
    from llmrca.methods.registry import REGISTRY
    from llmrca.report.fidelity import paper_table

    f = Findings()
    if scored.empty:
        return f
    # the paper's findings are about its baselines: a method of this project or a plug-in's is not one of them
    paper = set(paper_table()["table"]) - set(DATA_BLIND)
    f.not_baselines = sorted({str(m) for m in scored["method"].unique()} - paper - set(DATA_BLIND) - set(OURS))
    every = scored[scored["method"].isin(paper)]
    f.baseline_runs = len(every)
    unnamed = every[every["top1"].isna()]
    if len(unnamed):
        abst = unnamed["abstained"].astype(bool) if "abstained" in unnamed else pd.Series(False, index=unnamed.index)
        status = unnamed["status"].astype(str) if "status" in unnamed else pd.Series("failed", index=unnamed.index)
        f.unnamed_misses = {k: int(v) for k, v in (("abstained", abst.sum()), ("timeout", (~abst & (status == "timeout")).sum()),
                                                     ("no ranking", (~abst & (status != "timeout")).sum())) if v}
    # a blame is a method's own answer: rankings scored on the random fallback (--as-paper) are not counted
    own = ~every["fallback"].astype(bool) if "fallback" in every else pd.Series(True, index=every.index)
    f.fallback_runs = int((~own).sum())
    base = every[every["top1"].notna() & own]
    # what a run blames: the wrong components tied for its rank 1, each weighing 1 / the tie's size (AC@1's tie rule)
    wrong = blame_rows(base)
    wrong = wrong[wrong["blamed"] != "(no root cause)"]
    seen = {str(c) for c in scored["top1"].dropna()} | ({str(c) for c in scored["target"].dropna()} if "target" in scored else set())
    if len(wrong) and not any(c in (GATEWAY, HEAD, OPERATOR) or c.startswith("ray-worker-") for c in seen):
        shares = wrong.groupby(wrong["blamed"].astype(str))["weight"].sum()
        shares = shares / shares.sum()
        f.foreign_blame = {str(k): round(float(shares[k]), 3) for k in sorted(shares.index, key=lambda k: (-shares[k], str(k)))}
    elif len(wrong):
        tgt = wrong["target"] if "target" in wrong else pd.Series(None, index=wrong.index, dtype=object)
        kinds = pd.Series([_kind(c, t) for c, t in zip(wrong["blamed"], tgt, strict=True)], index=wrong.index)
        weights = kinds.to_frame("kind").assign(w=wrong["weight"].to_numpy(), method=wrong["method"].to_numpy())
        shares = weights.groupby("kind")["w"].sum()
        shares = shares / shares.sum()
        f.blame_share = {str(k): round(float(shares[k]), 3) for k in sorted(shares.index, key=lambda k: (-shares[k], str(k)))}
        for m, grp in weights.groupby("method", sort=False):
            n = grp.groupby("kind")["w"].sum()
            top = sorted(str(k) for k in n.index if np.isclose(n[k], n.max()))
            f.top_blamed[str(m)] = TIE.join(top)  # a tie between kinds is said as one, never broken by name
    # measured where a run produced a ranking (its own, or --as-paper's random fallback): a run that failed or timed out
    # without one says nothing of what the method can see
    ranked = scored[scored["scored_ranking"].astype(bool)] if "scored_ranking" in scored else scored
    f.random_ran = "random" in set(scored["method"])
    gpu = ranked[(ranked["fault"] == "gpu") & ranked["method"].isin(paper)]
    for m, grp in gpu.groupby("method", sort=False):
        if metric_sets is None or metric_sets.get(str(m), "basic") == "basic":
            f.gpu_ac1[str(m)] = round(float(grp["ac@1"].mean()), 3)
            f.gpu_n[str(m)] = len(grp)
    for m, grp in ranked.groupby("method", sort=False):
        e = REGISTRY.get(str(m))
        if e is not None and e.family == "trace" and str(m) in paper:
            f.trace_ac1[str(m)] = round(float(grp["ac@1"].mean()), 3)
    return f


_PHRASE = {"gateway": "the gateway", "head": "the head", "operator": "the operator", "other worker": "another worker",
           "worker": "a worker"}  # fmt: skip


def _phrase(kind: str) -> str:
    """``"gateway"`` -> "the gateway"; a tie ``"gateway = other worker"`` -> "the gateway and another worker alike"."""
    parts = kind.split(TIE)
    return _PHRASE.get(kind, kind) if len(parts) == 1 else " and ".join(_PHRASE.get(p, p) for p in parts) + " alike"


def findings_lines(f: Findings) -> list[str]:
    """Markdown bullet lines stating the findings with their numbers."""
    from llmrca.report.tables import display_name

    out: list[str] = []
    if f.foreign_blame:
        top = ", ".join(f"{k} {v:.0%}" for k, v in list(f.foreign_blame.items())[:5])
        out.append(
            "- **Misattribution goes upstream** (n/a): the dataset's components are not the paper's stack (a gateway, a head, "
            f"ray-worker replicas), so no wrong answer can be placed upstream or on another worker; the baselines' wrong rank-1 "
            f"answers name {top}{', ...' if len(f.foreign_blame) > 5 else ''} (misattribution.csv has every method's)."
        )
    elif f.blame_share:
        shares = ", ".join(f"{k} {v:.0%}" for k, v in sorted(f.blame_share.items(), key=lambda kv: (-kv[1], kv[0])))
        c = Counter(f.top_blamed.values())
        ties = {k: n for k, n in c.items() if TIE in k}
        verdict = {True: "holds", False: "does not hold", None: "n/a"}[f.upstream_majority]
        out.append(
            f"- **Misattribution goes upstream** ({verdict}: it holds when more than half of the baselines blame the gateway "
            f"or the head most, the gateway at least as often as the head): of the baselines' wrong rank-1 answers (a tie "
            f"for rank 1 shares its blame), {shares}; "
            f"the component a baseline blames most is the gateway for {c['gateway']}, the head for {c['head']}, "
            f"another worker for {c['other worker']}, "
            + (f"a worker (for a fault placed elsewhere) for {c['worker']}, " if c["worker"] else "")
            + "".join(f"{_phrase(k)} for {n}, " for k, n in sorted(ties.items()))
            + f"and the operator for {c['operator']} of {len(f.top_blamed)} baselines"
            + (" (Random left out: its answers are data-blind)." if f.random_ran else ".")
            + (f" ({f.fallback_runs} failed run(s) scored on the random ranking are not counted: the fallback blames no one.)"
               if f.fallback_runs else "")
        )
        if f.figure5:
            each = ", ".join(
                f"{display_name(m)} {_phrase(k)}" + (" (as in the paper)" if FIGURE5_PAPER[m] == k else f" (paper: {_PHRASE[FIGURE5_PAPER[m]]})")
                for m, k in f.figure5.items()
            )
            out.append(
                f"  - The paper's Fig. 5 methods ({f.figure5_agree} of {len(f.figure5)} blame what they blame in the paper): "
                f"when wrong, {each}."
            )
    elif f.baseline_runs:  # said, not left out: why there is no wrong component to look at
        said = {"abstained": "abstention(s)", "timeout": "run(s) that timed out", "no ranking": "run(s) without a ranking (failed)"}
        why = " and ".join(f"{n} {said[k]}" for k, n in f.unnamed_misses.items())
        out.append(
            "- **Misattribution goes upstream** (n/a): "
            + (f"every miss of the baselines was {why}: no component ranked first, so nothing was blamed." if why
               else "every baseline run failed and was scored on the random ranking: no method's own answer to count."
               if f.fallback_runs and not len(f.top_blamed) and f.fallback_runs >= f.baseline_runs
               else "the baselines ranked the culprit first in every case: nothing was misattributed.")
        )
    if f.max_gpu is not None:
        m, v = f.max_gpu
        verdict = "holds" if v <= 0.4 else "does not hold"
        tied = [k for k, x in f.gpu_ac1.items() if x == v]
        who = (f"every one of the {len(tied)} baselines" if len(tied) == len(f.gpu_ac1) > 1
               else display_name(m) if len(tied) == 1 else f"{len(tied)} baselines tie, e.g. {display_name(m)}")
        n = f.gpu_n.get(m)
        out.append(f"- **GPU throttling is invisible in the basic metrics** ({verdict}: it holds when every baseline's GPU AC@1 "
                   f"is <= 0.4): the best baseline GPU AC@1 is {v:.2f} ({who}"
                   + (f"; over {n} case{'s' if n != 1 else ''}" if n else "") + "; the paper's best: 0.37).")
    elif f.baseline_runs:
        out.append("- **GPU throttling is invisible in the basic metrics** (not measured): no baseline produced a ranking for a "
                   "GPU-throttling case on the basic metric set (none was scored, or every such run failed or timed out).")
    if f.trace_ac1:
        vals = ", ".join(f"{display_name(m)} {v:.2f}" for m, v in f.trace_ac1.items())
        verdict = "holds" if max(f.trace_ac1.values()) <= 0.1 else "does not hold"
        out.append(f"- **Trace methods fail** ({verdict}: it holds when every trace method's AC@1 is <= 0.1): AC@1 over all "
                   f"faults {vals} (the paper: <= 0.03).")
    elif f.baseline_runs:
        out.append("- **Trace methods fail** (not measured): no trace method (TraceRCA, MicroRank) was evaluated, or none "
                   "produced a ranking.")
    if f.not_baselines and out:
        out.append(f"- Not counted as baselines above (not methods of the paper): {', '.join(display_name(m) for m in f.not_baselines)}.")
    return out
