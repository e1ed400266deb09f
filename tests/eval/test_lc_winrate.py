"""LC win-rate against AlpacaEval 2.0's own code (alpaca_eval 0.6.6, metrics/glm_winrate.py).

The expected numbers below were computed once by running AlpacaEval's ``fit_LogisticRegressionCV``
(copied from the downloaded wheel, sklearn 1.9) on these tables with the ``length_controlled_minimal``
design: columns tanh(Δchars / sd(Δchars, ddof=1)) and a constant, preferences in [0, 1], then
``predict_proba`` at Δ = 0 averaged over items. AlpacaEval's Δ is baseline − model, so its length
coefficient has the opposite sign of ours.
"""

import numpy as np
import pytest
from sklearn.linear_model import LogisticRegression

from definemed.eval import lc_winrate
from definemed.eval.lc_winrate import fit_lc, lc_win_rate

# 60 items, judge favours the longer answer; AlpacaEval: LC 0.5309567188509897, C = 2.782559402207126,
# coefficients [-1.15772294, 0.12398546] (length term, constant).
TABLE = {
    "scores": [1.0, 0.0, 1.0, 0.5, 0.5, 1.0, 1.0, 1.0, 0.0, 0.0, 0.0, 1.0, 0.0, 0.5, 0.0, 1.0, 0.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 0.0, 1.0, 0.5, 1.0, 0.5, 1.0, 1.0, 0.0, 1.0, 0.0, 0.5, 0.0, 1.0, 0.5, 1.0, 0.0, 0.0, 0.0, 1.0, 1.0, 1.0, 1.0, 0.5, 0.0, 1.0, 0.0, 0.0, 1.0, 0.0, 0.0, 1.0, 0.5, 0.0, 1.0, 1.0, 0.0, 0.5],
    "len_a": [779, 1665, 1375, 1463, 1520, 1414, 995, 211, 1093, 694, 928, 1667, 401, 1501, 585, 702, 666, 1463, 814, 766, 1295, 282, 861, 203, 1932, 605, 1017, 789, 691, 995, 2190, 1475, 1021, 947, 973, 1546, 805, 816, 669, 1101, 5, 983, 1252, 1282, 1419, 208, 1407, 373, 951, 1460, 460, 688, 1000, 1625, 276, 656, 1105, 2060, 686, 780],
    "len_b": [879, 1433, 1028, 1384, 1452, 983, 637, 474, 975, 530, 1200, 1413, 594, 962, 358, 516, 752, 1360, 1463, 1069, 1000, 983, 372, 751, 1479, 793, 555, 587, 1156, 345, 1463, 1351, 981, 861, 1213, 957, 872, 686, 836, 1201, 366, 330, 1164, 746, 1264, 336, 1388, 447, 798, 1460, 430, 1089, 1173, 813, 394, 928, 820, 1347, 1118, 713],
}
# 30 items; AlpacaEval's cross-validated L1 penalty shrinks the constant to exactly 0: LC = 0.5,
# C = 2.782559402207126, length coefficient -1.8232235.
SHRUNK = {
    "scores": [1.0, 0.0, 0.5, 0.0, 0.0, 0.0, 1.0, 0.0, 1.0, 1.0, 0.0, 0.0, 0.0, 1.0, 1.0, 0.0, 0.0, 1.0, 0.5, 1.0, 0.5, 1.0, 0.0, 1.0, 0.5, 1.0, 0.0, 0.0, 1.0, 0.5],
    "len_a": [1861, 662, 1088, 766, 627, 643, 1356, 213, 625, 873, 717, 491, 1330, 437, 1094, 823, 416, 1015, 268, 1435, 1106, 800, 1213, 551, 1268, 799, 1664, 494, 1053, 1599],
    "len_b": [1433, 1050, 1121, 1376, 993, 1230, 1300, 570, 366, 660, 642, 1348, 1395, 306, 899, 1285, 457, 1256, 442, 861, 1279, 663, 709, 634, 1163, 605, 1488, 834, 873, 905],
}


def test_matches_alpacaeval_on_a_reference_table():
    res = lc_win_rate(TABLE["scores"], TABLE["len_a"], TABLE["len_b"], n_boot=2, unit="characters")
    assert res["mean"] == pytest.approx(0.5309567188509897, abs=1e-6)
    assert res["C"] == pytest.approx(2.782559402207126)
    assert res["length_coef"] == pytest.approx(1.1577, abs=1e-4)
    assert np.mean(TABLE["scores"]) == pytest.approx(0.5667, abs=1e-4)  # the raw win-rate differs


def test_l1_shrinkage_of_the_constant_as_in_alpacaeval():
    res = lc_win_rate(SHRUNK["scores"], SHRUNK["len_a"], SHRUNK["len_b"], n_boot=2, unit="characters")
    assert res["mean"] == pytest.approx(0.5, abs=1e-9) and res["C"] == pytest.approx(2.782559402207126)
    assert res["length_coef"] == pytest.approx(1.8232, abs=1e-4)


def test_length_is_standardised_with_the_sample_sd():
    """AlpacaEval divides Δ by pandas' std (ddof=1)."""
    y, d = np.asarray(TABLE["scores"]), np.asarray(TABLE["len_a"], float) - np.asarray(TABLE["len_b"])
    assert fit_lc(y, d)["sd"] == pytest.approx(np.std(d, ddof=1))


def test_fast_liblinear_path_equals_the_public_estimator():
    rng = np.random.default_rng(1)
    X = lc_winrate._design(np.tanh(rng.normal(size=40)))
    y = rng.choice([0.0, 0.5, 1.0], 40)
    model = LogisticRegression(C=0.7, l1_ratio=1.0, solver="liblinear", fit_intercept=False, random_state=123)
    model.fit(np.vstack([X, X]), np.r_[np.ones(40), np.zeros(40)], sample_weight=np.r_[y, 1 - y])
    assert lc_winrate._fit(X, y, 0.7) == pytest.approx(model.coef_[0], abs=1e-12)


def test_method_and_deviations_are_named():
    res = lc_win_rate(TABLE["scores"], TABLE["len_a"], TABLE["len_b"], n_boot=2, unit="characters")
    assert "AlpacaEval" in res["method"]
    assert any("instruction-difficulty" in d for d in res["deviations"])
    assert not any(d.startswith("length difference in") for d in res["deviations"])  # characters: as AlpacaEval
    words = lc_win_rate(TABLE["scores"], TABLE["len_a"], TABLE["len_b"], n_boot=2, unit="words")
    assert "length difference in words (AlpacaEval: characters)" in words["deviations"]
    few = lc_win_rate([1, 0, 1], [10, 20, 30], [5, 5, 5], n_boot=2, unit="characters")
    assert few["C"] == 100.0 and any("no cross-validation" in d for d in few["deviations"])
    flat = lc_win_rate([1, 0, 1, 1, 1, 0], [7] * 6, [7] * 6, n_boot=2, unit="characters")
    assert flat["length_coef"] == 0.0 and any("no length term" in d for d in flat["deviations"])


def test_bootstrap_ci_refits_the_cv_and_brackets_the_estimate():
    res = lc_win_rate(TABLE["scores"], TABLE["len_a"], TABLE["len_b"], n_boot=40, seed=3, unit="characters")
    assert res["ci_low"] < res["mean"] < res["ci_high"]
    # With C fixed at the full-data value every resample of SHRUNK would give exactly 0.5.
    shrunk = lc_win_rate(SHRUNK["scores"], SHRUNK["len_a"], SHRUNK["len_b"], n_boot=40, seed=3, unit="characters")
    assert shrunk["ci_high"] - shrunk["ci_low"] > 0.05
