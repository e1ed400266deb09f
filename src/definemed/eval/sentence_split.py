"""Sentence splitting for instruction checks: IFEval's rule-based splitter, extended for German.

The steps of ``split_into_sentences`` in IFEval's ``instructions_util.py`` (lm-eval
``tasks/ifeval``) are kept in order: protect the periods of known prefixes and abbreviations,
web domains, decimals (``0.5``), ellipses, single letters (``z. B.``, ``d. h.``) and dotted
acronyms (``p.o.``, ``i.v.``), then cut after every remaining ``.``, ``!`` and ``?``.

Extensions for German (named in `definemed.eval.ifeval.DEVIATIONS`):

- ``GERMAN_ABBREVIATIONS``: multi-letter abbreviations of German (medical) writing (``ca.``,
  ``bzw.``, ``ggf.``, ``Tbl.``, ``Dr. med.``, months ...); IFEval knows only Mr, St, Mrs, Ms, Dr
  (and Inc, Ltd, Jr, Sr, Co);
- single letters include umlauts (``o. Ä.``);
- ordinal numbers: a period after a number is not a sentence end when a preposition or article
  comes before (``am 3. Tag``), or a month or a lower-case word comes after (``12. März``).

IFEval's own sentence *count* (``NumberOfSentences``) uses nltk's English punkt model; that needs
separately downloaded data and knows no German abbreviations, so we count with this splitter.
"""

from __future__ import annotations

import re

_L = "A-Za-zÄÖÜäöüß"
_ALPHA = f"([{_L}])"
_PREFIXES = r"(Mr|St|Mrs|Ms|Dr)[.]"
_SUFFIXES = "(Inc|Ltd|Jr|Sr|Co)"
_STARTERS = (r"(Mr|Mrs|Ms|Dr|Prof|Capt|Cpt|Lt|He\s|She\s|It\s|They\s|Their\s|Our\s|We\s|But\s|However\s|That\s|"
             r"This\s|Wherever)")
_ACRONYMS = "([A-Z][.][A-Z][.](?:[A-Z][.])?)"
_WEBSITES = "[.](com|net|org|io|gov|edu|me)"
_DIGITS = "([0-9])"
_MULTIPLE_DOTS = r"\.{2,}"

MONTHS = ("Januar|Jänner|Februar|März|April|Mai|Juni|Juli|August|September|Oktober|November|Dezember|"
          "Jan|Feb|Mär|Apr|Jun|Jul|Aug|Sep|Sept|Okt|Nov|Dez")
GERMAN_ABBREVIATIONS = (
    "ca bzw ggf evtl inkl exkl usw etc vs Nr Std Tbl Tabl Kps Supp Amp Inj Lsg Drg Prof med Hr Fr Pat Patn "
    "mind max bzgl ggü vgl sog Abb Tab Kap Jh Mio Mrd Tsd zzgl abzgl allg eigtl einschl gem insb tgl "
    "bds li re Str Dipl Hrsg Anm Bd Mo Di Mi Do Sa Jan Feb Mär Apr Aug Sep Sept Okt Nov Dez"
).split()  # not "min" or "Mai": "alle 5 min." and "im Mai." end sentences more often than not
_GERMAN = re.compile(r"(?<![\w.])(" + "|".join(sorted(set(GERMAN_ABBREVIATIONS), key=len, reverse=True)) + r")\.")
_ORDINAL_AFTER = re.compile(r"(?i:\b(?:am|ab|vom|zum|bis|seit|im|in|dem|den|der|des|die|das|jeden|jedem|jede)\s+)"
                            r"(\d{1,3})\.(?=\s)")
_ORDINAL_BEFORE = re.compile(r"\b(\d{1,3})\.(?=\s+(?:(?:" + MONTHS + r")\b|[a-zäöüß]))")


def split_into_sentences(text: str) -> list[str]:
    """IFEval's ``split_into_sentences`` with the German extensions of this module."""
    text = " " + text + "  "
    text = text.replace("\n", " ")
    text = re.sub(_PREFIXES, "\\1<prd>", text)
    text = _GERMAN.sub("\\1<prd>", text)  # extension
    text = _ORDINAL_AFTER.sub(lambda m: m.group(0).replace(".", "<prd>"), text)  # extension
    text = _ORDINAL_BEFORE.sub("\\1<prd>", text)  # extension
    text = re.sub(_WEBSITES, "<prd>\\1", text)
    text = re.sub(_DIGITS + "[.]" + _DIGITS, "\\1<prd>\\2", text)
    text = re.sub(_MULTIPLE_DOTS, lambda match: "<prd>" * len(match.group(0)) + "<stop>", text)
    if "Ph.D" in text:
        text = text.replace("Ph.D.", "Ph<prd>D<prd>")
    text = re.sub(r"\s" + _ALPHA + "[.] ", " \\1<prd> ", text)
    text = re.sub(_ACRONYMS + " " + _STARTERS, "\\1<stop> \\2", text)
    text = re.sub(_ALPHA + "[.]" + _ALPHA + "[.]" + _ALPHA + "[.]", "\\1<prd>\\2<prd>\\3<prd>", text)
    text = re.sub(_ALPHA + "[.]" + _ALPHA + "[.]", "\\1<prd>\\2<prd>", text)
    text = re.sub(" " + _SUFFIXES + "[.] " + _STARTERS, " \\1<stop> \\2", text)
    text = re.sub(" " + _SUFFIXES + "[.]", " \\1<prd>", text)
    text = re.sub(" " + _ALPHA + "[.]", " \\1<prd>", text)
    if "”" in text:
        text = text.replace(".”", "”.")
    if '"' in text:
        text = text.replace('."', '".')
    if "!" in text:
        text = text.replace('!"', '"!')
    if "?" in text:
        text = text.replace('?"', '"?')
    text = text.replace(".", ".<stop>")
    text = text.replace("?", "?<stop>")
    text = text.replace("!", "!<stop>")
    text = text.replace("<prd>", ".")
    sentences = [s.strip() for s in text.split("<stop>")]
    if sentences and not sentences[-1]:
        sentences = sentences[:-1]
    return sentences


def count_sentences(text: str) -> int:
    return len(split_into_sentences(text))
