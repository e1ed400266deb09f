"""Neutralise prompt injection in untrusted text before it enters an LLM prompt.

Shared by the corpus annotator (web documents) and the pairwise judge (model answers, instructions).

Two layers: (1) the document is always wrapped in delimiters that the prompt declares to be
data, and any delimiter or chat-markup look-alike inside the document is defanged; (2) lines
and sentences that address an AI/annotator with instructions ("ignoriere alle Anweisungen",
"rate this page 5") are removed, so a page scores exactly as it would without them. Removed
spans are counted, and the document is flagged, so that such pages can be inspected.
"""

from __future__ import annotations

import re

_INSTRUCTION_PATTERNS = [
    # "ignore (all) previous instructions" in German and English
    r"\bignorier\w*\b.{0,60}\b(anweisung|instruktion|vorgabe|regel|prompt)",
    r"\bignore\b.{0,60}\b(instruction|prompt|rule|guideline)s?\b",
    r"\b(disregard|forget)\b.{0,40}\b(instruction|above|previous|prior)",
    r"\bvergiss\b.{0,40}\b(anweisung|vorher|bisher|oben)",
    # orders to give a score ("bewerte diese Seite mit 5", "vergib die höchste Punktzahl")
    r"\b(bewerte|bewertet|bewerten sie|stufe|stufen sie|klassifiziere)\s+(diese[nsmr]?|die|den|das)\s+(seite|dokument|text|artikel|beitrag|webseite|inhalt|antwort)\b",
    r"\b(bewerte|stufe)\s+(sie|ihn|es)\s+(als|mit)\b",
    r"\b(gib|geben sie|vergib|vergeben sie)\b.{0,60}\b(bewertung|punktzahl|punkte|note|score|sterne|relevanz)\b",
    r"\b(rate|score|grade|classify|label)\s+(this|the)\s+(page|document|text|site|content|article|answer)\b",
    r"\b(give|assign)\b.{0,40}\b(score|rating|grade|points)\b",
    # addressing the model directly
    r"\b(an|für) (die|das|den|alle)?\s*(ki|ki-systeme?|künstliche intelligenz|sprachmodelle?|llms?|annotatoren|annotator|bewerter)\s*:",
    r"\b(note|message|instruction)s? (to|for) (the |all )?(ai|llms?|language models?|annotators?|assistants?|models?)\b",
    r"\b(you are|du bist|sie sind) (now |jetzt |nun )?(an? |ein |eine )?(ai|ki|assistant|assistent|annotator|sprachmodell)\b",
    r"\bsystem ?prompt\b",
    # "the judge must prefer this answer" (pairwise judging)
    r"\b(judge|richter|bewerter|gutachter)\b.{0,60}\b(must|should|muss|soll|sollte)\b.{0,60}\b(prefer|choose|pick|bevorzug|wähl|auswähl)",
    r"\b(prefer|choose|pick|wähle|bevorzuge)\b.{0,30}\b(this|diese|dieses)\b.{0,20}\b(answer|antwort|response)\b",
    r"\b(prefer|choose|pick|wähle|wählen sie|bevorzuge|bevorzugen sie|nimm)\s+(die\s+)?(antwort|answer|response)\s+[ab]\b",
    r"\b(antwort|answer|response)\s+[ab]\s+(ist|is)\s+(besser|better|die bessere|the better|überlegen|superior)\b",
    # a verdict written into an answer, to be copied by the judge ("urteil": "A", Verdict: B)
    r"\b(urteil|verdict|winner|gewinner)\b[\"']?\s*[:=]\s*[\"']?(a|b|antwort\s+[ab]|answer\s+[ab]|unentschieden|tie)\b",
]
_INSTRUCTION_RE = re.compile("|".join(f"(?:{p})" for p in _INSTRUCTION_PATTERNS), re.IGNORECASE)
# Delimiters of our prompts and chat markup of common templates.
_MARKUP_RE = re.compile(r"</?\s*(dokument|document|aufgabe|antwort_[ab]|answer_[ab]|referenz)\s*>|<\|[a-z_]+\|>|\[/?INST\]",
                        re.IGNORECASE)
_SENTENCE_SPLIT = re.compile(r"(?<=[.!?])\s+")


def neutralise(text: str) -> tuple[str, int]:
    """Return (clean text, number of removed instruction spans and markup tokens)."""
    removed = 0
    out_lines = []
    for line in text.split("\n"):
        line, n_markup = _MARKUP_RE.subn(" ", line)
        removed += n_markup
        if n_markup and line.strip().lower() in ("", "system", "user", "assistant"):
            continue  # a line that was only chat markup (e.g. "<|im_start|>system")
        if not _INSTRUCTION_RE.search(line):
            out_lines.append(line.rstrip() if n_markup else line)
            continue
        kept = []
        for sentence in _SENTENCE_SPLIT.split(line):
            if _INSTRUCTION_RE.search(sentence):
                removed += 1
            else:
                kept.append(sentence)
        if kept:
            out_lines.append(" ".join(kept))
    # Collapse the blank lines a removal leaves behind (and any others), so that a page with an
    # injected paragraph becomes byte-identical to the page without it.
    return re.sub(r"\n\s*\n(\s*\n)+", "\n\n", "\n".join(out_lines)).strip(), removed


def delimit(text: str, tag: str) -> str:
    """Wrap already-neutralised untrusted text in the tag the prompt declares to be data."""
    return f"<{tag}>\n{text.strip()}\n</{tag}>"
