"""Verifiable instruction-following checks, strict and loose, after IFEval (Zhou et al., 2023).

Reference: lm-eval's ``tasks/ifeval`` (``instructions.py``, ``instructions_util.py``,
``utils.py``). As there, a check fails on an empty (white-space) answer, and *loose* mode passes
a constraint if any of IFEval's 8 variants of the answer passes: the answer, without its first
line, without its last line, without both, and each of these four with every ``*`` removed
(`loose_variants`). Each constraint type of `definemed.data.schemas` has one checker:

- ``bullet_count``: IFEval's ``detectable_format:number_bullet_lists`` (lines ``* x`` or ``- x``)
  plus ``•`` bullets; exactly n.
- ``max_sentences``: at most n sentences by `definemed.eval.sentence_split`.
- ``max_words`` / ``min_words``: at most / at least n words (`words`).
- ``language``: the whole answer's language is the one asked; undecidable counts as followed.
- ``include_keywords``: every keyword occurs as a whole word, case-insensitive.
- ``exclude_keywords``: IFEval's ``keywords:forbidden_words`` (no keyword as a whole word).
- ``ends_with``: IFEval's ``startend:end_checker`` (strip, strip quotes, case-insensitive).
- ``starts_with``: the same rule at the start.
- ``no_commas``: IFEval's ``punctuation:no_comma``.
- ``numbered_list`` (1., 2., ... n in order) and ``sections`` (n lines starting with the marker,
  e.g. ``###``) have no IFEval counterpart.

Where we differ from IFEval, `DEVIATIONS` says so (failures.json shows it in its method section).
IFEval's case rules (``change_case:*``) have no constraint type here: our instruction set asks for
none, and IFEval's versions are English-only (they also require langdetect to say "en").
"""

from __future__ import annotations

import re
from typing import Callable

from definemed.eval.sentence_split import count_sentences

REFERENCE = "IFEval (Zhou et al., 2023) as in lm-eval tasks/ifeval: strict and loose (8 answer variants)"
DEVIATIONS = [
    "sentences: IFEval's rule-based split_into_sentences with German abbreviations, umlaut initials and "
    "ordinal numbers (IFEval counts with nltk's English punkt model)",
    "include_keywords: whole words, like IFEval's forbidden_words (IFEval's keywords:existence matches "
    "substrings, so 'Eisen' would be found in 'Reisen')",
    "words: hyphenated compounds count once (Long-Covid-Ambulanz); IFEval's \\w+ counts each part",
    "max_words/max_sentences: at most n (IFEval's 'less than': fewer than n)",
    "language: lingua over de/en/fr/es/it/nl/tr/pl (IFEval: langdetect)",
    "bullet_count also counts • bullets",
    "starts_with: IFEval's end_checker rule at the start (IFEval has no start check)",
]

_BULLETS = (re.compile(r"^\s*\*[^\*].*$", re.MULTILINE), re.compile(r"^\s*-.*$", re.MULTILINE),
            re.compile(r"^\s*•.*$", re.MULTILINE))
_NUMBERED = re.compile(r"^\s*(\d+)[.)]\s+\S")


def words(text: str) -> list[str]:
    return re.findall(r"\w+(?:[-'’]\w+)*", text)


def _whole_word(keyword: str, text: str) -> bool:
    # IFEval's forbidden_words test (\b...\b, case-insensitive), with the keyword escaped (IFEval
    # uses it as a regex) and look-arounds so that keywords ending in ")" or "." work too.
    return re.search(r"(?<!\w)" + re.escape(keyword) + r"(?!\w)", text, flags=re.IGNORECASE) is not None


def _lang_ok(text: str, lang: str) -> bool:
    from definemed.eval.langid import detect_language

    got = detect_language(text)
    return got is None or got == lang  # IFEval: undetectable language counts as followed


def _edge(text: str) -> str:
    return text.strip().strip('"').lower()


CHECKS: dict[str, Callable] = {
    "bullet_count": lambda t, c: sum(len(rx.findall(t)) for rx in _BULLETS) == c.n,
    "numbered_list": lambda t, c: [int(m.group(1)) for line in t.splitlines()
                                   if (m := _NUMBERED.match(line))] == list(range(1, c.n + 1)),
    "max_words": lambda t, c: len(words(t)) <= c.n,
    "min_words": lambda t, c: len(words(t)) >= c.n,
    "max_sentences": lambda t, c: count_sentences(t) <= c.n,
    "language": lambda t, c: _lang_ok(t, c.lang),
    "include_keywords": lambda t, c: all(_whole_word(k, t) for k in c.keywords),
    "exclude_keywords": lambda t, c: not any(_whole_word(k, t) for k in c.keywords),
    "starts_with": lambda t, c: _edge(t).startswith(c.text.strip().lower()),
    "ends_with": lambda t, c: _edge(t).endswith(c.text.strip().lower()),
    "no_commas": lambda t, c: not re.search(r"\,", t),
    "sections": lambda t, c: sum(line.lstrip().startswith(c.marker) for line in t.splitlines()) == c.n,
}


def loose_variants(response: str) -> list[str]:
    """IFEval's ``test_instruction_following_loose`` variants, in its order."""
    r = response.split("\n")
    first, last, both = "\n".join(r[1:]).strip(), "\n".join(r[:-1]).strip(), "\n".join(r[1:-1]).strip()
    return [response, response.replace("*", ""), first, last, both,
            first.replace("*", ""), last.replace("*", ""), both.replace("*", "")]


def _passes(check: Callable, text: str, c) -> bool:
    return bool(text.strip()) and bool(check(text, c))


def check_constraints(answer: str, constraints) -> list[dict]:
    """One result per constraint: {"type", "strict", "loose"}."""
    results = []
    variants = loose_variants(answer)
    for c in constraints:
        check = CHECKS[c.type]
        strict = _passes(check, answer, c)
        loose = any(_passes(check, v, c) for v in variants)
        results.append({"type": c.type, "strict": strict, "loose": loose})
    return results
