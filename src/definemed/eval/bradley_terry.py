"""Bradley–Terry ranking of several models from pairwise outcomes, with bootstrap CIs.

Model i beats model j with probability p_i / (p_i + p_j). Strengths are fitted with Hunter's
(2004) MM algorithm on the matrix of wins (a tie counts half a win for each side):

    p_i ← W_i / Σ_j n_ij / (p_i + p_j),   W_i = Σ_j w_ij,  n_ij = w_ij + w_ji

then normalised to geometric mean 1. Every compared pair also gets ``prior`` pseudo-ties, a
light regulariser that keeps a model that never wins (or never loses) at a finite score.
Scores are θ_i = ln p_i (centred at 0; θ_i − θ_j is the log-odds that i beats j). CIs: percentile
bootstrap over items (the same resampled items for every pair).
"""

from __future__ import annotations

import numpy as np


def fit_bradley_terry(wins: np.ndarray, prior: float = 0.1, iters: int = 10_000, tol: float = 1e-10) -> np.ndarray:
    """θ (log-strengths, mean 0) from ``wins[i, j]`` = (fractional) wins of i over j."""
    w = np.asarray(wins, dtype=float)
    compared = (w + w.T) > 0
    w = w + prior * compared
    n = w + w.T
    p = np.ones(len(w))
    for _ in range(iters):
        denom = (n / (p[:, None] + p[None, :])).sum(axis=1)
        new = np.where(denom > 0, w.sum(axis=1) / np.where(denom > 0, denom, 1), 1.0)
        new = new / np.exp(np.log(new).mean())
        if np.abs(new - p).max() < tol:
            p = new
            break
        p = new
    return np.log(p) - np.log(p).mean()


def win_matrix(outcomes: dict[tuple[int, int], dict[str, float]], m: int, items: list[str] | None = None) -> np.ndarray:
    """wins[i, j] from per-item scores of i against j (1 win, 0.5 tie, 0 loss); ``items`` may
    repeat ids (bootstrap resample)."""
    wins = np.zeros((m, m))
    for (i, j), per_item in outcomes.items():
        ids = list(per_item) if items is None else [k for k in items if k in per_item]
        s = sum(per_item[k] for k in ids)
        wins[i, j] += s
        wins[j, i] += len(ids) - s
    return wins


def bradley_terry(labels: list[str], outcomes: dict[tuple[int, int], dict[str, float]], seed: int = 0,
                  n_boot: int = 500, level: float = 0.95) -> list[dict]:
    """Ranking (best first): {"model", "score", "ci_low", "ci_high", "rank"} per model."""
    m = len(labels)
    theta = fit_bradley_terry(win_matrix(outcomes, m))
    all_items = sorted({k for per_item in outcomes.values() for k in per_item})
    rng = np.random.default_rng(seed)
    boot = np.empty((n_boot, m))
    for b in range(n_boot):
        sample = [all_items[i] for i in rng.integers(0, len(all_items), len(all_items))]
        boot[b] = fit_bradley_terry(win_matrix(outcomes, m, sample))
    alpha = (1 - level) / 2
    lo, hi = np.quantile(boot, alpha, axis=0), np.quantile(boot, 1 - alpha, axis=0)
    order = np.argsort(-theta)
    return [{"model": labels[i], "score": round(float(theta[i]), 4), "ci_low": round(float(lo[i]), 4),
             "ci_high": round(float(hi[i]), 4), "rank": r + 1} for r, i in enumerate(order)]
