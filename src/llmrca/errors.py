"""Exceptions that carry a status for the evaluator."""

from __future__ import annotations


class LlmrcaError(Exception):
    """Base class of llmrca's own errors."""


class MissingDependency(LlmrcaError, ImportError):
    """An optional dependency is not installed; the message names the extra."""

    def __init__(self, package: str, extra: str | None, what: str = "this feature") -> None:
        self.package = package
        self.extra = extra
        hint = f'pip install "llmrca[{extra}]"' if extra else f"pip install {package}"
        super().__init__(f"{what} needs the optional dependency {package!r}; install it with: {hint}")


def require(module: str, extra: str | None, what: str = "this feature"):
    """Import ``module`` or raise :class:`MissingDependency` naming the extra."""
    import importlib

    try:
        return importlib.import_module(module)
    except ImportError as e:
        raise MissingDependency(module.split(".")[0], extra, what) from e


class MethodUnavailable(LlmrcaError):
    """A method cannot run on this case (e.g. the case has no traces).

    The evaluator records the run as ``unavailable`` with this reason.
    """
