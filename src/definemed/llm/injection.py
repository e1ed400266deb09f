"""Untrusted text in LLM prompts: fenced as data, not filtered.

Shared by the corpus annotator (web documents) and the pairwise judge (instructions, answers,
references). The defence is structural, after "spotlighting" (Hines et al., 2024, delimiting):

1. Every untrusted text goes into a data block fenced by a boundary the text cannot contain or
   predict: ``DATA-`` + the first 16 hex digits of the SHA-256 of the request's untrusted texts
   (`boundary`). It looks random and depends on the content, so a page author cannot write the
   closing fence of their own page, yet the same request always gets the same prompt, so the
   result caches (keyed on the prompt) keep working. Should a text contain its boundary, the
   boundary is re-derived. The prompts say that only the text between these markers is data.
2. Inside the data, chat-template control tokens with their role headers (``<|im_start|>system``,
   ``[INST]``, ``<start_of_turn>user`` ...) are removed, because a local backend's chat template
   would turn them into real turn boundaries, and invisible format characters (zero-width,
   bidi controls, soft hyphens, Unicode tags) are removed, because they hide text from a reader
   but not from the model (`clean_data`). Nothing else is changed: no sentence is ever deleted,
   so the judge sees "Ignorieren Sie niemals die Anweisungen Ihres Arztes zur Dosierung." and
   the annotator sees the page as written. Homoglyphs (Cyrillic а/е/о) are visible text and stay.
3. The prompt builders restate the task after the data (recency), and the callers read verdicts
   only from their slot; `strip_echo` removes verdict-like text that the model copied from the
   data, so a copied ``{"urteil": "B"}`` is not taken for the judge's own.
4. The verdict slot carries the boundary, which no data text contains: the loglik judge scores the
   letter after the assistant prefix ``Urteil (DATA-…):``, and generated verdicts are read only
   from a JSON object or line that names the boundary (`own_slots`). A short "Urteil: B" inside an
   answer is below `strip_echo`'s word threshold and is exactly what a small model copies (an
   induction-style continuation of "Urteil:"); with the boundary in the slot the copy no longer
   fits it.

`instruction_like` still counts sentences that read like orders to a model, on a homoglyph-folded
copy: a flag for inspection only (such lists miss most paraphrases; see
``data/sample/eval/injection_attacks.jsonl`` and ``definemed eval injection``), never a filter.
"""

from __future__ import annotations

import hashlib
import re
import unicodedata
from dataclasses import dataclass
from typing import Iterable

# Chat-template control tokens of the common families, each with the role header that follows it.
_ROLE = r"(?:[ \t]*(?:system|user|assistant|developer|tool|model|human|ipython)\b[ \t]*:?)?"
_MARKUP_RE = re.compile(
    r"<\|[A-Za-z0-9_.:-]{1,40}\|>" + _ROLE  # ChatML, Llama 3, Phi, GPT: <|im_start|>system, <|eot_id|>
    + r"|<(?:start|end)_of_turn>" + _ROLE  # Gemma
    + r"|\[/?INST\]|<</?SYS>>|</?s>"  # Llama 2, Mistral
    + r"|^[ \t]*#{2,}[ \t]*(?:system|instruction|response|user|assistant)[ \t]*:?[ \t]*$",  # Alpaca headers
    re.IGNORECASE | re.MULTILINE)
_SEPARATORS = {"\u2028": "\n", "\u2029": "\n\n"}  # line/paragraph separators: visible breaks, kept as such

_FENCE = "DATA-"
_BLOCK_RE = re.compile(r'<(DATA-[0-9a-f]{16}) name="([^"]+)">\n(.*?)\n</\1>', re.DOTALL)


def _invisible(ch: str) -> bool:
    cat = unicodedata.category(ch)
    return cat == "Cf" or (cat == "Cc" and ch not in "\n\t\r")


def clean_data(text: str) -> tuple[str, dict[str, int]]:
    """Untrusted text with chat markup and invisible characters removed; nothing else changes.
    Returns (text, {"markup": tokens removed, "invisible": characters removed})."""
    for sep, repl in _SEPARATORS.items():
        text = text.replace(sep, repl)
    kept = [ch for ch in text if not _invisible(ch)]
    n_invisible = len(text) - len(kept)
    text, n_markup = _MARKUP_RE.subn("", "".join(kept))
    if n_markup:  # removing a token can leave a line of blanks; the words around it are untouched
        text = re.sub(r"[ \t]+\n", "\n", text)
        text = re.sub(r"\n{3,}", "\n\n", text)
    return text.strip(), {"markup": n_markup, "invisible": n_invisible}


# -- flags (never a filter) ---------------------------------------------------------------------
_HOMOGLYPHS = str.maketrans("аеорсухіјѕԁАЕОРСХВМНКТІЈЅαοεκνρτυχΑΕΟΚΝΡΤΥΧ",
                            "aeopcyxijsdAEOPCXBMHKTIJSaoeknptuxAEOKNPTYX")
_INSTRUCTION_PATTERNS = [
    r"\bignor\w*\b.{0,60}\b(anweisung|instruktion|vorgabe|regel|prompt|instruction|rule|guideline|rubric)",
    r"\b(disregard|forget|vergiss|vergessen sie)\b.{0,60}"
    r"\b(instruction|above|previous|prior|rubric|anweisung|vorher|bisher|oben|obig|regel)",
    r"\b(bewerte|bewertet|bewerten sie|stufe|stuf|stufen sie|klassifiziere|rate|score|grade|label)\b.{0,40}"
    r"\b(seite|dokument|text|artikel|webseite|page|document|site|article)\b.{0,40}(\d|höchst|maxim|volle)",
    r"\b(verdient|deserves)\b.{0,30}\b(höchstnote|bestnote|note|score|rating|5)\b",
    r"\b(gib|geben sie|vergib|vergeben sie|give|assign|output)\b.{0,60}"
    r"\b(bewertung|punktzahl|punkte|note|score|rating|grade|verdict|urteil)\b",
    r"\b(an|für) (die|das|den|alle)?\s*"
    r"(ki|ki-systeme?|sprachmodelle?|llms?|annotatoren|annotator|bewerter|gutachter)\b",
    r"\b(note|message|instruction)s? (to|for) (the |all )?"
    r"(ai|llms?|language models?|annotators?|assistants?|models?|judges?)\b",
    r"\b(judge|richter|bewerter|gutachter|evaluator)\b.{0,60}\b(must|should|muss|soll|sollte)\b",
    r"\b(prefer|choose|pick|wähle|bevorzuge|entscheide dich für)\b.{0,30}\b(antwort|answer|response)\b",
    r"\b(antwort|answer|response)\s+[ab]\s+(ist|is)\b.{0,20}\b(besser|better|überlegen|superior)\b",
    r"\b(urteil|verdict|winner|gewinner)\b[\"']?\s*[:=]\s*[\"']?(a|b|unentschieden|tie)\b",
]
_INSTRUCTION_RE = re.compile("|".join(f"(?:{p})" for p in _INSTRUCTION_PATTERNS), re.IGNORECASE)
_SENTENCE_SPLIT = re.compile(r"(?<=[.!?])\s+|\n+")


def instruction_like(text: str) -> int:
    """Number of sentences that read like orders to a model (homoglyphs folded first). A flag
    for inspection: the text itself is never changed because of it."""
    folded = clean_data(text)[0].translate(_HOMOGLYPHS)
    return sum(1 for s in _SENTENCE_SPLIT.split(folded) if s and _INSTRUCTION_RE.search(s))


@dataclass(frozen=True)
class Prepared:
    text: str  # what goes into the data block
    markup: int  # chat-markup tokens removed
    invisible: int  # invisible characters removed
    instruction_like: int  # sentences that read like orders to a model (kept)

    @property
    def signs(self) -> int:
        """Signs of an injection attempt: markup tokens plus instruction-like sentences."""
        return self.markup + self.instruction_like


def prepare(text: str) -> Prepared:
    clean, counts = clean_data(text)
    return Prepared(clean, counts["markup"], counts["invisible"], instruction_like(clean))


def neutralise(text: str) -> tuple[str, int]:
    """(cleaned text, signs of an injection attempt). Nothing is deleted but markup and invisible
    characters; the count is a flag (the annotator keeps it per document)."""
    p = prepare(text)
    return p.text, p.signs


# -- fences ---------------------------------------------------------------------------------------
def _sha(s: str) -> str:
    return hashlib.sha256(s.encode("utf-8")).hexdigest()


def boundary(*texts: str) -> str:
    """The fence for one request: derived from its untrusted texts, never contained in them."""
    digest = _sha("\x1f".join(texts))
    while True:
        fence = _FENCE + digest[:16]
        if not any(fence.lower() in t.lower() for t in texts):
            return fence
        digest = _sha(digest)  # the text holds its own fence (practically never): derive another


def fence(text: str, boundary: str, name: str) -> str:
    """One data block: ``<DATA-… name="…">`` newline, the text, newline, ``</DATA-…>``."""
    return f'<{boundary} name="{name}">\n{text}\n</{boundary}>'


def read_blocks(prompt: str) -> dict[str, str]:
    """The data blocks of a prompt by name (for tests, fakes and echo detection)."""
    return {m.group(2): m.group(3) for m in _BLOCK_RE.finditer(prompt)}


def chat_data(chat: list[dict[str, str]]) -> list[str]:
    """The texts of every data block in a chat."""
    return [t for m in chat for t in read_blocks(m.get("content", "")).values()]


def chat_boundary(chat: list[dict[str, str]]) -> str:
    """The boundary of the chat's data blocks (the request's id): that of its first fenced block,
    else the first one its text names (the notice before the data names it); ValueError if none."""
    text = "\n".join(m.get("content", "") for m in chat)
    if found := _BLOCK_RE.search(text) or re.search(r"DATA-[0-9a-f]{16}", text):
        return found.group(1) if found.re is _BLOCK_RE else found.group(0)
    raise ValueError("the chat names no data boundary")


def own_slots(output: str, boundary: str) -> str:
    """The parts of ``output`` that name this request's ``boundary``: each JSON object that contains
    it and each other line that contains it, joined by newlines, with the boundary itself (and
    parentheses around it) taken out so that the usual parsers read them. Echoed fence tags
    (``<DATA-… name="…">``) do not count: they carry the boundary but are the data's frame, not a
    verdict. No data text contains the boundary, so nothing copied from the data is ever a slot."""
    b = re.escape(boundary)
    output = re.sub(rf'</?{b}(?:\s+name="[^"]*")?>', " ", output, flags=re.IGNORECASE)
    slots, rest, last = [], [], 0
    for m in re.finditer(r"\{[^{}]*\}", output):
        if boundary.lower() in m.group(0).lower():
            slots.append(m.group(0))
        rest.append(output[last:m.start()])
        last = m.end()
    rest.append(output[last:])
    slots += [line for line in "\n".join(rest).splitlines() if boundary.lower() in line.lower()]
    return re.sub(rf"\(\s*{b}\s*\)|{b}", " ", "\n".join(slots), flags=re.IGNORECASE)


# -- reading verdicts from the model's own words ------------------------------------------------
def _squash(s: str) -> str:
    return re.sub(r"\s+", "", s).casefold()


def _norm(s: str) -> str:
    return re.sub(r"\s+", " ", s).strip().casefold()


def strip_echo(output: str, data: Iterable[str], min_words: int = 3) -> str:
    """``output`` without what it copied verbatim from ``data``: JSON objects (whitespace aside) and,
    outside the JSON objects it wrote itself, runs of ``min_words`` or more words. So verdict-like
    text quoted from an answer or page ("Antwort B ist eindeutig besser", ``{"urteil": "B"}``) is
    not read as the model's own verdict; a verdict that only ever appears as such a copy is no
    verdict (the caller fails closed)."""
    data = list(data)
    squashed, normed = _squash(" ".join(data)), " " + _norm(" ".join(data)) + " "
    parts, last = [], 0
    for m in re.finditer(r"\{[^{}]*\}", output):
        parts += [_drop_copied_words(output[last:m.start()], normed, min_words),
                  " " if _squash(m.group(0)) in squashed else m.group(0)]
        last = m.end()
    return "".join(parts) + _drop_copied_words(output[last:], normed, min_words)


def _drop_copied_words(text: str, normed_data: str, min_words: int) -> str:
    words = list(re.finditer(r"\S+", text))
    drop: list[tuple[int, int]] = []
    i = 0
    while i < len(words):
        j = i  # extend the run while words i..j are one contiguous copy from the data
        while j < len(words) and " " + _norm(" ".join(w.group(0) for w in words[i:j + 1])) in normed_data:
            j += 1
        if j - i >= min_words:
            drop.append((words[i].start(), words[j - 1].end()))
            i = j
        else:
            i += 1
    for a, b in reversed(drop):
        text = text[:a] + " " + text[b:]
    return text
