"""Pairwise comparison of models' answers: both orders, win-rates with CIs, LC win-rate,
Bradley–Terry ranking, and agreement between judges.

For models X and Y on their common items, an LLM judge sees every item twice: X as answer A,
then Y as answer A. A win needs both orders to agree; a disagreement (position bias: "A" both
times) counts as a tie, and the share of items where both orders agree is the judge's
**position-consistency rate**. Items where either order failed (unparseable or empty output, missing
log-probs, an HTTP error) are counted as failed, per reason, and left out of the rates; so are
items whose answer failed to generate (answer rows with status "failed"; reason "answer_failed").
Win-rate = (wins + ½·ties) / n with a bootstrap 95% CI; the
length-controlled win-rate is explained in `definemed.eval.lc_winrate`. With three or more models
every pair is judged, giving a win-rate matrix and a Bradley–Terry ranking.
"""

from __future__ import annotations

from collections import Counter
from itertools import combinations
from pathlib import Path
from typing import Callable, Literal, Optional

import numpy as np
from pydantic import Field

from definemed.config import StrictModel
from definemed.eval.bootstrap import mean_with_ci
from definemed.eval.judge import Comparison, LLMJudge
from definemed.eval.lc_winrate import lc_win_rate
from definemed.llm.base import BackendConfig

SCORE = {"X": 1.0, "tie": 0.5, "Y": 0.0}  # from X's point of view
ANSWER_FAILED = "answer_failed"


class PairwiseConfig(StrictModel):
    answers: list[Path] = Field(min_length=2)
    judge: Optional[BackendConfig] = None  # None: no LLM judge (embedding judge only)
    mode: Literal["generate", "loglik"] = "loglik"
    reference_guided: bool = False  # also run the LLM judge with the reference answer in the prompt
    embedding_judge: bool = False
    embedding_margin: float = Field(0.01, ge=0)
    max_items: Optional[int] = Field(None, ge=1)
    max_new_tokens: int = Field(128, ge=8)
    seed: int = 0
    n_boot: int = Field(1000, ge=100)
    output_dir: Path  # the eval run directory


def combine(first: dict, second: dict) -> dict:
    """Verdict on X vs Y from the order with X shown as A (``first``) and with Y as A (``second``)."""
    if first["status"] != "ok" or second["status"] != "ok":
        reason = (first if first["status"] != "ok" else second).get("reason", "unknown")
        return {"status": "failed", "verdict": None, "consistent": None, "reason": reason}
    v1 = {"A": "X", "B": "Y", "tie": "tie"}[first["verdict"]]
    v2 = {"A": "Y", "B": "X", "tie": "tie"}[second["verdict"]]
    if v1 == v2:
        return {"status": "ok", "verdict": v1, "consistent": True}
    return {"status": "ok", "verdict": "tie", "consistent": False}


def answer_ok(row: dict) -> bool:
    """An answer row counts unless generation failed for it (rows of older files have no status)."""
    return row.get("status", "ok") == "ok"


def pair_items(rows_x: dict[str, dict], rows_y: dict[str, dict], max_items: int | None = None) -> list[dict]:
    """The items both models have rows for, sorted by id: {"id", "prompt", "reference", "x", "y"},
    and "answer_failed": True where either answer failed to generate (not judged)."""
    ids = sorted(set(rows_x) & set(rows_y))[:max_items]
    return [{"id": i, "prompt": rows_x[i]["prompt"], "reference": rows_x[i].get("reference") or rows_y[i].get("reference"),
             "x": rows_x[i]["answer"], "y": rows_y[i]["answer"],
             **({} if answer_ok(rows_x[i]) and answer_ok(rows_y[i]) else {"answer_failed": True})} for i in ids]


def failed_answer(it: dict) -> dict:
    return {"id": it["id"], "status": "failed", "verdict": None, "consistent": None, "reason": ANSWER_FAILED}


def judge_llm(judge: LLMJudge, items: list[dict], progress: Callable[[int], None] | None = None) -> list[dict]:
    """Both orders of every item in one batch of judge calls; per item the combined verdict.
    Items with a failed answer are not judged: they are failed outcomes."""
    todo = [it for it in items if not it.get("answer_failed")]
    comps = ([Comparison(it["prompt"], it["x"], it["y"], it["reference"]) for it in todo]
             + [Comparison(it["prompt"], it["y"], it["x"], it["reference"]) for it in todo])
    v = judge.judge(comps, progress=progress)
    n = len(todo)
    judged = {it["id"]: {"id": it["id"], **combine(v[k], v[n + k]), "order_xy": v[k], "order_yx": v[n + k]}
              for k, it in enumerate(todo)}
    return [judged.get(it["id"]) or failed_answer(it) for it in items]


def summarise_pair(outcomes: list[dict], items: list[dict], seed: int = 0, n_boot: int = 1000) -> dict:
    """Counts, win-rate (CI), LC win-rate (CI), position consistency (CI) and failures of X vs Y."""
    ok = [(o, it) for o, it in zip(outcomes, items) if o["status"] == "ok"]
    scores = [SCORE[o["verdict"]] for o, _ in ok]
    consistent = [float(o["consistent"]) for o, _ in ok if o.get("consistent") is not None]
    return {
        "n": len(ok), "failed": len(outcomes) - len(ok),
        "failed_reasons": dict(Counter(o.get("reason", "unknown") for o in outcomes if o["status"] != "ok")),
        "wins": sum(o["verdict"] == "X" for o, _ in ok), "ties": sum(o["verdict"] == "tie" for o, _ in ok),
        "losses": sum(o["verdict"] == "Y" for o, _ in ok),
        "win_rate": mean_with_ci(scores, seed=seed, n_boot=n_boot),
        # AlpacaEval measures length in characters
        "lc_win_rate": lc_win_rate(scores, [len(it["x"]) for _, it in ok], [len(it["y"]) for _, it in ok],
                                   seed=seed, n_boot=n_boot, unit="characters"),
        "position_consistency": mean_with_ci(consistent, seed=seed, n_boot=n_boot) if consistent else None,
    }


def cohen_kappa(a: list[str], b: list[str]) -> float:
    """Cohen's κ of two raters' categorical verdicts on the same items; nan when undefined (no
    items, or both raters always give the same single verdict: chance agreement is then 1)."""
    if not a:
        return float("nan")
    cats = sorted(set(a) | set(b))
    po = float(np.mean([x == y for x, y in zip(a, b)]))
    pe = sum((a.count(c) / len(a)) * (b.count(c) / len(b)) for c in cats)
    return (po - pe) / (1 - pe) if pe < 1.0 else float("nan")


def agreement(v1: list[dict], v2: list[dict], seed: int = 0, n_boot: int = 1000) -> dict:
    """Share of items (both judges ok) with the same verdict (CI) and Cohen's κ."""
    both = [(x["verdict"], y["verdict"]) for x, y in zip(v1, v2) if x["status"] == "ok" and y["status"] == "ok"]
    a, b = [x for x, _ in both], [y for _, y in both]
    return {"agreement": mean_with_ci([float(x == y) for x, y in both], seed=seed, n_boot=n_boot),
            "cohen_kappa": None if np.isnan(kappa := cohen_kappa(a, b)) else round(kappa, 4)}


def all_pairs(labels: list[str]) -> list[tuple[int, int]]:
    return list(combinations(range(len(labels)), 2))


def win_rate_matrix(labels: list[str], pair_summaries: dict[tuple[int, int], dict]) -> dict[str, dict[str, float]]:
    """matrix[row][col] = win-rate of the row model against the column model."""
    m: dict[str, dict[str, float]] = {a: {} for a in labels}
    for (i, j), s in pair_summaries.items():
        wr = s["win_rate"]["mean"]
        m[labels[i]][labels[j]] = round(wr, 4)
        m[labels[j]][labels[i]] = round(1 - wr, 4)
    return m
