"""Exceptions that carry a status for the evaluator."""

from __future__ import annotations


class LlmrcaError(Exception):
    """Base class of llmrca's own errors."""


#: Extras that need a particular first step.  An unpinned ``torch`` from the
#: package index pulls a multi-GB CUDA build; the pinned CPU build first (as
#: ``scripts/setup.sh --test`` does) keeps it small.
_EXTRA_FIRST_STEP: dict[str, str] = {"torch": "pip install torch==2.13.0"}


def install_hint(package: str, extra: str | None) -> str:
    """The shell command that installs ``package`` (through llmrca's ``extra`` if given).

    Plain text meant to be printed literally (it contains ``[...]``, which a
    terminal-markup printer would swallow).  ``pip install "llmrca[extra]"``
    adds the extra's packages to an installed llmrca (also an editable one).
    """
    if not extra:
        return f"pip install {package}"
    step = _EXTRA_FIRST_STEP.get(extra)
    main = f'pip install "llmrca[{extra}]"'
    return f"{step} && {main}" if step else main


def unavailable_reason(requires: tuple[str, ...], extra: str | None) -> str:
    """Why a method needing ``requires`` cannot run here, with the install command; "" if it can."""
    import importlib.util

    for mod in requires:
        if importlib.util.find_spec(mod) is None:
            return f"needs {mod}: {install_hint(mod, extra)}"
    return ""


class MissingDependency(LlmrcaError, ImportError):
    """An optional dependency is not installed; the message names the extra."""

    def __init__(self, package: str, extra: str | None, what: str = "this feature") -> None:
        self.package = package
        self.extra = extra
        hint = install_hint(package, extra)
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
