"""Length-controlled win-rate as AlpacaEval 2.0 computes it (Dubois et al., 2024).

Judges (LLMs and people) prefer longer answers. The LC win-rate asks: what would the win-rate be
if both answers had the same length? We follow ``alpaca_eval/metrics/glm_winrate.py`` (v0.6.6):

- preference y_i ∈ {0, ½, 1} (loss, tie, win of model A over model B); ties are ½ as there;
- Δ_i = len_A,i − len_B,i in **characters** (AlpacaEval: ``output.str.len()``), standardised by
  its sample standard deviation (pandas ``std``, ddof=1), not centred;
- GLM ``P(A preferred | i) = σ(φ·tanh(Δ_i / sd(Δ)) + θ)``; θ is a constant column (AlpacaEval's
  ``not_gamed_baseline``) fitted without a separate intercept, so it is L1-penalised like φ;
- fit: L1 logistic regression (liblinear) with fractional targets (each item twice, labels 1
  and 0, weights y and 1−y), its strength C chosen from ``np.logspace(-4, 4, 10)`` by 5-fold
  ``GroupKFold`` over items, scored by the mean cross-entropy against the fractional targets,
  then refitted on all items (``LogisticRegressionCV(..., random_state=123)``);
- the LC win-rate is the mean predicted preference at Δ = 0.

AlpacaEval's φ multiplies baseline − model; ours multiplies A − B, so our sign is the opposite:
a positive ``length_coef`` means the judge favours the longer answer (tanh is odd and the L1
penalty symmetric, so the LC win-rate is the same).

Deviations, each listed in the result's ``deviations`` (the report shows them):

- GLM ``length_controlled_minimal``, not the leaderboard's ``length_controlled_v1``: v1 adds an
  instruction-difficulty term estimated from AlpacaEval's leaderboard models on its own 805
  instructions and regularises towards its "gamed" baselines (weight 0.2); neither exists for two
  models on our items. Without that term all items get the same prediction, so LC = σ(θ).
- uncertainty: a percentile bootstrap 95% CI over items (at most ``MAX_BOOT`` resamples, each
  refitted with its own sd(Δ) and CV: the L1 shrinkage is part of the estimator). AlpacaEval
  reports the standard error of the per-item predictions, which is 0 here.
- lengths in another unit than characters, when the caller passes one (``unit``).
- fewer than 5 items: no cross-validation; C = 100, AlpacaEval's ``n_splits=0`` setting.
- all Δ equal (sd = 0): no length term, LC = the intercept-only fit (AlpacaEval divides by 0
  and gets NaN).
"""

from __future__ import annotations

import warnings

import numpy as np

from definemed.eval.bootstrap import bootstrap_ci

METHOD = ("AlpacaEval 2.0 length-controlled win-rate (alpaca_eval 0.6.6 metrics/glm_winrate.py): "
          "L1 logistic GLM σ(φ·tanh(Δlen/sd) + θ), C by 5-fold GroupKFold CV, prediction at Δlen = 0")
CS = np.logspace(-4, 4, 10)  # LogisticRegressionCV(Cs=10)
N_SPLITS = 5
C_WITHOUT_CV = 100.0
_EPS = 1e-15  # AlpacaEval's log-loss clip
# Each resample reruns the 50-fit CV (~25 ms); more resamples would cost minutes per pair.
MAX_BOOT = 200


def _sigmoid(z):
    return 1.0 / (1.0 + np.exp(-np.asarray(z, dtype=float)))


def _design(x: np.ndarray) -> np.ndarray:
    """Columns: tanh(standardised Δlen), the constant (AlpacaEval's ``not_gamed_baseline``)."""
    return np.column_stack([x, np.ones_like(x)])


def _fit(X: np.ndarray, y: np.ndarray, C: float) -> np.ndarray:
    """Coefficients of the L1 liblinear fit with fractional targets, as ``fit_LogisticRegressionCV``."""
    # Fractional targets via duplication: label 1 weighted y, label 0 weighted 1 − y.
    Xd = np.vstack([X, X])
    yd = np.concatenate([np.ones(len(y)), np.zeros(len(y))])
    w = np.concatenate([y, 1 - y])
    if w[yd == 1].sum() == 0 or w[yd == 0].sum() == 0:
        # A clean sweep leaves one label without weight; liblinear then prints a warning to stdout
        # and the fit is the same up to ~1e-5, so the empty label gets a negligible weight instead.
        w = w + 1e-12
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # ConvergenceWarning on separable data, as in AlpacaEval
        try:  # the function LogisticRegression(solver="liblinear").fit calls, without its ~1 ms of checks
            from sklearn.svm._base import _fit_liblinear

            return _fit_liblinear(Xd, yd, C, False, 1.0, None, "l1", False, 0, 100, 1e-4, 123, sample_weight=w)[0][0]
        except (ImportError, TypeError):  # private API moved: the public estimator, same numbers
            from sklearn.linear_model import LogisticRegression

            model = LogisticRegression(C=C, l1_ratio=1.0, solver="liblinear", fit_intercept=False, random_state=123)
            return model.fit(Xd, yd, sample_weight=w).coef_[0]


def _cross_entropy(y: np.ndarray, p: np.ndarray) -> float:
    p = np.clip(p, _EPS, 1 - _EPS)
    return float(-np.mean(y * np.log(p) + (1 - y) * np.log(1 - p)))


def choose_c(X: np.ndarray, y: np.ndarray) -> float:
    """C with the best mean held-out cross-entropy over 5 GroupKFold folds (first best on ties)."""
    from sklearn.model_selection import GroupKFold

    folds = list(GroupKFold(n_splits=N_SPLITS).split(X, y, groups=np.arange(len(y))))
    losses = [np.mean([_cross_entropy(y[te], _sigmoid(X[te] @ _fit(X[tr], y[tr], C))) for tr, te in folds])
              for C in CS]
    return float(CS[int(np.argmin(losses))])


def fit_lc(y: np.ndarray, delta: np.ndarray) -> dict:
    """The AlpacaEval estimate on one table: {"lc", "length_coef", "C", "sd", "cv"}."""
    sd = float(delta.std(ddof=1)) if y.size > 1 else 0.0
    x = np.tanh(delta / sd) if sd > 0 else np.zeros_like(delta)
    X = _design(x)
    cv = y.size >= N_SPLITS
    C = choose_c(X, y) if cv else C_WITHOUT_CV
    coef = _fit(X, y, C)
    lc = float(_sigmoid(_design(np.zeros_like(x)) @ coef).mean())  # every item at equal length
    return {"lc": lc, "length_coef": float(coef[0]), "C": C, "sd": sd, "cv": cv}


def lc_win_rate(scores, len_a, len_b, seed: int = 0, n_boot: int = 1000, unit: str = "characters") -> dict:
    """{"mean", "ci_low", "ci_high", "n", "length_coef", "C", "method", "deviations"}: the win-rate
    of A at equal length. ``len_a``/``len_b`` are answer lengths in ``unit``; pass characters
    (``len(answer)``, the default) to measure length as AlpacaEval does; any other unit is listed
    as a deviation."""
    y = np.asarray(scores, dtype=float)
    delta = np.asarray(len_a, dtype=float) - np.asarray(len_b, dtype=float)
    n_boot = min(n_boot, MAX_BOOT)
    deviations = [
        "GLM length_controlled_minimal (length term + constant): AlpacaEval's default length_controlled_v1 "
        "also has an instruction-difficulty term estimated from its leaderboard models and regularises "
        "towards its gamed baselines; neither exists for two models on our items",
        f"95% CI: percentile bootstrap over items, {n_boot} resamples, each refitted with its own CV; "
        "AlpacaEval reports the standard error of per-item predictions, which is 0 without the difficulty term",
    ]
    if unit != "characters":
        deviations.append(f"length difference in {unit} (AlpacaEval: characters)")
    out = {"n": int(y.size), "method": METHOD, "deviations": deviations}
    if y.size == 0:
        return {**out, "mean": float("nan"), "ci_low": float("nan"), "ci_high": float("nan"),
                "length_coef": None, "C": None}
    fit = fit_lc(y, delta)
    if fit["sd"] == 0:
        deviations.append("all length differences equal: no length term (AlpacaEval would divide by 0)")
    if not fit["cv"]:
        deviations.append(f"fewer than {N_SPLITS} items: no cross-validation, C = {C_WITHOUT_CV:g} "
                          "(AlpacaEval's n_splits=0 setting)")

    def stat(idx: np.ndarray) -> float:
        i = idx.astype(int)
        return fit_lc(y[i], delta[i])["lc"]

    lo, hi = bootstrap_ci(np.arange(y.size), stat=stat, n_boot=n_boot, seed=seed)
    return {**out, "mean": fit["lc"], "ci_low": lo, "ci_high": hi, "length_coef": round(fit["length_coef"], 4),
            "C": fit["C"]}
