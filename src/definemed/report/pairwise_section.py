"""Report section: pairwise judging (``pairwise.json`` of `definemed eval pairwise`).

Per eval run and judge: wins/ties/losses, win-rate and length-controlled win-rate with 95% CIs,
the judge's position-consistency rate (share of items where both answer orders give the same
verdict) with a warning below `WEAK_JUDGE`, the win-rate matrix as a heatmap, the Bradley–Terry
ranking (three or more models), and the agreement between judges.
"""

from __future__ import annotations

from definemed.report.html import Html, ci, num, note, pct, table, tag
from definemed.report.load import Run
from definemed.report.models import ModelNames
from definemed.report.plots import forest, heatmap, stacked_outcomes
from definemed.report.summary import Duel, Findings

# Below this share of order-consistent verdicts the judge is mostly reacting to answer position.
WEAK_JUDGE = 0.7


def _consistency(pairs: list[dict]) -> float | None:
    """Position consistency over all pairs of a judge, weighted by items."""
    num_, den = 0.0, 0
    for p in pairs:
        pc = p.get("position_consistency")
        if isinstance(pc, dict) and isinstance(pc.get("mean"), (int, float)) and pc.get("n"):
            num_ += pc["mean"] * pc["n"]
            den += pc["n"]
    return num_ / den if den else None


def _lc_method(pairs: list[dict]) -> list[Html]:
    """One line per distinct LC method and its deviations from AlpacaEval (`definemed.eval.lc_winrate`)."""
    seen = dict.fromkeys((str(lc.get("method")), tuple(map(str, lc.get("deviations") or ())))
                         for p in pairs if isinstance(lc := p.get("lc_win_rate"), dict) and lc.get("method"))
    return [tag("p", f"LC method: {m}. Deviations from AlpacaEval: {'; '.join(d) or 'none'}.", cls="meta")
            for m, d in seen]


def _judge(run: Run, judge: str, entry: dict, labels: list[str], names: ModelNames, findings: Findings) -> list[Html]:
    nm = lambda label: names.name(run, label)  # noqa: E731
    pairs = [p for p in entry.get("pairs", []) if isinstance(p, dict)]
    kind = entry.get("kind", "llm")
    out: list[Html] = [tag("h3", f"Judge {judge} ({kind}) — run {run.name}")]
    consistency = _consistency(pairs) if kind == "llm" else None
    weak = consistency is not None and consistency < WEAK_JUDGE
    if weak:
        out.append(note(f"Weak judge: its verdict survives swapping the answer order on only {pct(consistency)} of "
                        f"items (below {pct(WEAK_JUDGE)}). Inconsistent items count as ties, so its win-rates are "
                        f"pulled towards 50% and say little; use a stronger judge model.", "warn"))
    elif consistency is not None:
        out.append(note(f"Position consistency {pct(consistency)}: the judge mostly gives the same verdict in both "
                        f"answer orders.", "good"))
    if not pairs:
        return out + [note("No judged pairs.")]
    rows = []
    for p in pairs:
        a, b = nm(p.get("a", "?")), nm(p.get("b", "?"))
        lc = p.get("lc_win_rate") or {}
        reasons = p.get("failed_reasons") or {}
        failed = num(p.get("failed")) + (f" ({', '.join(f'{k}: {v}' for k, v in sorted(reasons.items()))})"
                                         if reasons else "")
        rows.append([names.cell(a), names.cell(b), num(p.get("n")), failed,
                     f"{p.get('wins', 0)} / {p.get('ties', 0)} / {p.get('losses', 0)}",
                     ci(p.get("win_rate"), as_pct=True), ci(lc, as_pct=True), num(lc.get("length_coef"), 2),
                     ci(p.get("position_consistency"), as_pct=True) if kind == "llm" else "–"])
        findings.duels.append(Duel(f"pairwise, judge {judge}", a, b, p.get("win_rate"), weak_judge=weak))
    out.append(table(["model A", "model B", "n", "failed", "A wins / ties / B wins", "win-rate of A",
                      "LC win-rate of A", "length coef.", "position consistency"], rows))
    out.append(tag("p", "Win-rate = (wins + ½ ties) / n. A win needs the same verdict in both answer orders. "
                        "The length-controlled (LC) win-rate is the win-rate predicted at equal answer length "
                        "(AlpacaEval-LC); a positive length coefficient means the judge favours the longer answer.",
                   cls="meta"))
    out += _lc_method(pairs)
    pair_names = [f"{nm(p.get('a', '?'))} vs {nm(p.get('b', '?'))}" for p in pairs]
    out.append(stacked_outcomes([(n, p.get("wins", 0), p.get("ties", 0), p.get("losses", 0))
                                 for n, p in zip(pair_names, pairs)], "Outcomes per pair, from model A's view"))
    bars = [(f"{n} (LC)" if lc else n, p.get("lc_win_rate") if lc else p.get("win_rate"))
            for n, p in zip(pair_names, pairs) for lc in (False, True)]
    out.append(forest(bars, names.colors, "win-rate of model A", "Win-rate and LC win-rate of model A with "
                      "bootstrap 95% CIs; dashed line: even (50%)", reference=0.5, xlim=(0, 1)))
    matrix = entry.get("win_rate_matrix")
    if isinstance(matrix, dict) and len(labels) >= 2:
        disp = [nm(x) for x in labels]
        renamed = {nm(r): {nm(c): v for c, v in cols.items()} for r, cols in matrix.items() if isinstance(cols, dict)}
        out.append(heatmap(disp, renamed, "Win-rate matrix: row model against column model (0.5 = even)"))
    bt = entry.get("bradley_terry")
    if isinstance(bt, list) and bt:
        out.append(tag("h4", "Bradley–Terry ranking"))
        out.append(table(["rank", "model", "score (log-strength)", "95% CI"],
                         [[num(r.get("rank")), names.cell(nm(r.get("model", "?"))), num(r.get("score")),
                           f"[{num(r.get('ci_low'))}, {num(r.get('ci_high'))}]"] for r in bt]))
        out.append(forest([(nm(r.get("model", "?")), {"mean": r.get("score"), "ci_low": r.get("ci_low"),
                                                       "ci_high": r.get("ci_high")}) for r in bt],
                          names.colors, "Bradley–Terry score (0 = average model)",
                          "Bradley–Terry scores with bootstrap 95% CIs, best first", reference=0.0))
    calls = entry.get("calls")
    if isinstance(calls, dict) and calls:
        out.append(tag("p", "judge calls: " + ", ".join(f"{k} {v}" for k, v in calls.items()), cls="meta"))
    return out


def pairwise_section(runs: list[Run], names: ModelNames, findings: Findings) -> list[Html]:
    with_pw = [r for r in runs if r.stage == "eval" and "pairwise.json" in r.files]
    if not with_pw:
        return [note("No pairwise judging (pairwise.json) in the given eval runs: run `definemed eval pairwise`.")]
    out: list[Html] = []
    for run in with_pw:
        data = run.files["pairwise.json"]
        labels = [str(x) for x in data.get("models", [])]
        judges = data.get("judges") or {}
        if not judges:
            out.append(note(f"{run.name}: pairwise.json holds no judges."))
        for judge, entry in judges.items():
            if isinstance(entry, dict):
                out += _judge(run, judge, entry, labels, names, findings)
        agree = [a for a in data.get("agreement", []) if isinstance(a, dict)]
        if agree:
            out.append(tag("h4", f"Agreement between judges — run {run.name}"))
            out.append(table(["judges", "pair", "same verdict", "Cohen's κ"],
                             [[" ~ ".join(map(str, a.get("judges", []))),
                               f"{names.name(run, a.get('a', '?'))} vs {names.name(run, a.get('b', '?'))}",
                               ci(a.get("agreement"), as_pct=True), num(a.get("cohen_kappa"))] for a in agree]))
        if data.get("notes"):
            out.append(tag("p", f"Note from the run: {data['notes']}", cls="meta"))
    return out
