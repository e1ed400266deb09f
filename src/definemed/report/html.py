"""HTML building blocks of the report: escaping, tables, numbers with CIs, notes, the page.

Everything that comes from a run directory is untrusted text (model answers, prompts, labels,
configs): it goes through `esc` and nowhere else. Builders here take plain strings that are
escaped, or `Html` values that are already markup (built by these functions or by the plots).
The page is self-contained: inline CSS, no scripts, no external fonts, images or links.
"""

from __future__ import annotations

import html
import math
from typing import Iterable, Sequence


class Html(str):
    """Markup that is already safe to insert (built here or by the plot module)."""


def esc(value) -> Html:
    """Any value as escaped text (quotes too: safe in attributes)."""
    if isinstance(value, Html):
        return value
    return Html(html.escape("" if value is None else str(value), quote=True))


def join(parts: Iterable[str]) -> Html:
    return Html("".join(p if isinstance(p, Html) else esc(p) for p in parts))


def tag(name: str, body="", cls: str | None = None, **attrs) -> Html:
    extra = "".join(f' {k.rstrip("_").replace("_", "-")}="{esc(v)}"' for k, v in attrs.items() if v is not None)
    c = f' class="{esc(cls)}"' if cls else ""
    inner = join(body) if isinstance(body, (list, tuple)) else esc(body)
    return Html(f"<{name}{c}{extra}>{inner}</{name}>")


def num(x, digits: int = 3) -> str:
    if x is None or (isinstance(x, float) and math.isnan(x)):
        return "–"
    if isinstance(x, bool):
        return "yes" if x else "no"
    if isinstance(x, int):
        return f"{x:,}"
    if isinstance(x, float):
        return f"{x:,.{digits}f}" if abs(x) < 1e4 else f"{x:,.0f}"
    return str(x)


def pct(x) -> str:
    return "–" if x is None or (isinstance(x, float) and math.isnan(x)) else f"{100 * x:.1f}%"


def ci(stat: dict | None, as_pct: bool = False, digits: int = 3) -> Html:
    """``mean [low, high]`` of a {"mean", "ci_low", "ci_high", "n"} rate, the CI in small grey text."""
    if not isinstance(stat, dict) or stat.get("mean") is None:
        return esc("–")
    f = pct if as_pct else (lambda v: num(v, digits))
    mean = f(stat.get("mean"))
    lo, hi = stat.get("ci_low"), stat.get("ci_high")
    if lo is None or hi is None or (isinstance(lo, float) and math.isnan(lo)):
        return esc(mean)
    return Html(f"{esc(mean)} <span class=\"ci\">[{esc(f(lo))}, {esc(f(hi))}]</span>")


def table(headers: Sequence, rows: Iterable[Sequence], cls: str = "data", caption: str | None = None) -> Html:
    head = tag("tr", [tag("th", h) for h in headers])
    body = [tag("tr", [tag("td", c) for c in row]) for row in rows]
    cap = [tag("caption", caption)] if caption else []
    return tag("table", cap + [tag("thead", [head]), tag("tbody", body)], cls=cls)


def swatch(color: str) -> Html:
    return Html(f'<span class="swatch" style="background:{esc(color)}"></span>')


def model_cell(label: str, color: str) -> Html:
    return join([swatch(color), tag("span", label, cls="model")])


def note(text, kind: str = "note") -> Html:
    """A grey note (kind "note"), a yellow warning ("warn") or a green finding ("good")."""
    return tag("p", text, cls=f"callout {kind}")


def section(anchor: str, title: str, body: Sequence) -> Html:
    return tag("section", [tag("h2", title)] + list(body), id=anchor)


def details(summary: str, body) -> Html:
    return tag("details", [tag("summary", summary), body])


def pre(text: str) -> Html:
    return tag("pre", text)


CSS = """
:root { --fg:#1d2330; --muted:#667085; --line:#d8dde6; --bg:#ffffff; --alt:#f6f8fb; }
* { box-sizing: border-box; }
body { font-family: system-ui, -apple-system, "Segoe UI", Roboto, "Helvetica Neue", Arial, sans-serif;
       color: var(--fg); background: var(--bg); margin: 0; line-height: 1.45; }
main { max-width: 1100px; margin: 0 auto; padding: 24px 28px 64px; }
h1 { font-size: 1.7em; margin: 0.2em 0; } h2 { border-bottom: 2px solid var(--line); padding-bottom: 4px;
     margin-top: 2.2em; } h3 { margin-top: 1.5em; }
.sub { color: var(--muted); margin-top: 0; }
nav { font-size: 0.92em; margin: 10px 0 0; } nav a { margin-right: 14px; color: #2b59c3; text-decoration: none; }
table.data { border-collapse: collapse; margin: 10px 0 16px; font-size: 0.92em; }
table.data th, table.data td { border-bottom: 1px solid var(--line); padding: 5px 10px; text-align: left;
     vertical-align: top; }
table.data th { background: var(--alt); font-weight: 600; }
table.data tbody tr:nth-child(even) { background: #fbfcfe; }
caption { text-align: left; color: var(--muted); padding-bottom: 4px; }
.ci { color: var(--muted); font-size: 0.88em; white-space: nowrap; }
.swatch { display: inline-block; width: 11px; height: 11px; border-radius: 2px; margin-right: 6px;
          vertical-align: baseline; }
.model { font-weight: 600; }
.callout { padding: 8px 12px; border-radius: 6px; border-left: 4px solid; }
.callout.note { background: #f3f4f6; border-color: #9ca3af; color: #374151; }
.callout.warn { background: #fff7e0; border-color: #e0a100; }
.callout.good { background: #eaf7ee; border-color: #2f9e55; }
ul.summary li { margin: 4px 0; }
figure { margin: 8px 0 18px; } figure svg { max-width: 100%; height: auto; }
figcaption { color: var(--muted); font-size: 0.88em; }
.answer { white-space: pre-wrap; background: var(--alt); border: 1px solid var(--line); border-radius: 6px;
          padding: 8px 10px; margin: 4px 0 14px; font-size: 0.9em; max-height: 18em; overflow: auto; }
.meta { color: var(--muted); font-size: 0.88em; }
pre { background: var(--alt); border: 1px solid var(--line); border-radius: 6px; padding: 10px;
      overflow: auto; font-size: 0.85em; }
details { margin: 6px 0; } summary { cursor: pointer; font-weight: 600; }
footer { color: var(--muted); font-size: 0.85em; margin-top: 3em; }
"""


def page(title: str, subtitle: str, nav: list[tuple[str, str]], body: Sequence) -> str:
    """The whole document: one file, no external resources, no scripts."""
    links = tag("nav", [tag("a", text, href=f"#{anchor}") for anchor, text in nav])
    return ("<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n"
            "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n"
            "<meta http-equiv=\"Content-Security-Policy\" content=\"default-src 'none'; "
            "style-src 'unsafe-inline'; img-src data:\">\n"
            f"<title>{esc(title)}</title>\n<style>{CSS}</style>\n</head>\n<body>\n<main>\n"
            f"{tag('h1', title)}\n{tag('p', subtitle, cls='sub')}\n{links}\n"
            + "\n".join(body) + "\n</main>\n</body>\n</html>\n")
