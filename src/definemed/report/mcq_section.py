"""Report section: multiple-choice accuracy (``mcq.json`` of `definemed eval mcq`).

Per eval run: acc and acc_norm with 95% CIs per model, a bar plot with error bars and the chance
level (the mean of 1/options over the items, from ``mcq/<label>.jsonl``), and the per-subject
breakdown (acc_norm; subjects have few items, so their CIs are wide).
"""

from __future__ import annotations

from pathlib import Path

from definemed.report.html import Html, ci, num, note, pct, table, tag
from definemed.report.load import Run
from definemed.report.models import ModelNames
from definemed.report.plots import grouped_bars
from definemed.report.summary import Findings, Metric


def chance_level(run: Run) -> float | None:
    rows = [r for rs in run.files.get("mcq_items", {}).values() for r in rs if isinstance(r.get("logprobs"), list)]
    rows = [r for r in rows if r["logprobs"]]
    return sum(1 / len(r["logprobs"]) for r in rows) / len(rows) if rows else None


def _one_run(run: Run, names: ModelNames, findings: Findings) -> list[Html]:
    data = run.files["mcq.json"]
    models = {names.name(run, label): r for label, r in data.get("models", {}).items() if isinstance(r, dict)}
    if not models:
        return [note(f"{run.name}: mcq.json lists no models.")]
    dataset = Path(str(data.get("data", "?"))).stem
    n = max((r.get("acc", {}).get("n", 0) for r in models.values()), default=0)
    chance = chance_level(run)
    setting = (f"data {data.get('data', '?')}, {data.get('items', n)} items, {data.get('shots', 0)}-shot, "
               f"target {data.get('target', '?')}, chat template {'on' if data.get('chat_template') else 'off'}"
               + (f", chance level {pct(chance)}" if chance is not None else ""))
    out: list[Html] = [tag("h3", f"{dataset} — run {run.name}")]
    out.append(tag("p", setting, cls="meta"))
    out.append(table(["model", "acc", "acc_norm", "n", "items/s"],
                     [[names.cell(m), ci(r.get("acc"), as_pct=True), ci(r.get("acc_norm"), as_pct=True),
                       num(r.get("acc", {}).get("n")), num(r.get("items_per_s"), 2)] for m, r in models.items()]))
    out.append(grouped_bars(["acc", "acc_norm"], {m: [r.get("acc"), r.get("acc_norm")] for m, r in models.items()},
                            names.colors, "accuracy",
                            f"MCQ accuracy on {dataset} with bootstrap 95% CIs"
                            + ("; dashed line: chance level" if chance is not None else ""), reference=chance))
    subjects = sorted({s for r in models.values() for s in (r.get("per_subject") or {})})
    if subjects:
        rows = []
        for s in subjects:
            per = [(r.get("per_subject") or {}).get(s, {}) for r in models.values()]
            size = max((p.get("acc_norm", {}).get("n", 0) for p in per), default=0)
            rows.append([s, num(size)] + [ci(p.get("acc_norm"), as_pct=True) for p in per])
        out.append(tag("h4", "Per subject (acc_norm)"))
        out.append(table(["subject", "n"] + [names.cell(m) for m in models], rows))
        if len(subjects) > 1:
            out.append(grouped_bars(subjects, {m: [(r.get("per_subject") or {}).get(s, {}).get("acc_norm")
                                                   for s in subjects] for m, r in models.items()},
                                    names.colors, "acc_norm", "acc_norm per subject with bootstrap 95% CIs",
                                    reference=chance))
    for key in ("acc_norm", "acc"):
        findings.metrics.append(Metric(f"MCQ {key} ({dataset}, n={n})", {m: r.get(key) for m, r in models.items()}))
    return out


def mcq_section(runs: list[Run], names: ModelNames, findings: Findings) -> list[Html]:
    with_mcq = [r for r in runs if r.stage == "eval" and "mcq.json" in r.files]
    if not with_mcq:
        return [note("No MCQ results (mcq.json) in the given eval runs: run `definemed eval mcq --out RUN_DIR`.")]
    out = [tag("p", "Accuracy by option log-likelihood as lm-evaluation-harness scores multiple-choice tasks: "
                    "acc picks the option with the highest summed log-probability, acc_norm the highest per "
                    "character. Intervals are bootstrap 95% CIs over items.")]
    for run in with_mcq:
        out += _one_run(run, names, findings)
    return out
