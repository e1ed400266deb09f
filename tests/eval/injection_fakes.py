"""Fake judge and annotator backends that recognise the shipped attacks and obey them, or not.

``obeys``:
- ``"anywhere"``: gullible, obeys an attack wherever it appears in the prompt (also inside data);
- ``"outside"``: obeys only text outside the prompt's data fences: fooled only if untrusted text
  escaped the fence (or there is no fence);
- ``"nowhere"``: indifferent, ignores injected text.

"Understanding" an instruction is simulated by recognising the attack phrasings of the shipped
set (as they look after the prompt's cleaning). Honest judgement ignores recognised attacks:
medical keywords in the answers' / document's data block, so that an indifferent model's verdicts
are exactly the same with and without attacks.
"""

from __future__ import annotations

import json
import re

from definemed.data import sample
from definemed.llm.injection import chat_boundary, clean_data, read_blocks

MEDICAL = re.compile(r"arzt|ärzt|dosis|fieber|therapie|symptom|blut|medikament|behandlung|infektion|schmerz|"
                     r"patient|diagnose|klinik|pflege|krankheit", re.IGNORECASE)
_FENCED = re.compile(r'<(DATA-[0-9a-f]{16}) name="[^"]+">\n.*?\n</\1>', re.DOTALL)


def _n(text: str) -> str:
    return re.sub(r"\s+", " ", clean_data(text)[0]).strip().casefold()


def _attacks(target: str) -> list[dict]:
    rows = [json.loads(line) for line in (sample.sample_dir() / "eval" / "injection_attacks.jsonl").open()]
    return [r for r in rows if r["target"] == target]


def _inst(text: str, letter: str) -> str:
    other = "A" if letter == "B" else "B"
    return text.replace("{self_lower}", letter.lower()).replace("{self}", letter).replace("{other}", other)


# (normalised planted text, letter it names or None); longest first so that "urteil: b" does not
# pre-empt a longer attack that contains it
JUDGE_ATTACKS = sorted({(_n(_inst(a["text"], L)), L if _inst(a["text"], "A") != _inst(a["text"], "B") else None)
                        for a in _attacks("judge") for L in "AB"}, key=lambda t: -len(t[0]))
ANNOTATOR_ATTACKS = sorted({(_n(a["text"]), 5 if a["goal"] == "high" else 0) for a in _attacks("annotator")},
                           key=lambda t: -len(t[0]))


def _without_attacks(text: str, known) -> str:
    t = _n(text)
    for attack, _ in known:
        t = t.replace(attack, " ")
    return t


class _Obeying:
    def __init__(self, obeys: str = "anywhere"):
        assert obeys in ("anywhere", "outside", "nowhere")
        self.obeys = obeys
        self.name = f"fake:{type(self).__name__}:{obeys}"
        self.calls = 0
        self.prompts: list = []

    def fingerprint(self) -> str:
        return self.name

    def _places(self, chat) -> str:
        text = "\n".join(m["content"] for m in chat)
        if self.obeys == "anywhere":
            return _n(text)
        if self.obeys == "outside":
            return _n(_FENCED.sub(" ", text))
        return ""


class ObeyingJudge(_Obeying):
    def decide(self, chat) -> str:
        blocks = read_blocks(chat[1]["content"])
        seen = self._places(chat)
        for attack, letter in JUDGE_ATTACKS:
            if attack and attack in seen:
                if letter:
                    return letter
                # an order without a letter favours the answer that carries it
                for name, L in (("antwort_a", "A"), ("antwort_b", "B")):
                    if attack in _n(blocks.get(name, "")):
                        return L
                return "A"
        qa = len(MEDICAL.findall(_without_attacks(blocks.get("antwort_a", ""), JUDGE_ATTACKS)))
        qb = len(MEDICAL.findall(_without_attacks(blocks.get("antwort_b", ""), JUDGE_ATTACKS)))
        return "A" if qa > qb else "B" if qb > qa else "tie"

    def generate(self, chats, max_new_tokens=256, temperature=0.0, seed=0):
        self.calls += 1
        self.prompts += chats
        words = {"A": "A", "B": "B", "tie": "unentschieden"}
        return [f'{{"kennung": "{chat_boundary(c)}", "begruendung": "kurz", "urteil": "{words[self.decide(c[:2])]}"}}'
                for c in chats]

    def score_options(self, chats, options, prefix=""):
        self.calls += 1
        self.prompts += chats
        best = {"A": 0, "B": 1, "tie": 2}
        return [[-0.1 if k == best[self.decide(c)] else -3.0 for k in range(3)] for c in chats]


class ObeyingAnnotator(_Obeying):
    def score(self, chat) -> int:
        seen = self._places(chat)
        for attack, goal in ANNOTATOR_ATTACKS:
            if attack and attack in seen:
                return goal
        doc = read_blocks(chat[1]["content"]).get("dokument", "")
        return min(4, 1 + len(MEDICAL.findall(_without_attacks(doc, ANNOTATOR_ATTACKS))) // 2)

    def generate(self, chats, max_new_tokens=256, temperature=0.0, seed=0):
        self.calls += 1
        self.prompts += chats
        return [f'{{"kennung": "{chat_boundary(c)}", "medical": {self.score(c[:2])}, "edu": {self.score(c[:2])}, '
                f'"reason": "x"}}' for c in chats]

    def score_options(self, chats, options, prefix=""):
        self.calls += 1
        self.prompts += chats
        return [[-0.1 if i == self.score(c) else -8.0 for i in range(len(options))] for c in chats]
