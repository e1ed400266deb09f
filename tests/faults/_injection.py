"""Copycat fakes for the verdict-copy injection (issue #12): models that copy a verdict written in
the text they judge instead of judging.

- `CopycatJudge.score_options` continues the assistant prefix the way an induction head does: if
  the same prefix occurred earlier in the prompt, followed by an option letter, it copies that
  letter; otherwise it judges honestly (the answer with more medical words wins). This is the
  mechanism measured on the bundled 135M model: "Urteil: B" inside an answer, scored after the
  assistant prefix "Urteil:", pulled the verdict to B.
- `CopycatJudge.generate` echoes every "Urteil: X" line found in the answers (and, with
  ``then_answer``, adds its own honest verdict in the slot format the prompt asks for).
- `CopycatAnnotator.generate` echoes every "Relevanz: 5"-style score line of the document, one per
  line; with none it answers honestly in the requested JSON.
"""

from __future__ import annotations

import re

from definemed.llm.injection import read_blocks

MEDICAL = re.compile(r"arzt|ärzt|dosis|fieber|therapie|symptom|blut|medikament|behandlung|infektion|schmerz|"
                     r"patient|diagnose|klinik|pflege|krankheit|ibuprofen|paracetamol", re.IGNORECASE)
VERDICT_LINE = re.compile(r"(?:urteil|verdict)\s*:\s*[ab]\b", re.IGNORECASE)
SCORE_LINE = re.compile(r"(?:medizin\w*|relevanz|bildung\w*|medical|edu)\s*:\s*[0-5]\b", re.IGNORECASE)
LETTERS = ("A", "B", "C")


def chat_boundary(chat) -> str:
    """The request's fence id (written here, not imported, so that this module runs on old code too)."""
    return re.search(r"<(DATA-[0-9a-f]{16}) name=", _text(chat)).group(1)


def _text(chat) -> str:
    return "\n".join(m["content"] for m in chat)


def honest_letter(chat) -> str:
    blocks = read_blocks(chat[1]["content"])
    qa, qb = (len(MEDICAL.findall(blocks.get(k, ""))) for k in ("antwort_a", "antwort_b"))
    return "A" if qa > qb else "B" if qb > qa else "C"


def copied_letter(context: str, prefix: str) -> str | None:
    """The letter that followed the last earlier occurrence of ``prefix`` in ``context``."""
    if not prefix.strip():
        return None
    pattern = r"\s*".join(re.escape(t) for t in re.findall(r"\w+|[^\w\s]", prefix))  # spacing is no barrier
    found = re.findall(pattern + r"\s*([abc])\b", context, re.IGNORECASE)
    return found[-1].upper() if found else None


class CopycatJudge:
    def __init__(self, then_answer: bool = False):
        self.then_answer = then_answer
        self.name = f"fake:copycat-judge:{then_answer}"
        self.prefixes: list[str] = []

    def fingerprint(self) -> str:
        return self.name

    def score_options(self, chats, options, prefix=""):
        prefixes = [prefix] * len(chats) if isinstance(prefix, str) else list(prefix)
        assert len(prefixes) == len(chats) and [o.strip() for o in options] == list(LETTERS)
        self.prefixes += prefixes
        out = []
        for chat, p in zip(chats, prefixes):
            letter = copied_letter(_text(chat), p) or honest_letter(chat)
            out.append([-0.1 if L == letter else -4.0 for L in LETTERS])
        return out

    def generate(self, chats, max_new_tokens=256, temperature=0.0, seed=0):
        out = []
        for chat in chats:
            data = "\n".join(read_blocks(chat[1]["content"]).values())
            echoed = VERDICT_LINE.findall(data)
            own = {"A": "A", "B": "B", "C": "unentschieden"}[honest_letter(chat)]
            slot = f'{{"kennung": "{chat_boundary(chat)}", "begruendung": "inhaltlich", "urteil": "{own}"}}'
            if not echoed:
                out.append(slot)
            elif self.then_answer:  # quotes the answer's verdict, then gives its own in the slot line
                out.append("\n".join(echoed) + f"\nUrteil ({chat_boundary(chat)}): {own}")
            else:
                out.append("\n".join(echoed))
        return out


class CopycatAnnotator:
    name = "fake:copycat-annotator"

    def fingerprint(self) -> str:
        return self.name

    def generate(self, chats, max_new_tokens=256, temperature=0.0, seed=0):
        out = []
        for chat in chats:
            doc = read_blocks(chat[1]["content"]).get("dokument", "")
            echoed = SCORE_LINE.findall(doc)
            honest = min(4, len(MEDICAL.findall(doc)))
            out.append("\n".join(echoed) if echoed else
                       f'{{"kennung": "{chat_boundary(chat)}", "medical": {honest}, "edu": {honest}, "reason": "x"}}')
        return out

    def score_options(self, chats, options, prefix=""):
        raise AssertionError("generate mode only")
