"""Percentile-bootstrap confidence intervals, shared by every eval that reports a rate.

Small eval sets (tens of items) are the norm here, so every rate travels with its interval.
Resampling is seeded: the same inputs give the same interval.
"""

from __future__ import annotations

from typing import Callable, Sequence

import numpy as np


def bootstrap_ci(values: Sequence[float], stat: Callable[[np.ndarray], float] = np.mean, n_boot: int = 2000,
                 level: float = 0.95, seed: int = 0) -> tuple[float, float]:
    """(low, high) of the percentile bootstrap of ``stat`` over items; (nan, nan) for no items."""
    x = np.asarray(values, dtype=float)
    if x.size == 0:
        return float("nan"), float("nan")
    rng = np.random.default_rng(seed)
    idx = rng.integers(0, x.size, size=(n_boot, x.size))
    if stat is np.mean:  # vectorised fast path: one matrix mean instead of n_boot calls
        stats = x[idx].mean(axis=1)
    else:
        stats = np.array([stat(x[i]) for i in idx])
    alpha = (1 - level) / 2
    return float(np.quantile(stats, alpha)), float(np.quantile(stats, 1 - alpha))


def mean_with_ci(values: Sequence[float], seed: int = 0, n_boot: int = 2000) -> dict:
    """{"mean", "ci_low", "ci_high", "n"}: the form every rate takes in metrics JSON."""
    x = np.asarray(values, dtype=float)
    lo, hi = bootstrap_ci(x, seed=seed, n_boot=n_boot)
    return {"mean": float(x.mean()) if x.size else float("nan"), "ci_low": lo, "ci_high": hi, "n": int(x.size)}
