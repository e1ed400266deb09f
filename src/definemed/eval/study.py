"""The study's questions, answered for one run of the chain (demo or pipeline).

DeFineMed's claims: continual pre-training lowers medical perplexity and raises medical
benchmark accuracy; it costs instruction following, which merging back with the instruct
model restores; adaptation adds language mixing and verbosity. One row per question, one
column per model, numbers with their 95% CIs where the sample is small — whatever they are.
"""

from __future__ import annotations

from rich.table import Table


def _ci(stat: dict | None, pct: bool = False) -> str:
    """mean [low, high] (n=…): every rate travels with its interval and its denominator."""
    if not stat:
        return "–"
    if stat.get("mean") is None or stat["mean"] != stat["mean"]:  # no items: nan
        return f"– (n={stat.get('n', 0)})"
    f = (lambda x: f"{100 * x:.0f}%") if pct else (lambda x: f"{x:.2f}")
    n = f" (n={stat['n']})" if stat.get("n") is not None else ""
    return f"{f(stat['mean'])} [{f(stat['ci_low'])}, {f(stat['ci_high'])}]{n}"


def _flip(stat: dict | None) -> dict | None:
    """The complementary rate (1 − p) with its interval."""
    if not stat or stat.get("mean") is None:
        return None
    return {"mean": 1 - stat["mean"], "ci_low": 1 - stat["ci_high"], "ci_high": 1 - stat["ci_low"], "n": stat.get("n")}


def study_notes(cpt_of_instruct: bool) -> list[str]:
    """What the table's reader must know to read it right; shown with the table everywhere."""
    notes = []
    if cpt_of_instruct:
        notes.append("This run continually pre-trained the instruct model itself (no base sibling is bundled); "
                     "the study pre-trains the base model and merges it with its instruct sibling, as the "
                     "configs in configs/paper/ do.")
    return notes


def _ppl_rows(train: dict | None) -> list[dict]:
    rows: list[dict] = []
    if not train:
        return rows
    s, e = train.get("heldout_ppl_start") or {}, train.get("heldout_ppl_end") or {}
    docs, overlap = train.get("heldout_docs") or {}, train.get("heldout_overlap_docs") or {}
    for domain in ("medical", "general"):
        if domain in s and domain in e:
            extra = f"{docs[domain]} docs, " if domain in docs else ""
            excl = f"; {overlap[domain]} training docs excluded" if domain in overlap else ""
            rows.append({"question": "CPT lowers medical perplexity?" if domain == "medical"
                         else "CPT forgets general German?",
                         "measure": f"held-out {domain} PPL ({extra}train stage{excl})",
                         "base": f"{s[domain]:.1f}", "cpt": f"{e[domain]:.1f} ({(e[domain] - s[domain]) / s[domain]:+.0%})"})
    return rows


def _sweep_row(sweep: dict | None, labels: list[str]) -> list[dict]:
    if not sweep:
        return []
    ev = {("base" if r["label"] == "instruct" else r["label"] if r["label"] == "cpt" else f"merged-{r['label']}"):
          r.get("eval") or {} for r in (sweep.get("parents") or []) + (sweep.get("points") or [])}
    cells = {k: f"{ev[k]['medical_ppl']:.1f}" for k in labels if ev.get(k, {}).get("medical_ppl") is not None}
    if len(cells) < 2:
        return []
    n = next(iter(ev.values())).get("docs")
    overlap = sweep.get("heldout_overlap_docs")
    excl = "" if overlap is None else f"; {overlap} training docs excluded"
    return [{"question": "Does merging keep the domain gain?",
             "measure": f"held-out medical PPL (merge sweep, {n} docs{excl})", **cells}]


def _mcq_row(suite: dict | None, labels: list[str]) -> list[dict]:
    mcq = (suite or {}).get("mcq")
    if not mcq:
        return []
    chance = mcq.get("chance")
    options = mcq.get("options") or {}
    opts = "/".join(str(k) for k in options) + " options" if options else ""
    measure = f"MCQ acc ({mcq['items']} items" + (f", {opts}" if opts else "") + \
        (f"; chance {chance:.2f}" if chance is not None else "") + ")"
    return [{"question": "CPT raises MCQ accuracy?", "measure": measure,
             **{k: _ci(mcq["models"][k]["acc"]) for k in labels if k in mcq["models"]}}]


def _failure_rows(failures: dict | None, labels: list[str]) -> list[dict]:
    per = (failures or {}).get("models", {})
    if not per:
        return []

    def get(label, *path):
        x = per.get(label)
        for p in path:
            x = (x or {}).get(p)
        return x

    have = [k for k in labels if k in per]
    first = per[have[0]] if have else {}
    n_if = (first.get("instruction_following") or {}).get("items_with_constraints")
    n_ans = first.get("n_answers")
    if_measure = "IF items, all constraints met (strict)" + \
        (f": {n_if} instructions with constraints" + (f" of {n_ans} answered" if n_ans else "") if n_if else "")
    return [
        {"question": "CPT hurts, merging restores instruction following?", "measure": if_measure,
         **{k: _ci(get(k, "instruction_following", "item_strict"), True) for k in have}},
        {"question": "More language mixing?", "measure": "answers with a non-German sentence",
         **{k: _ci(get(k, "language_mixing", "answers_with_foreign_sentence"), True) for k in have}},
        {"question": "More verbose?", "measure": "answers that stopped on their own (not at the token limit)",
         **{k: _ci(get(k, "verbosity", "stopped_on_own"), True) for k in have}},
        {"question": "", "measure": "words per answer that stopped on its own",
         **{k: _ci(get(k, "verbosity", "words_per_stopped_answer")) for k in have}},
        {"question": "", "measure": "words per answer, all (cut-off answers measure the limit)",
         **{k: _ci(get(k, "verbosity", "words_per_answer")) for k in have}},
        {"question": "", "measure": "degenerate repetition",
         **{k: _ci(get(k, "repetition", "degenerate_loops"), True) for k in have}},
    ]


def _pairwise_rows(pairwise: dict | None, labels: list[str]) -> list[dict]:
    rows = []
    for name, judge in ((pairwise or {}).get("judges") or {}).items():
        if judge.get("kind") != "llm":
            continue
        wins = {}
        for p in judge.get("pairs", []):
            failed = f", {p['failed']} failed" if p.get("failed") else ""
            if p["a"] == "base" and p["b"] in labels:  # win-rate of the other model against the base
                wins[p["b"]] = _ci(_flip(p.get("win_rate")), True) + failed
                cons = (p.get("position_consistency") or {}).get("mean")
                wins["base"] = "judge consistent in " + ("–" if cons is None else f"{cons:.0%}") + " of items"
            elif p["b"] == "base" and p["a"] in labels:
                wins[p["a"]] = _ci(p.get("win_rate"), True) + failed
        if wins:
            rows.append({"question": f"Better answers than the base ({name} judge)?",
                         "measure": "win-rate vs base, both orders", **wins})
    return rows


def study_rows(train: dict | None, suite: dict | None, failures: dict | None, pairwise: dict | None,
               labels: list[str], sweep: dict | None = None) -> list[dict]:
    """Rows {"question", "measure", <label>: text, ...}; `failures`/`pairwise`/`sweep` are the full
    JSON files (sweep: the merge stage's sweep.json, whose table scores parents and merges alike)."""
    return [*_ppl_rows(train), *_sweep_row(sweep, labels), *_mcq_row(suite, labels),
            *_failure_rows(failures, labels), *_pairwise_rows(pairwise, labels)]


def study_table(rows: list[dict], labels: list[str], notes: list[str] | None = None):
    """The table, followed by its notes (plain text: never parsed as markup)."""
    from rich.console import Group
    from rich.text import Text

    t = Table(title="The study's questions, answered for this run (95% bootstrap CIs, n = items)",
              show_lines=False)
    t.add_column("question", max_width=34)
    t.add_column("measure", max_width=44)
    for label in labels:
        t.add_column(label, justify="right")
    for r in rows:
        t.add_row(r["question"], r["measure"], *[r.get(k, "–") for k in labels])
    return Group(t, *[Text(f"Note: {n}") for n in notes or []])
