"""Language mixing: which sentences of a German answer are not German?

Rule (per answer):
1. Split into sentences at ``.``, ``!``, ``?``, ``:`` or ``;`` followed by white space, and at line
   breaks.
2. Clean each sentence: drop chat markup (``<|...|>``, ``[INST]``, ``<s>``), markdown bullets,
   list numbers, heading marks, emphasis and backticks, URLs.
3. Skip a sentence that is too short or not prose: fewer than ``MIN_WORDS`` (4) words of at
   least two letters, or letters making up less than half of its non-space characters
   (numbers, dosages, tables, code). Short fragments are where language ID is unreliable.
4. Mask medical Latin and clinical abbreviations (`definemed.eval.medical_latin`: "Ulcus duodeni",
   "Status post", "p.o.", "Z. n."): they are German clinical usage, not another language. With
   fewer than ``MIN_LEFT`` (3) words left the sentence is undecidable and counts as not foreign.
5. Identify the language of the rest with lingua restricted to ``LANGUAGES`` (de, en, fr, es, it, nl).

An answer is *mixed* if any checked sentence is not in the target language; its non-German
word share is the words of non-German sentences over the words of all checked sentences.
The detector is checked on the project's own sentences in
``data/sample/eval/langid_sentences.jsonl`` (`langid_accuracy`, and `foreign_detection`: precision
and recall of "this sentence is not German", recorded in failures.json's method section).
"""

from __future__ import annotations

import re

from definemed.eval.langid import detect_language
from definemed.eval.medical_latin import decidable, mask

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


def sentence_language(sentence: str, languages: tuple[str, ...] = LANGUAGES) -> str | None:
    """Language of one sentence after masking medical Latin; None when undecidable."""
    return detect_language(mask(sentence), languages) if decidable(sentence) else None


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
        lang = sentence_language(s, languages)
        if lang is not None and lang != target:
            foreign_words += w
            foreign.append({"sentence": s[:200], "lang": lang})
    return {"checked": checked, "skipped": skipped, "words": n_words, "foreign_words": foreign_words,
            "foreign": foreign}


def langid_accuracy(rows: list[dict], languages: tuple[str, ...] = LANGUAGES) -> dict:
    """Accuracy of the per-sentence detector on rows {"text", "lang"} over the sentences it decides
    (``undecided``: too few words left after masking medical Latin); lists the wrong decisions."""
    misses, undecided = [], 0
    for r in rows:
        got = sentence_language(r["text"], languages)
        if got is None:
            undecided += 1
        elif got != r["lang"]:
            misses.append({"text": r["text"], "gold": r["lang"], "got": got})
    n = len(rows) - undecided
    return {"n": n, "undecided": undecided, "correct": n - len(misses),
            "accuracy": (n - len(misses)) / n if n else float("nan"), "misses": misses}


def foreign_detection(rows: list[dict], target: str = "de", languages: tuple[str, ...] = LANGUAGES) -> dict:
    """Precision and recall of flagging a sentence as not in ``target`` (the rule of `mixing`) on
    rows {"text", "lang"}: a positive is a sentence whose gold language is not ``target``."""
    tp = fp = fn = 0
    for r in rows:
        got = sentence_language(r["text"], languages)
        flagged, foreign = got is not None and got != target, r["lang"] != target
        tp += flagged and foreign
        fp += flagged and not foreign
        fn += foreign and not flagged
    nan = float("nan")
    return {"n": len(rows), "foreign": tp + fn, "flagged": tp + fp,
            "precision": tp / (tp + fp) if tp + fp else nan, "recall": tp / (tp + fn) if tp + fn else nan}
