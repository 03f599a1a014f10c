"""A method's explanation (``Ranking.explanation``) as readable lines of plain text.

``llm-rca`` explains its answer as a dict with ``summary``, ``culprit``,
``fault_type``, ``confidence``, ``hypotheses`` (component -> fault type ->
strength) and ``signals`` (the evidence, strongest first; each with
``component``, ``signal``, ``hypothesis``, ``strength``, ``normal``,
``window``, optional ``change_pct`` and ``note``); see docs/method-llm.md.
Other methods may return any JSON-able dict (or nothing); those are shown
key by key.  The lines are plain text: print them literally (no markup).
"""

from __future__ import annotations

import math
from typing import Any

_KNOWN = ("summary", "culprit", "fault_type", "confidence", "hypotheses", "signals", "lacking", "upstream_explained")


def _num(x: Any) -> str:
    if isinstance(x, bool) or not isinstance(x, (int, float)):
        return str(x)
    if math.isnan(x):
        return "nan"
    a = abs(x)
    if a and (a >= 1e6 or a < 1e-3):
        return f"{x:.3g}"
    return f"{x:.4g}"


def epoch_text(t: float) -> str:
    """An epoch time as written: whole seconds in full (``1750000250``), a fraction to the ms (``1750000250.5``),
    never in exponent form (``1.75e+09`` loses the seconds)."""
    return f"{t:.0f}" if float(t).is_integer() else f"{t:.3f}".rstrip("0")


def _epoch(x: Any) -> str:
    """A time field (``inject_time_used``): an epoch number as :func:`epoch_text` writes it, anything else as :func:`_num`."""
    if isinstance(x, (int, float)) and not isinstance(x, bool) and math.isfinite(x) and abs(x) >= 1e6:
        return epoch_text(x)
    return _num(x)


def signal_line(sig: dict[str, Any]) -> str:
    """One evidence line: ``component signal: normal -> window (+x %) [hypothesis, strength s] note``."""
    change = sig.get("change_pct")
    text = f"{sig.get('component', '?')} {sig.get('signal', '?')}"
    if sig.get("normal") is not None or sig.get("window") is not None:  # a flag (a throttle bit) has no level to show
        text += f": {_num(sig.get('normal'))} -> {_num(sig.get('window'))}"
    if isinstance(change, (int, float)):
        text += f" ({change:+.0f} %)"
    text += f"  [{sig.get('hypothesis', '?')}, strength {_num(sig.get('strength'))}]"
    if sig.get("note"):
        text += f"  {sig['note']}"
    return text


def explanation_lines(expl: Any, *, max_signals: int = 8) -> list[str]:
    """Readable lines for an explanation (empty list when there is none).

    ``max_signals`` caps the evidence lines (the rest are counted).
    """
    if not expl:
        return []
    if not isinstance(expl, dict):
        return [str(expl)]
    lines: list[str] = []
    if expl.get("summary"):
        lines.append(str(expl["summary"]))
    head = []
    if expl.get("culprit"):
        head.append(f"culprit {expl['culprit']}")
    if expl.get("fault_type"):
        head.append(f"fault type {expl['fault_type']}")
    if isinstance(expl.get("confidence"), (int, float)):
        head.append(f"confidence {expl['confidence']:.2f}")
    if head:
        lines.append(", ".join(head))
    hyp = expl.get("hypotheses")
    if isinstance(hyp, dict) and hyp:
        parts = []
        for comp, per in list(hyp.items())[:4]:
            if isinstance(per, dict) and per:
                best = max(per.items(), key=lambda kv: kv[1] if isinstance(kv[1], (int, float)) else -math.inf)
                parts.append(f"{comp} {best[0]} {_num(best[1])}")
        if parts:
            lines.append("strongest hypothesis per component: " + "; ".join(parts))
    sigs = expl.get("signals")
    if isinstance(sigs, list) and sigs:
        lines.append("evidence (strongest first):")
        lines += ["  " + signal_line(s) for s in sigs[:max_signals] if isinstance(s, dict)]
        if len(sigs) > max_signals:
            lines.append(f"  ... {len(sigs) - max_signals} more signal(s)")
    if expl.get("lacking"):
        lines.append("missing data: " + ", ".join(map(str, expl["lacking"])))
    if isinstance(expl.get("upstream_explained"), dict) and expl["upstream_explained"]:
        lines.append("explained as downstream effects: " + ", ".join(f"{k} ({v})" for k, v in expl["upstream_explained"].items()))
    for k, v in expl.items():
        if k in _KNOWN:
            continue
        if isinstance(v, tuple):
            v = list(v)
        if v is None:
            lines.append(f"{k}: none")
        elif not isinstance(v, (dict, list)):
            lines.append(f"{k}: {_epoch(v) if 'time' in k else _num(v)}")
        elif not v:
            lines.append(f"{k}: none")
        elif len(v) <= _MAX_ITEMS and all(_flat(x) for x in (v.values() if isinstance(v, dict) else v)):
            items = [f"{a}={_item(b)}" for a, b in v.items()] if isinstance(v, dict) else [_item(x) for x in v]
            lines.append(f"{k}: " + ", ".join(items))
        else:
            lines.append(f"{k}: {len(v)} item(s) (see --json)")
    return lines


def _flat(x: Any) -> bool:
    """A scalar, or a short tuple / list of scalars (a ``(column, score)`` pair): printable on one line."""
    if isinstance(x, (tuple, list)):
        return len(x) <= 4 and all(not isinstance(y, (dict, list, tuple)) for y in x)
    return not isinstance(x, dict)


def _item(x: Any) -> str:
    """One item of a listed field: ``column 0.7266`` for a (name, number) pair, ``none`` for None."""
    if x is None:
        return "none"
    if isinstance(x, (tuple, list)):
        return " ".join(_item(y) for y in x)
    return str(_num(x))


#: a nested explanation field longer than this is counted, not listed (``--json`` has it whole)
_MAX_ITEMS = 12
