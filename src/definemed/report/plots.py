"""Plots of the report as inline SVG (matplotlib, Agg backend): crisp at any zoom, text stays text,
and the file stays self-contained. One colour per model, the same in every plot and table.

Labels in plots are model names, MCQ subjects and other user text; matplotlib escapes them as XML
text. They are drawn literally: mathtext (text between two `$`) and usetex are off, so a subject
such as "$\\foo$" or "Kosten in $ und %" neither crashes the report nor is typeset.
SVG output is deterministic (fixed hash salt, no date), so the same runs give the same report.
"""

from __future__ import annotations

import io
import math
from typing import Sequence

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

from definemed.report.html import Html, tag  # noqa: E402

# Colour-blind-friendly (Okabe–Ito), then matplotlib's tab10 for more models.
PALETTE = ("#0072B2", "#E69F00", "#009E73", "#CC79A7", "#56B4E9", "#D55E00", "#F0E442", "#000000",
           "#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2", "#7f7f7f")

STYLE = {"text.parse_math": False, "text.usetex": False,  # user text is literal (see the module docstring)
         "svg.fonttype": "none", "svg.hashsalt": "definemed-report", "font.size": 10,
         "axes.spines.top": False, "axes.spines.right": False, "axes.grid": True, "grid.alpha": 0.3,
         "axes.axisbelow": True}


def colors_for(labels: Sequence[str]) -> dict[str, str]:
    """A colour per model, in order of first appearance."""
    out: dict[str, str] = {}
    for label in labels:
        if label not in out:
            out[label] = PALETTE[len(out) % len(PALETTE)]
    return out


def _svg(fig) -> str:
    buf = io.StringIO()
    fig.savefig(buf, format="svg", bbox_inches="tight", metadata={"Date": None, "Creator": None})
    plt.close(fig)
    text = buf.getvalue()
    return text[text.index("<svg"):]  # drop the XML declaration and DOCTYPE: inline in HTML


def figure(svg: str, caption: str) -> Html:
    return Html(f'<figure class="plot">{svg}{tag("figcaption", caption)}</figure>')


def _finite(x) -> bool:
    return isinstance(x, (int, float)) and not math.isnan(x)


def _err(stats: list[dict | None]) -> tuple[list[float], list[list[float]]]:
    means, lo, hi = [], [], []
    for s in stats:
        m = s.get("mean") if isinstance(s, dict) else None
        m = m if _finite(m) else 0.0
        a = s.get("ci_low") if isinstance(s, dict) else None
        b = s.get("ci_high") if isinstance(s, dict) else None
        means.append(m)
        lo.append(max(m - a, 0.0) if _finite(a) else 0.0)
        hi.append(max(b - m, 0.0) if _finite(b) else 0.0)
    return means, [lo, hi]


def grouped_bars(groups: Sequence[str], series: dict[str, list[dict | None]], colors: dict[str, str],
                 ylabel: str, caption: str, ylim: tuple[float, float] | None = (0, 1),
                 reference: float | None = None) -> Html:
    """Bars per group (metric or subject) and model, with 95% CI error bars.

    ``series[model][k]`` is the {"mean", "ci_low", "ci_high"} of ``groups[k]``."""
    with plt.rc_context(STYLE):
        n = max(len(series), 1)
        width = 0.8 / n
        fig, ax = plt.subplots(figsize=(max(4.5, 1.1 * len(groups) * max(1, n / 2) + 1.5), 3.2))
        for k, (model, stats) in enumerate(series.items()):
            xs = [g + (k - (n - 1) / 2) * width for g in range(len(groups))]
            means, err = _err(stats)
            ax.bar(xs, means, width * 0.92, yerr=err, capsize=3, color=colors.get(model, "#888888"),
                   label=model, error_kw={"elinewidth": 1, "ecolor": "#333333"})
        if reference is not None:
            ax.axhline(reference, color="#999999", linestyle="--", linewidth=1)
        ax.set_xticks(range(len(groups)), groups, rotation=20 if len(groups) > 4 else 0,
                      ha="right" if len(groups) > 4 else "center")
        ax.set_ylabel(ylabel)
        if ylim:
            ax.set_ylim(*ylim)
        ax.grid(axis="x", visible=False)
        ax.legend(frameon=False, fontsize=8, loc="upper left", bbox_to_anchor=(1.0, 1.0))
        return figure(_svg(fig), caption)


def heatmap(labels: Sequence[str], matrix: dict[str, dict[str, float]], caption: str) -> Html:
    """Win-rate of the row model against the column model (0.5 = even)."""
    with plt.rc_context({**STYLE, "axes.grid": False}):
        n = len(labels)
        vals = [[matrix.get(r, {}).get(c, math.nan) if r != c else math.nan for c in labels] for r in labels]
        fig, ax = plt.subplots(figsize=(1.1 * n + 2.4, 0.9 * n + 1.4))
        im = ax.imshow(vals, cmap="RdBu", vmin=0, vmax=1)
        for i in range(n):
            for j in range(n):
                v = vals[i][j]
                ax.text(j, i, "–" if math.isnan(v) else f"{v:.2f}", ha="center", va="center",
                        color="white" if _finite(v) and abs(v - 0.5) > 0.3 else "black", fontsize=10)
        ax.set_xticks(range(n), labels, rotation=30, ha="right")
        ax.set_yticks(range(n), labels)
        ax.set_xlabel("against (column)")
        ax.set_ylabel("model (row)")
        fig.colorbar(im, ax=ax, fraction=0.046, pad=0.04, label="win-rate")
        return figure(_svg(fig), caption)


def forest(rows: list[tuple[str, dict]], colors: dict[str, str], xlabel: str, caption: str,
           reference: float | None = None, xlim: tuple[float, float] | None = None) -> Html:
    """One point with its CI per row (best first, top): Bradley–Terry scores, LC win-rates."""
    with plt.rc_context(STYLE):
        fig, ax = plt.subplots(figsize=(6, 0.45 * len(rows) + 1.0))
        for y, (name, s) in enumerate(reversed(rows)):
            model = name.split(" vs ")[0]
            means, err = _err([s])
            ax.errorbar(means, [y], xerr=err, fmt="o", color=colors.get(model, "#333333"), capsize=3)
        if reference is not None:
            ax.axvline(reference, color="#999999", linestyle="--", linewidth=1)
        ax.set_yticks(range(len(rows)), [name for name, _ in reversed(rows)])
        if xlim:
            ax.set_xlim(*xlim)
        ax.set_xlabel(xlabel)
        ax.grid(axis="y", visible=False)
        return figure(_svg(fig), caption)


def stacked_outcomes(rows: list[tuple[str, int, int, int]], caption: str) -> Html:
    """Wins / ties / losses of model A against model B per pair, as shares (horizontal stacked bars)."""
    with plt.rc_context({**STYLE, "axes.grid": False}):
        fig, ax = plt.subplots(figsize=(6.5, 0.5 * len(rows) + 1.1))
        for y, (name, w, t, l) in enumerate(reversed(rows)):
            total = max(w + t + l, 1)
            left = 0.0
            for value, color, lab in ((w, "#2f9e55", "win"), (t, "#b8bec9", "tie"), (l, "#d1495b", "loss")):
                ax.barh(y, value / total, left=left, color=color, label=lab if y == 0 else None)
                left += value / total
        ax.set_yticks(range(len(rows)), [r[0] for r in reversed(rows)])
        ax.set_xlim(0, 1)
        ax.set_xlabel("share of items (model A's view)")
        ax.legend(frameon=False, fontsize=8, ncol=3, loc="lower left", bbox_to_anchor=(0, 1.0))
        return figure(_svg(fig), caption)


def lines(series: dict[str, tuple[list[float], list[float]]], colors: dict[str, str], xlabel: str, ylabel: str,
          caption: str, logy: bool = False) -> Html:
    """One line per series (training loss over steps, perplexity over the merge sweep)."""
    with plt.rc_context(STYLE):
        fig, ax = plt.subplots(figsize=(6, 3.0))
        for name, (xs, ys) in series.items():
            ax.plot(xs, ys, marker="o" if len(xs) < 20 else None, markersize=4, color=colors.get(name), label=name)
        if logy:
            ax.set_yscale("log")
        ax.set_xlabel(xlabel)
        ax.set_ylabel(ylabel)
        if len(series) > 1:
            ax.legend(frameon=False, fontsize=8)
        return figure(_svg(fig), caption)
