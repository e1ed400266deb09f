"""The summary at the top of the report: which model is better on what, and how sure we are.

Every section hands in its comparable numbers as `Metric`s (one value with its 95% CI per model)
or `Duel`s (a pairwise win-rate of A over B with its CI). A metric names its best model and
calls the lead *clear* when the best model's CI does not overlap the runner-up's (a conservative
reading: overlapping CIs can still hide a real difference); a duel is clear when the CI of the
win-rate excludes 0.5.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

from definemed.report.html import Html, join, model_cell, note, pct, num, tag


@dataclass
class Metric:
    what: str  # e.g. "MCQ acc_norm (mcq_de, n=40)"
    values: dict[str, dict]  # model → {"mean", "ci_low", "ci_high", "n"}
    higher_is_better: bool = True
    as_pct: bool = True


@dataclass
class Duel:
    what: str  # e.g. "pairwise (judge smollm2|loglik)"
    a: str
    b: str
    win_rate: dict  # of a over b
    weak_judge: bool = False


@dataclass
class Findings:
    metrics: list[Metric] = field(default_factory=list)
    duels: list[Duel] = field(default_factory=list)


def _ok(x) -> bool:
    return isinstance(x, (int, float)) and not math.isnan(x)


def _fmt(m: Metric, x) -> str:
    return pct(x) if m.as_pct else num(x)


def metric_line(m: Metric, colors: dict[str, str]) -> Html | None:
    vals = {k: v for k, v in m.values.items() if isinstance(v, dict) and _ok(v.get("mean"))}
    if not vals:
        return None
    ranked = sorted(vals, key=lambda k: vals[k]["mean"], reverse=m.higher_is_better)
    best = ranked[0]
    b = vals[best]
    head = [tag("b", m.what), ": "]
    if len(ranked) == 1:
        return join(head + [model_cell(best, colors.get(best, "#888")), f" {_fmt(m, b['mean'])}"])
    second = vals[ranked[1]]
    if b["mean"] == second["mean"]:
        return join(head + [f"tie between {best} and {ranked[1]} at {_fmt(m, b['mean'])}"])
    if m.higher_is_better:
        clear = _ok(b.get("ci_low")) and _ok(second.get("ci_high")) and b["ci_low"] > second["ci_high"]
    else:
        clear = _ok(b.get("ci_high")) and _ok(second.get("ci_low")) and b["ci_high"] < second["ci_low"]
    verdict = "clearly ahead (95% CIs do not overlap)" if clear else \
        "ahead, but the 95% CIs overlap: not a reliable difference at this sample size"
    word = "best" if m.higher_is_better else "lowest"
    return join(head + [model_cell(best, colors.get(best, "#888")),
                        f" {word} with {_fmt(m, b['mean'])} vs {ranked[1]} {_fmt(m, second['mean'])} — {verdict}"])


def duel_line(d: Duel, colors: dict[str, str]) -> Html | None:
    w = d.win_rate
    if not isinstance(w, dict) or not _ok(w.get("mean")):
        return None
    mean, lo, hi = w["mean"], w.get("ci_low"), w.get("ci_high")
    winner, loser, rate = (d.a, d.b, mean) if mean >= 0.5 else (d.b, d.a, 1 - mean)
    if mean == 0.5:
        text = f"{d.a} and {d.b} are even (win-rate 50%)"
        parts = [text]
    else:
        clear = _ok(lo) and _ok(hi) and (lo > 0.5 or hi < 0.5)
        parts = [model_cell(winner, colors.get(winner, "#888")),
                 f" preferred over {loser}: win-rate {pct(rate)} — "
                 + ("CI excludes 50%" if clear else "CI includes 50%: not a reliable preference")]
    if d.weak_judge:
        parts.append(" (weak judge: low position consistency, see below)")
    return join([tag("b", d.what), ": "] + parts)


def render(findings: Findings, colors: dict[str, str]) -> list[Html]:
    lines = [x for x in (metric_line(m, colors) for m in findings.metrics) if x is not None]
    lines += [x for x in (duel_line(d, colors) for d in findings.duels) if x is not None]
    if not lines:
        return [note("No comparable numbers in the given run directories (no MCQ, pairwise or failure-mode "
                     "results): see the sections below.")]
    return [tag("ul", [tag("li", line) for line in lines], cls="summary"),
            note("Intervals are bootstrap 95% CIs over items. 'Clearly ahead' means the intervals of the two best "
                 "models do not overlap; with tens of items most differences are not resolvable.")]
