"""Language mixing: which sentences of a German answer are not German?

Rule (per answer):
1. Split into sentences at ``.``, ``!``, ``?``, ``:`` or ``;`` followed by white space, and at line
   breaks.
2. Clean each sentence: drop chat markup (``<|...|>``, ``[INST]``, ``<s>``), markdown bullets,
   list numbers, heading marks, emphasis and backticks, URLs.
3. Skip a sentence that is too short or not prose: fewer than ``MIN_WORDS`` (4) words of at
   least two letters, or letters making up less than half of its non-space characters
   (numbers, dosages, tables, code). Short fragments are where language ID is unreliable.
4. Identify the language with lingua restricted to ``LANGUAGES`` (de, en, fr, es, it, nl).

An answer is *mixed* if any checked sentence is not in the target language; its non-German
word share is the words of non-German sentences over the words of all checked sentences.
The detector is checked on the project's own sentences in
``data/sample/eval/langid_sentences.jsonl`` (`langid_accuracy`).
"""

from __future__ import annotations

import re

from definemed.eval.langid import detect_language

LANGUAGES = ("de", "en", "fr", "es", "it", "nl")
MIN_WORDS = 4
_SPLIT = re.compile(r"(?<=[.!?:;])\s+|\n+")
_MARKUP = re.compile(r"<\|[^|>]*\|>|\[/?INST\]|</?s>|<<?/?SYS>>?|https?://\S+|`+|\*\*|__")
_LEADER = re.compile(r"^\s*(?:[-*•>]+|\d+[.)]|#+)\s*")
_WORD = re.compile(r"[^\W\d_]{2,}")


def sentences(text: str) -> list[str]:
    out = []
    for raw in _SPLIT.split(text or ""):
        s = _LEADER.sub("", _MARKUP.sub(" ", raw)).strip()
        if s:
            out.append(s)
    return out


def checkable(sentence: str) -> bool:
    letters = sum(ch.isalpha() for ch in sentence)
    visible = sum(not ch.isspace() for ch in sentence)
    return len(_WORD.findall(sentence)) >= MIN_WORDS and visible > 0 and letters / visible >= 0.5


def mixing(text: str, target: str = "de", languages: tuple[str, ...] = LANGUAGES) -> dict:
    """{"checked", "skipped", "words", "foreign_words", "foreign": [{"sentence", "lang"}]} of one answer."""
    checked = skipped = n_words = foreign_words = 0
    foreign = []
    for s in sentences(text):
        if not checkable(s):
            skipped += 1
            continue
        checked += 1
        w = len(_WORD.findall(s))
        n_words += w
        lang = detect_language(s, languages)
        if lang is not None and lang != target:
            foreign_words += w
            foreign.append({"sentence": s[:200], "lang": lang})
    return {"checked": checked, "skipped": skipped, "words": n_words, "foreign_words": foreign_words,
            "foreign": foreign}


def langid_accuracy(rows: list[dict], languages: tuple[str, ...] = LANGUAGES) -> dict:
    """Accuracy of the per-sentence detector on rows {"text", "lang"}; lists the misses."""
    misses = []
    for r in rows:
        got = detect_language(r["text"], languages)
        if got != r["lang"]:
            misses.append({"text": r["text"], "gold": r["lang"], "got": got})
    n = len(rows)
    return {"n": n, "correct": n - len(misses), "accuracy": (n - len(misses)) / n if n else float("nan"),
            "misses": misses}
