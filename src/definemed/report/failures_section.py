"""Report section: failure modes (``failures.json`` of `definemed eval failures`) and example answers.

The table puts every rate of every model side by side with its 95% CI; the plots show the rates
(share of answers) and the answer lengths. Examples come from ``failures_examples.jsonl``
(answers with a foreign-language sentence, loops, leaked chat markup, failed constraints) and
from ``answers/*.jsonl`` (the longest answers and those that hit the token limit). Answers are
untrusted model output: they are only ever inserted as escaped text.
"""

from __future__ import annotations

import json

from definemed.report.html import Html, ci, details, join, note, num, pct, table, tag
from definemed.report.load import Run
from definemed.report.models import ModelNames
from definemed.report.plots import grouped_bars
from definemed.report.summary import Findings, Metric

# (label, path in a model's report, shown as percent, lower is better (None: neither))
ROWS = (
    ("answers with a non-German sentence", ("language_mixing", "answers_with_foreign_sentence"), True, True),
    ("non-German word share", ("language_mixing", "foreign_word_share"), True, True),
    ("words per answer", ("verbosity", "words_per_answer"), False, None),
    ("length ratio to reference", ("verbosity", "ratio_to_reference"), False, None),
    ("length ratio to baseline", ("verbosity", "ratio_to_baseline"), False, None),
    ("hit the token limit", ("verbosity", "hit_token_limit"), True, True),
    # words per answer measures the token limit when answers are cut off; these say what the model chose
    ("stopped on its own", ("verbosity", "stopped_on_own"), True, None),
    ("words per answer that stopped on its own", ("verbosity", "words_per_stopped_answer"), False, None),
    ("duplicate 4-gram share", ("repetition", "dup_4gram_share"), True, True),
    ("degenerate loops", ("repetition", "degenerate_loops"), True, True),
    ("template leakage", ("template_leakage", "answers_with_leakage"), True, True),
    ("instruction following, item strict", ("instruction_following", "item_strict"), True, False),
    ("instruction following, item loose", ("instruction_following", "item_loose"), True, False),
    ("instruction following, constraint strict", ("instruction_following", "constraint_strict"), True, False),
    ("instruction following, constraint loose", ("instruction_following", "constraint_loose"), True, False),
    ("refers to a professional (where required)", ("instruction_following", "referral"), True, False),
)
PLOTTED = ("answers with a non-German sentence", "non-German word share", "hit the token limit", "degenerate loops",
           "template leakage", "instruction following, item strict", "instruction following, item loose")
SUMMARISED = ("answers with a non-German sentence", "instruction following, item strict", "template leakage")
EXAMPLES_PER_MODEL = 3


def _get(report: dict, path: tuple[str, ...]):
    for key in path:
        report = report.get(key) if isinstance(report, dict) else None
    return report


def _mean(report: dict, constraint: str, kind: str):
    stat = _get(report, ("instruction_following", "by_type", constraint, kind))
    return stat.get("mean") if isinstance(stat, dict) else None


def _one_run(run: Run, names: ModelNames, findings: Findings) -> list[Html]:
    data = run.files["failures.json"]
    models = {names.name(run, label): r for label, r in (data.get("models") or {}).items() if isinstance(r, dict)}
    if not models:
        return [note(f"{run.name}: failures.json lists no models.")]
    out: list[Html] = [tag("h3", f"Run {run.name}")]
    n = {m: r.get("n_answers") for m, r in models.items()}
    out.append(tag("p", "answers per model: " + ", ".join(f"{m} {num(v)}" for m, v in n.items())
                   + (f"; baseline for length ratios: {data['baseline']}" if data.get("baseline") else ""),
                   cls="meta"))
    rows = []
    for label, path, as_pct, lower in ROWS:
        stats = [_get(r, path) for r in models.values()]
        if all(s is None for s in stats):
            continue
        arrow = "" if lower is None else (" ↓" if lower else " ↑")
        rows.append([label + arrow] + [ci(s, as_pct=as_pct, digits=2) for s in stats])
        if label in SUMMARISED and len(models) > 1:
            findings.metrics.append(Metric(label, {m: _get(r, path) for m, r in models.items()},
                                           higher_is_better=not lower))
    out.append(table(["metric (↓ lower is better, ↑ higher)"] + [names.cell(m) for m in models], rows))
    plotted = [(label, path) for label, path, *_ in ROWS if label in PLOTTED]
    out.append(grouped_bars([label.replace("instruction following, ", "IF ") for label, _ in plotted],
                            {m: [_get(r, p) for _, p in plotted] for m, r in models.items()}, names.colors,
                            "share of answers", "Failure rates with bootstrap 95% CIs"))
    out.append(grouped_bars(["words per answer"], {m: [_get(r, ("verbosity", "words_per_answer"))]
                                                   for m, r in models.items()}, names.colors, "words",
                            "Verbosity: mean words per answer with bootstrap 95% CI", ylim=None))
    by_type = sorted({t for r in models.values() for t in (_get(r, ("instruction_following", "by_type")) or {})})
    if by_type:
        out.append(tag("h4", "Instruction following by constraint type (strict / loose)"))
        out.append(table(["constraint"] + [names.cell(m) for m in models],
                         [[t] + [f"{pct(_mean(r, t, 'strict'))} / {pct(_mean(r, t, 'loose'))}"
                                 for r in models.values()] for t in by_type]))
    out += [tag("p", f"Method, {k.replace('_', ' ')}: {json.dumps(v, ensure_ascii=False)}", cls="meta")
            for k, v in (data.get("method") or {}).items()]
    langs = {m: _get(r, ("language_mixing", "foreign_languages")) or {} for m, r in models.items()}
    if any(langs.values()):
        out.append(tag("p", "foreign languages detected (sentences): " + "; ".join(
            f"{m}: " + ", ".join(f"{k} {v}" for k, v in sorted(d.items())) for m, d in langs.items() if d),
            cls="meta"))
    return out


def failures_section(runs: list[Run], names: ModelNames, findings: Findings) -> list[Html]:
    with_f = [r for r in runs if r.stage == "eval" and "failures.json" in r.files]
    if not with_f:
        return [note("No failure-mode analysis (failures.json) in the given eval runs: run `definemed eval failures`.")]
    out: list[Html] = [tag("p", "Language mixing: sentences identified as another language than German. Verbosity: "
                                "words per answer and answers cut off at the token limit. Repetition: duplicate word "
                                "4-grams and degenerate loops. Template leakage: chat markup in the answer. "
                                "Instruction following: IFEval-style checks, strict and loose.")]
    for run in with_f:
        out += _one_run(run, names, findings)
    return out


def _answer_block(model: str, names: ModelNames, item_id, prompt, answer, extra: str = "") -> Html:
    head = join([names.cell(model), f"  item {item_id}" + (f" — {extra}" if extra else "")])
    parts = [tag("div", head, cls="meta")]
    if prompt:
        parts.append(tag("div", join([tag("b", "Prompt: "), str(prompt)[:400]]), cls="meta"))
    parts.append(tag("div", answer, cls="answer"))
    return join(parts)


def examples_section(runs: list[Run], names: ModelNames) -> list[Html]:
    evals = [r for r in runs if r.stage == "eval"]
    mixed, verbose, other = [], [], []
    for run in evals:
        prompts = {(lab, a.get("id")): a.get("prompt") for lab, rows in run.answers.items() for a in rows}
        count: dict[tuple[str, str], int] = {}
        for e in run.files.get("failures_examples.jsonl", []):
            label, kind = str(e.get("model", "?")), str(e.get("kind", "?"))
            count[(label, kind)] = count.get((label, kind), 0) + 1
            if count[(label, kind)] > EXAMPLES_PER_MODEL:
                continue
            detail = e.get("detail")
            if kind == "language_mixing" and isinstance(detail, list):
                extra = "non-German: " + " | ".join(f"[{d.get('lang')}] {d.get('sentence')}" for d in detail
                                                     if isinstance(d, dict))
            else:
                extra = f"{kind}: {detail}"
            block = _answer_block(names.name(run, label), names, e.get("id"), prompts.get((label, e.get("id"))),
                                  e.get("answer", ""), extra)
            (mixed if kind == "language_mixing" else other).append(block)
        for label, rows in run.answers.items():
            longest = sorted(rows, key=lambda a: len(str(a.get("answer", "")).split()), reverse=True)
            for a in longest[:2]:
                words = len(str(a.get("answer", "")).split())
                extra = f"{words} words" + (", hit the token limit" if a.get("hit_limit") else "")
                verbose.append(_answer_block(names.name(run, label), names, a.get("id"), a.get("prompt"),
                                             a.get("answer", ""), extra))
    if not evals or not (mixed or verbose or other):
        return [note("No answers or failure examples in the given runs (answers/*.jsonl, failures_examples.jsonl).")]
    out: list[Html] = [tag("p", "Model answers, shown verbatim as text (truncated to 500 characters in "
                                "failures_examples.jsonl).", cls="meta")]
    out += [tag("h3", "Mixed-language answers")] + (mixed or [note("No mixed-language answers recorded.")])
    out += [tag("h3", "Longest answers per model")] + (verbose or [note("No answers.")])
    if other:
        out.append(details(f"Other failure examples ({len(other)}): loops, template leakage, failed constraints, "
                           f"missing referral", join(other)))
    return out
