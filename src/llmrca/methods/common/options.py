"""The option vocabulary shared by the methods (docs/methods.md, "Option vocabulary").

* ``normal_window_s`` / ``anomalous_window_s`` — seconds of data before / from
  the injection a method looks at; ``None`` = all of it
  (:func:`llmrca.methods.common.windows.clip_mask`);
* ``reference_mode`` — ``None`` runs the paper's algorithm; a string names the
  reference implementation reproduced instead (``"rcaeval"``: RCAEval 1.8.1;
  ``"pyrca"``: sfr-pyrca 1.0.1 as RCAEval calls it);
* ``time_budget_s`` — wall-clock budget in seconds, past which the method
  stops with :class:`~llmrca.methods.graph.discovery.DiscoveryTimeout`;
* ``seed`` — the seed of every random choice;
* ``zero_spread`` — the scaler's zero-spread convention
  (:mod:`llmrca.methods.common.scaling`).

Old spellings (``anomal_window_s``, ``budget_s``, ``reference_mode: true``,
``"paper"``, a window of ``0``) still load through
:meth:`llmrca.config.Config.from_dict` with a FutureWarning.
"""

from __future__ import annotations

from collections.abc import Collection


def check_reference_mode(method: str, value: str | None, allowed: Collection[str]) -> str | None:
    """``value`` if it is ``None`` or one of ``allowed``; ValueError naming the valid values otherwise."""
    if value is None or value in allowed:
        return value
    valid = ", ".join(repr(a) for a in allowed)
    raise ValueError(f"{method}: reference_mode must be null (the paper's algorithm) or {valid}, got {value!r}")
