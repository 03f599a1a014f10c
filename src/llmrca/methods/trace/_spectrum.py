"""Spectrum-based fault-localisation formulas (ef, ep, nf, np -> suspiciousness)."""

from __future__ import annotations

import numpy as np

FORMULAS = ("dstar2", "ochiai", "jaccard", "tarantula", "sorensen-dice", "russell-rao")


def suspiciousness(ef: np.ndarray, ep: np.ndarray, nf: np.ndarray, np_: np.ndarray, formula: str) -> np.ndarray:
    """Vectorised suspiciousness; zero denominators give 0 (or +inf for DStar's ef > 0)."""
    with np.errstate(divide="ignore", invalid="ignore"):
        if formula == "dstar2":
            den = ep + nf
            out = np.where(den > 0, ef * ef / np.where(den > 0, den, 1.0), np.where(ef > 0, np.inf, 0.0))
        elif formula == "ochiai":
            den = np.sqrt((ef + ep) * (ef + nf))
            out = np.where(den > 0, ef / np.where(den > 0, den, 1.0), 0.0)
        elif formula == "jaccard":
            den = ef + ep + nf
            out = np.where(den > 0, ef / np.where(den > 0, den, 1.0), 0.0)
        elif formula == "sorensen-dice":
            den = 2 * ef + ep + nf
            out = np.where(den > 0, 2 * ef / np.where(den > 0, den, 1.0), 0.0)
        elif formula == "tarantula":
            fail = np.where(ef + nf > 0, ef / np.where(ef + nf > 0, ef + nf, 1.0), 0.0)
            pas = np.where(ep + np_ > 0, ep / np.where(ep + np_ > 0, ep + np_, 1.0), 0.0)
            out = np.where(fail + pas > 0, fail / np.where(fail + pas > 0, fail + pas, 1.0), 0.0)
        elif formula == "russell-rao":
            tot = ef + ep + nf + np_
            out = np.where(tot > 0, ef / np.where(tot > 0, tot, 1.0), 0.0)
        else:
            raise ValueError(f"unknown spectrum formula {formula!r}; use one of {FORMULAS}")
    return out
