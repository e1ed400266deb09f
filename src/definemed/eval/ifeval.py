"""Verifiable instruction-following checks (IFEval-style), strict and loose.

Loose mode, as in IFEval, also accepts an answer if the check passes after removing markdown
emphasis, or the first line (a preamble such as "Gerne, hier ist ..."), or the last line (a
sign-off). Each constraint type of `definemed.data.schemas` has exactly one checker here.
"""

from __future__ import annotations

import re
from typing import Callable

_BULLET = re.compile(r"^\s*[-*•]\s+\S")
_NUMBERED = re.compile(r"^\s*(\d+)[.)]\s+\S")
_SENTENCE_END = re.compile(r"(?<![0-9])[.!?]+(?=\s|$)")


def words(text: str) -> list[str]:
    return re.findall(r"\w+(?:[-'’]\w+)*", text)


def count_sentences(text: str) -> int:
    # Abbreviations common in German medical text would split sentences wrongly.
    cleaned = re.sub(r"\b(z\.\s?B|d\.\s?h|u\.\s?a|ca|bzw|ggf|evtl|Dr|Prof|Std|Tbl|inkl|usw|etc|vs|Nr)\.",
                     lambda m: m.group(0).replace(".", ""), text)
    parts = [p for p in _SENTENCE_END.split(cleaned) if p.strip()]
    return len(parts)


def _lang_ok(text: str, lang: str) -> bool:
    from definemed.eval.langid import detect_language

    return detect_language(text) == lang


CHECKS: dict[str, Callable] = {
    "bullet_count": lambda t, c: sum(bool(_BULLET.match(line)) for line in t.splitlines()) == c.n,
    "numbered_list": lambda t, c: [int(m.group(1)) for line in t.splitlines()
                                   if (m := _NUMBERED.match(line))] == list(range(1, c.n + 1)),
    "max_words": lambda t, c: len(words(t)) <= c.n,
    "min_words": lambda t, c: len(words(t)) >= c.n,
    "max_sentences": lambda t, c: count_sentences(t) <= c.n,
    "language": lambda t, c: _lang_ok(t, c.lang),
    "include_keywords": lambda t, c: all(k.lower() in t.lower() for k in c.keywords),
    "exclude_keywords": lambda t, c: not any(k.lower() in t.lower() for k in c.keywords),
    "starts_with": lambda t, c: t.strip().startswith(c.text),
    "ends_with": lambda t, c: t.strip().endswith(c.text),
    "no_commas": lambda t, c: "," not in t,
    "sections": lambda t, c: sum(line.lstrip().startswith(c.marker) for line in t.splitlines()) == c.n,
}


def _loose_variants(text: str) -> list[str]:
    plain = re.sub(r"\*\*|__|(?<!\w)\*(?!\s)", "", text)
    lines = text.strip().splitlines()
    out = [text, plain]
    if len(lines) > 1:
        out += ["\n".join(lines[1:]), "\n".join(lines[:-1])]
    if len(lines) > 2:
        out.append("\n".join(lines[1:-1]))
    return out


def check_constraints(answer: str, constraints) -> list[dict]:
    """One result per constraint: {"type", "strict", "loose"}."""
    results = []
    for c in constraints:
        check = CHECKS[c.type]
        strict = bool(check(answer, c))
        loose = strict or any(check(v, c) for v in _loose_variants(answer))
        results.append({"type": c.type, "strict": strict, "loose": loose})
    return results
