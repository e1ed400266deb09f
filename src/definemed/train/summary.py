"""Printed summary of a training run."""

from __future__ import annotations

from rich.table import Table
from rich.text import Text

from definemed.console import out


def print_train_summary(metrics: dict) -> None:
    if not metrics:  # non-main DDP processes print nothing
        return
    start, end = metrics.get("heldout_ppl_start") or {}, metrics.get("heldout_ppl_end") or {}
    t = Table(title=f"Held-out perplexity before/after {metrics['steps']} steps, {metrics['tokens']:,} tokens")
    for col in ("set", "start", "end", "change"):
        t.add_column(col, justify="left" if col == "set" else "right")
    for name, e in end.items():
        s = start.get(name)
        t.add_row(Text(name), f"{s:.2f}", f"{e:.2f}", f"{(e - s) / s:+.1%}" if s else "–")
    out.print(t)
    out.print(f"final training loss {metrics['final_loss']:.4f}")
