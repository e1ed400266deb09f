"""The printed sweep table of a merge run (rich, on stdout)."""

from __future__ import annotations

from typing import Optional

from rich.table import Table
from rich.text import Text

from definemed.console import out


def _fmt(x: Optional[float], spec: str) -> str:
    return "–" if x is None else format(x, spec)


def sweep_table(metrics: dict) -> Table:
    """Parents and merged models ordered by t: medical perplexity, instruction following, checks."""
    dtypes = sorted({r["checks"]["dtype"] for r in metrics.get("points", []) if r.get("checks")})
    t = Table(title=f"Merge sweep: {metrics.get('method', '?')}, {', '.join(dtypes) or '?'}; "
                    "t = share of the CPT model",
              caption="PPL: German medical test documents (lower is better). IF: share of n instruction "
                      "constraints passed, strict/loose. Green: best merged model.")
    for col, justify in (("model", "left"), ("t", "right"), ("PPL", "right"), ("IF", "right"),
                         ("n", "right"), ("params", "right"), ("check", "left")):
        t.add_column(col, justify=justify, no_wrap=True)
    rows = [(r, True) for r in metrics.get("parents", [])] + [(r, False) for r in metrics.get("points", [])]
    rows.sort(key=lambda item: (item[0]["t"] is None, item[0]["t"] or 0.0, not item[1]))
    best_ppl, best_if = metrics.get("best_medical_ppl"), metrics.get("best_if_strict")
    for r, is_parent in rows:
        ev, checks = r.get("eval") or {}, r.get("checks") or {}
        ppl, strict = _fmt(ev.get("medical_ppl"), ".1f"), _fmt(ev.get("if_strict"), ".2f")
        if not is_parent and r["label"] == best_ppl:
            ppl = f"[bold green]{ppl}[/]"
        if not is_parent and r["label"] == best_if:
            strict = f"[bold green]{strict}[/]"
        if is_parent:
            name, status = f"[dim]{r['label']} (parent)[/]", ""
        else:
            name, status = r["label"], "[green]ok[/]" if checks.get("ok") else "[red]failed[/]"
        t.add_row(Text(name), _fmt(r["t"], "g"), ppl, f"{strict}/{_fmt(ev.get('if_loose'), '.2f')}",
                  str(ev.get("constraints", "–")), f"{checks['parameters'] / 1e6:,.1f}M" if checks else "",
                  status)
    return t


def print_sweep(metrics: dict, output_dir=None) -> None:
    out.print(sweep_table(metrics))
    if output_dir is not None:
        out.print(f"Merged models: {output_dir}/t<value>/   table: {output_dir}/sweep.json")
