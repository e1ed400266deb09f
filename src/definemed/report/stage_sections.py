"""Report sections from the other stages' run directories, each present only when such a run is
given: perplexities (train held-out sets, merge sweep, demo base-model checks), the training
run, the merge sweep table, the corpus statistics, and the exact config of every run.
"""

from __future__ import annotations

from definemed.report.html import Html, details, join, note, num, pct, pre, table, tag
from definemed.report.load import Run
from definemed.report.plots import colors_for, grouped_bars, lines


def _ppl_rows(run: Run) -> list[tuple[str, str, float]]:
    """(model, text set, perplexity) from whatever perplexities a run publishes."""
    rows: list[tuple[str, str, float]] = []
    m = run.metrics
    if run.stage == "train":
        for when, key in (("before CPT", "heldout_ppl_start"), ("after CPT", "heldout_ppl_end")):
            for domain, v in (m.get(key) or {}).items():
                if isinstance(v, (int, float)):
                    rows.append((f"{run.name} {when}", f"held-out {domain}", float(v)))
    if run.stage == "merge":
        sweep = run.files.get("sweep.json") or {}
        for r in (sweep.get("parents") or []) + (sweep.get("points") or []):
            ev = r.get("eval") if isinstance(r, dict) else None
            if isinstance(ev, dict) and isinstance(ev.get("medical_ppl"), (int, float)):
                rows.append((f"{run.name} {r.get('label')} (t={r.get('t')})", "merge eval: medical", ev["medical_ppl"]))
    for name, v in (m.get("perplexity") or {}).items() if isinstance(m.get("perplexity"), dict) else []:
        if isinstance(v, dict) and isinstance(v.get("ppl"), (int, float)):
            model, _, domain = str(name).partition("/")
            rows.append((f"{run.name}: {model}", domain or "documents", float(v["ppl"])))
    return rows


def perplexity_section(runs: list[Run]) -> list[Html]:
    rows = [r for run in runs for r in _ppl_rows(run)]
    if not rows:
        return [note("No perplexities in the given runs (train, merge or demo run directories publish them).")]
    domains = list(dict.fromkeys(d for _, d, _ in rows))
    models = list(dict.fromkeys(m for m, _, _ in rows))
    val = {(m, d): p for m, d, p in rows}
    out = [tag("p", "Token-weighted perplexity on German text (lower is better). Different runs may use different "
                    "documents: compare within a column and a run.", cls="meta"),
           table(["model"] + domains, [[m] + [num(val.get((m, d)), 2) for d in domains] for m in models])]
    return out


def _per_set(counts) -> str:
    """``{"medical": 2}`` → "medical 2" (document counts per held-out set; older runs lack them)."""
    return ", ".join(f"{k} {num(v)}" for k, v in counts.items()) if isinstance(counts, dict) and counts else "–"


def train_section(runs: list[Run]) -> list[Html]:
    out: list[Html] = []
    for run in (r for r in runs if r.stage == "train"):
        m = run.metrics
        out.append(tag("h3", f"Run {run.name}"))
        out.append(table(["steps", "tokens", "final loss", "processes", "sequences per step", "held-out documents",
                          "excluded (in the training data)", "status"],
                         [[num(m.get("steps")), num(m.get("tokens")), num(m.get("final_loss"), 4),
                           num(m.get("world_size")), num(m.get("global_batch_sequences")),
                           _per_set(m.get("heldout_docs")), _per_set(m.get("heldout_overlap_docs")), run.status]]))
        curve = [r for r in run.files.get("metrics.jsonl", []) if "step" in r and "loss" in r]
        if curve:
            out.append(lines({"loss": ([r["step"] for r in curve], [r["loss"] for r in curve])},
                             {"loss": "#0072B2"}, "step", "training loss", "Training loss per logged step"))
    return out


def _finished(runs: list[Run], stage: str, name: str, out: list[Html]):
    """(run, parsed file) for each run of `stage`, each under its own heading in `out`; a run
    without the file (it did not finish) gets a note instead."""
    for run in (r for r in runs if r.stage == stage):
        out.append(tag("h3", f"Run {run.name}"))
        data = run.files.get(name)
        if isinstance(data, dict):
            yield run, data
        else:
            out.append(note(f"{run.name}: no {name} (the {stage} run did not finish)."))


def merge_section(runs: list[Run]) -> list[Html]:
    out: list[Html] = []
    for run, sweep in _finished(runs, "merge", "sweep.json", out):
        out.append(tag("p", f"method {sweep.get('method')}, dtype {sweep.get('dtype')}; t = 0 is the instruct "
                            f"parent, t = 1 the continually pre-trained one."
                            + (f" Held-out documents excluded from the perplexity because a parent was trained on "
                               f"them: {num(sweep['heldout_overlap_docs'])}." if "heldout_overlap_docs" in sweep
                               else ""), cls="meta"))
        rows = sorted([r for r in (sweep.get("parents") or []) + (sweep.get("points") or []) if isinstance(r, dict)],
                      key=lambda r: (r.get("t") is None, r.get("t") or 0))
        body = []
        for r in rows:
            ev, checks = r.get("eval") or {}, r.get("checks") or {}
            problems = "; ".join(map(str, checks.get("problems", [])))
            verdict = "–" if not checks else "ok" if checks.get("ok") else problems
            body.append([r.get("label"), num(r.get("t"), 2), num(ev.get("medical_ppl"), 2), num(ev.get("docs")),
                         pct(ev.get("if_strict")), pct(ev.get("if_loose")), verdict, num(r.get("merge_seconds"), 1)])
        out.append(table(["model", "t", "medical perplexity ↓", "ppl docs", "IF strict ↑", "IF loose ↑", "checks",
                          "merge s"], body))
        pts = [r for r in rows if isinstance((r.get("eval") or {}).get("medical_ppl"), (int, float))]
        if len(pts) > 1:
            out.append(lines({"medical perplexity": ([r["t"] for r in pts], [r["eval"]["medical_ppl"] for r in pts])},
                             {"medical perplexity": "#D55E00"}, "t (0 = instruct, 1 = CPT)", "perplexity",
                             "German medical perplexity along the merge sweep"))
    return out


def corpus_section(runs: list[Run]) -> list[Html]:
    out: list[Html] = []
    for run, stats in _finished(runs, "corpus", "stats.json", out):
        points = stats.get("points") or {}
        # words are counted at every point, tokens only where token_counts asks (default: the output)
        out.append(table(["point", "documents", "words", "tokens"],
                         [[k, num(v.get("documents")), num(v.get("words")), num(v.get("tokens"))]
                          for k, v in points.items() if isinstance(v, dict)]))
        steps = [s for s in stats.get("steps") or [] if isinstance(s, dict)]
        if steps:
            out.append(details(f"Drops by step ({len(steps)} steps)", table(
                ["phase", "step", "in", "out", "dropped", "reasons"],
                [[s.get("phase"), s.get("step"), num(s.get("in")), num(s.get("out")), num(s.get("dropped")),
                  ", ".join(f"{k} {v}" for k, v in (s.get("reasons") or {}).items())] for s in steps])))
        clf = (stats.get("classifier") or {}).get("test_vs_gold")
        if isinstance(clf, dict):
            out.append(tag("p", "classifier on the held-out test split: " + ", ".join(
                f"{k} {num(clf.get(k))}" for k in ("precision", "recall", "f1", "n") if k in clf), cls="meta"))
        hist = stats.get("score_histogram") or {}
        bins, counts = hist.get("bins"), hist.get("counts")
        if isinstance(bins, list) and isinstance(counts, list) and len(bins) == len(counts) + 1 and counts:
            total = sum(counts) or 1
            groups = [f"{bins[k]:.1f}–{bins[k + 1]:.1f}" for k in range(len(counts))]
            out.append(grouped_bars(groups, {"documents": [{"mean": c / total} for c in counts]},
                                    colors_for(["documents"]), "share of documents",
                                    "Classifier medical score histogram", ylim=None))
    return out


def configs_section(runs: list[Run]) -> list[Html]:
    out: list[Html] = []
    for run in runs:
        man = run.manifest
        meta = (f"stage {run.stage}, status {run.status}, seed {man.get('seed')}, started {man.get('started')}, "
                f"finished {man.get('finished')}")
        versions = ", ".join(f"{k} {v}" for k, v in (man.get("versions") or {}).items() if v)
        body = [tag("p", meta, cls="meta"), tag("p", f"versions: {versions}", cls="meta") if versions else ""]
        body.append(pre(run.config_text) if run.config_text is not None else note("no config.yaml"))
        out.append(details(f"{run.path} — config.yaml", join(body)))
        if run.problems:
            out.append(note(f"{run.name}: " + "; ".join(run.problems), "warn"))
    return out
