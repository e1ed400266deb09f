"""The study's questions, answered for one run of the chain (demo or pipeline).

DeFineMed's claims: continual pre-training lowers medical perplexity and raises medical
benchmark accuracy; it costs instruction following, which merging back with the instruct
model restores; adaptation adds language mixing and verbosity. One row per question, one
column per model, numbers with their 95% CIs where the sample is small — whatever they are.
"""

from __future__ import annotations

from rich.table import Table


def _ci(stat: dict | None, pct: bool = False) -> str:
    if not stat or stat.get("mean") is None:
        return "–"
    f = (lambda x: f"{100 * x:.0f}%") if pct else (lambda x: f"{x:.2f}")
    return f"{f(stat['mean'])} [{f(stat['ci_low'])}, {f(stat['ci_high'])}]"


def study_rows(train: dict | None, suite: dict | None, failures: dict | None, pairwise: dict | None,
               labels: list[str], sweep: dict | None = None) -> list[dict]:
    """Rows {"question", "measure", <label>: text, ...}; `failures`/`pairwise`/`sweep` are the full
    JSON files (sweep: the merge stage's sweep.json, whose table scores parents and merges alike)."""
    rows: list[dict] = []
    if train:
        s, e = train.get("heldout_ppl_start") or {}, train.get("heldout_ppl_end") or {}
        for domain in ("medical", "general"):
            if domain in s and domain in e:
                rows.append({"question": f"CPT lowers {domain} perplexity?" if domain == "medical"
                             else "CPT forgets general German?", "measure": f"held-out {domain} PPL",
                             "base": f"{s[domain]:.1f}", "cpt": f"{e[domain]:.1f} ({(e[domain] - s[domain]) / s[domain]:+.0%})"})
    if sweep:
        ev = {("base" if r["label"] == "instruct" else r["label"] if r["label"] == "cpt" else f"merged-{r['label']}"):
              r.get("eval") or {} for r in (sweep.get("parents") or []) + (sweep.get("points") or [])}
        cells = {k: f"{ev[k]['medical_ppl']:.1f}" for k in labels if ev.get(k, {}).get("medical_ppl") is not None}
        if len(cells) > 1:
            n = next(iter(ev.values())).get("docs")
            rows.append({"question": "Does merging keep the domain gain?",
                         "measure": f"medical PPL (merge sweep, {n} docs)", **cells})
    if suite and suite.get("mcq"):
        models = suite["mcq"]["models"]
        rows.append({"question": "CPT raises MCQ accuracy?", "measure": f"MCQ acc ({suite['mcq']['items']} items)",
                     **{k: _ci(models[k]["acc"]) for k in labels if k in models}})
    per = (failures or {}).get("models", {})
    if per:
        def get(label, *path):
            x = per.get(label)
            for p in path:
                x = (x or {}).get(p)
            return x
        rows += [
            {"question": "CPT hurts, merging restores instruction following?", "measure": "IF items strict",
             **{k: _ci(get(k, "instruction_following", "item_strict"), True) for k in labels if k in per}},
            {"question": "More language mixing?", "measure": "answers with a non-German sentence",
             **{k: _ci(get(k, "language_mixing", "answers_with_foreign_sentence"), True) for k in labels if k in per}},
            {"question": "More verbose?", "measure": "words per answer",
             **{k: _ci(get(k, "verbosity", "words_per_answer")) for k in labels if k in per}},
            {"question": "", "measure": "answers hitting the token limit",
             **{k: _ci(get(k, "verbosity", "hit_token_limit"), True) for k in labels if k in per}},
            {"question": "", "measure": "degenerate repetition",
             **{k: _ci(get(k, "repetition", "degenerate_loops"), True) for k in labels if k in per}},
        ]
    for name, judge in ((pairwise or {}).get("judges") or {}).items():
        if judge.get("kind") != "llm":
            continue
        wins = {}
        for p in judge.get("pairs", []):
            if p["a"] == "base" and p["b"] in labels:  # win-rate of the other model against the base
                wr = p.get("win_rate") or {}
                wins[p["b"]] = _ci({"mean": 1 - wr["mean"], "ci_low": 1 - wr["ci_high"], "ci_high": 1 - wr["ci_low"]}
                                   if wr.get("mean") is not None else None, True)
                cons = (p.get("position_consistency") or {}).get("mean")
                wins["base"] = "judge consistent in " + ("–" if cons is None else f"{cons:.0%}") + " of items"
            elif p["b"] == "base" and p["a"] in labels:
                wins[p["a"]] = _ci(p.get("win_rate"), True)
        if wins:
            rows.append({"question": f"Better answers than the base ({name} judge)?", "measure": "win-rate vs base",
                         **wins})
    return rows


def study_table(rows: list[dict], labels: list[str]) -> Table:
    t = Table(title="The study's questions, answered for this run (95% bootstrap CIs)", show_lines=False)
    t.add_column("question", max_width=34)
    t.add_column("measure", max_width=26)
    for label in labels:
        t.add_column(label, justify="right")
    for r in rows:
        t.add_row(r["question"], r["measure"], *[r.get(k, "–") for k in labels])
    return t
