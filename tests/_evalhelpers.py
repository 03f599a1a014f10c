"""Test-only methods for the evaluator: one raises, one hangs, one needs a missing module."""

from __future__ import annotations

import time

from llmrca.methods.base import Method, Tags
from llmrca.model import Case, Ranking


class Raising(Method):
    name = "test-raises"
    tags = Tags(family="statistical")

    def _rank(self, case: Case) -> Ranking:
        raise RuntimeError("deliberate failure for the test")


class Hanging(Method):
    name = "test-hangs"
    tags = Tags(family="statistical")

    def _rank(self, case: Case) -> Ranking:
        time.sleep(3600)
        raise AssertionError("unreachable")


class WantsExtended(Method):
    """Prefers the extended set; reports the columns it saw in the explanation."""

    name = "test-extended"
    tags = Tags(family="llm", metric_set="extended")

    def _rank(self, case: Case) -> Ranking:
        return Ranking(components=list(case.components), explanation={"n_columns": len(case.metrics.columns)})


class Dying(Method):
    """Kills its own process (as the kernel's OOM killer would)."""

    name = "test-dies"
    tags = Tags(family="statistical")

    def _rank(self, case: Case) -> Ranking:
        import os
        import signal

        os.kill(os.getpid(), signal.SIGKILL)
        raise AssertionError("unreachable")


class Vandal(Method):
    """Overwrites its input in place (a badly behaved method) and then answers."""

    name = "test-vandal"
    tags = Tags(family="statistical")

    def _rank(self, case: Case) -> Ranking:
        cols = [c for c in case.metrics.columns if c != "time"]
        case.metrics.loc[:, cols] = 0.0
        return Ranking(components=list(reversed(case.components)))


class Warning3(Method):
    """Warns three times (twice the same category, from two places) and then ranks by column order."""

    name = "test-warns"
    tags = Tags(family="statistical")

    def _rank(self, case: Case) -> Ranking:
        import warnings

        for i in range(2):
            warnings.warn(f"did not converge after {i} iterations", RuntimeWarning, stacklevel=1)
        warnings.warn("a deprecated option", DeprecationWarning, stacklevel=1)
        return Ranking(list(case.components))


ENTRIES = [
    ("test-warns", "_evalhelpers:Warning3", "statistical"),
    ("test-dies", "_evalhelpers:Dying", "statistical"),
    ("test-vandal", "_evalhelpers:Vandal", "statistical"),
    ("test-raises", "_evalhelpers:Raising", "statistical"),
    ("test-hangs", "_evalhelpers:Hanging", "statistical"),
    ("test-extended", "_evalhelpers:WantsExtended", "llm"),
]


class Sleepy(Method):
    """Answers after ``SLEEP_S`` seconds: times out under a tiny --timeout, succeeds under a larger one."""

    name = "test-sleepy"
    tags = Tags(family="statistical")
    SLEEP_S = 1.0

    def _rank(self, case: Case) -> Ranking:
        time.sleep(self.SLEEP_S)
        return Ranking(components=list(case.components))


class AlwaysEmpty(Method):
    """Answers "no root cause" (an empty ranking) on every case."""

    name = "test-always-empty"
    tags = Tags(family="statistical")

    def _rank(self, case: Case) -> Ranking:
        return Ranking(components=[])


class EmptyVandal(Method):
    """Overwrites its input in place and answers "no root cause"."""

    name = "test-empty-vandal"
    tags = Tags(family="statistical")

    def _rank(self, case: Case) -> Ranking:
        cols = [c for c in case.metrics.columns if c != "time"]
        case.metrics.loc[:, cols] = 0.0
        return Ranking(components=[])
