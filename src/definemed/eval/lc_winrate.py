"""Length-controlled win-rate, after AlpacaEval-LC (Dubois et al., 2024).

Judges (LLMs and people) prefer longer answers. The LC win-rate asks: what would the win-rate
be if both answers had the same length? Per item i with preference y_i ∈ {0, ½, 1} (loss, tie,
win of model A over model B) and word-length difference Δ_i = len_A,i − len_B,i, fit

    P(A preferred | i) = σ(θ + φ · tanh(Δ_i / sd(Δ)))

by (weighted-)logistic regression with fractional targets for ties (cross-entropy, Newton
steps, a tiny L2 penalty so that a clean sweep stays finite). The LC win-rate is the prediction
at zero length difference, σ(θ). AlpacaEval's GLM has the same length term plus an instruction
difficulty term, which needs many models per instruction; with one pair it drops out.
If all Δ are equal the length term vanishes and the LC win-rate is the plain win-rate.
The 95% CI is a percentile bootstrap over items (refitting each resample; sd(Δ) held fixed).
"""

from __future__ import annotations

import numpy as np

from definemed.eval.bootstrap import bootstrap_ci


def _sigmoid(z: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-z))


def fit_logistic(x: np.ndarray, y: np.ndarray, l2: float = 1e-3, iters: int = 100) -> np.ndarray:
    """(intercept, slope) of P(y=1) = σ(a + b·x) for targets y in [0, 1]."""
    X = np.column_stack([np.ones_like(x), x])
    beta = np.zeros(2)
    for _ in range(iters):
        p = _sigmoid(X @ beta)
        grad = X.T @ (y - p) - l2 * beta
        hess = (X * (p * (1 - p))[:, None]).T @ X + l2 * np.eye(2)
        step = np.linalg.solve(hess, grad)
        beta += step
        if np.abs(step).max() < 1e-9:
            break
    return beta


def lc_win_rate(scores, len_a, len_b, seed: int = 0, n_boot: int = 1000) -> dict:
    """{"mean", "ci_low", "ci_high", "n", "length_coef"}: the win-rate of A at equal length."""
    y = np.asarray(scores, dtype=float)
    delta = np.asarray(len_a, dtype=float) - np.asarray(len_b, dtype=float)
    if y.size == 0:
        return {"mean": float("nan"), "ci_low": float("nan"), "ci_high": float("nan"), "n": 0, "length_coef": None}
    sd = float(delta.std())
    x = np.tanh(delta / sd) if sd > 0 else np.zeros_like(delta)

    def stat(idx: np.ndarray) -> float:
        i = idx.astype(int)
        return float(_sigmoid(fit_logistic(x[i], y[i])[0]))

    a, b = fit_logistic(x, y)
    lo, hi = bootstrap_ci(np.arange(y.size), stat=stat, n_boot=n_boot, seed=seed)
    return {"mean": float(_sigmoid(a)), "ci_low": lo, "ci_high": hi, "n": int(y.size),
            "length_coef": round(float(b), 4)}
