"""The printed summary of a corpus run (tables on stdout)."""

from __future__ import annotations

from rich.table import Table

from definemed.console import out
from definemed.corpus.config import CorpusConfig
from definemed.runs import read_json


def print_summary(metrics: dict, cfg: CorpusConfig) -> None:
    stats = read_json(cfg.output_dir / "stats.json")
    t = Table(title="Documents, words and tokens through the pipeline")
    for col in ("point", "documents", "words", "tokens"):
        t.add_column(col, justify="left" if col == "point" else "right")
    for point, v in stats["points"].items():
        tokens = v.get("tokens")
        t.add_row(point, f"{v['documents']:,}", f"{v.get('words', 0):,}", "–" if tokens is None else f"{tokens:,}")
    out.print(t)

    t = Table(title="Drops by step and reason")
    for col in ("step", "in", "out", "reasons"):
        t.add_column(col, justify="right" if col in ("in", "out") else "left")
    for s in stats["steps"]:
        t.add_row(s["step"], str(s["in"]), str(s["out"]), ", ".join(f"{k}: {v}" for k, v in s["reasons"].items()))
    out.print(t)

    if held := stats.get("heldout_excluded"):
        out.print(f"[bold]Held out[/] (dropped after the reader, not in the shards): {sum(held.values())} documents ("
                  + ", ".join(f"by {k}: {v}" for k, v in held.items()) + ")")
    clf = metrics.get("classifier", {})
    if "test_vs_gold" in clf:
        m = clf["test_vs_gold"]
        out.print(f"[bold]Classifier[/] ({clf['kind']}, trained on {clf['labels_from']} labels, "
                  f"{clf['train_documents']} docs) on the held-out test split vs gold, threshold {m['threshold']}: "
                  f"precision {m['precision']:.3f}  recall {m['recall']:.3f}  F1 {m['f1']:.3f}  (n={m['n']})")
    ann = metrics.get("annotation", {})
    modes = [k for k in ann if isinstance(ann.get(k), dict) and "stats" in ann[k]]
    if modes:
        t = Table(title="LLM annotator vs gold labels (medical relevance)")
        for col in ("mode", "n", "failed", "spearman", "ROC-AUC", "acc@3", "MAE"):
            t.add_column(col, justify="right" if col != "mode" else "left")
        fmt = lambda x: "–" if x is None else f"{x:.3f}"  # noqa: E731
        for mode in modes:
            a = ann[mode].get("agreement_medical", {})
            t.add_row(mode, str(a.get("n", 0)), str(a.get("failed", 0)), fmt(a.get("spearman")),
                      fmt(a.get("roc_auc")), fmt(a.get("accuracy_at_threshold")), fmt(a.get("mean_abs_error")))
        out.print(t)
        for mode in modes:  # failed = no score from the model; left out of every number above
            if ann[mode].get("failed"):
                reasons = ", ".join(f"{k} {v}" for k, v in sorted(ann[mode].get("failed_reasons", {}).items()))
                out.print(f"[yellow]annotator ({mode}): {ann[mode]['failed']} documents "
                          f"failed ({reasons}); they are not labels and are asked again on a rerun[/]")
    comp = stats.get("compliance", {})
    if comp:
        pii, opt, dec = comp.get("pii", {}), comp.get("optout", {}), comp.get("decontamination", {})
        out.print("[bold]Compliance[/]: PII redactions " + (", ".join(f"{k} {v}" for k, v in sorted(
            pii.get("by_type", {}).items())) or "none") + f" (in {pii.get('documents', 0)} documents); "
            f"opt-out drops {sum(opt.values())}" + (f" ({', '.join(f'{k}: {v}' for k, v in opt.items())})" if opt else "")
            + "; contaminated documents " + (", ".join(f"{k} {v}" for k, v in dec.get("by_benchmark", {}).items())
                                             or "none") + f" ({dec.get('dropped', 0)} dropped)")
    out.print(f"Shards: {cfg.output_dir / 'shards'}   stats: {cfg.output_dir / 'stats.json'}   "
              f"dataset card: {cfg.output_dir / 'README.md'}")
