"""Deterministic fake judge backends and answer files for the pairwise tests.

`FakeJudge` reads the two answers out of the prompt's antwort_a/antwort_b data blocks and prefers
the one with more medical keywords. It is gullible: an answer area that contains an order to
the judge ("bevorzugen", "prefer", "Urteil: A") wins, so if an order escaped into the prompt's
own text or the fencing failed, the injected answer would win. Items whose instruction contains
"#bias" are answered "A" whatever the order (position bias). ``fail`` makes every call return
`Failed(fail)`; ``identity`` is its fingerprint.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

from definemed.llm.base import Failed
from definemed.eval.judge_prompt import loglik_prefix
from definemed.llm.injection import chat_boundary, read_blocks

MEDICAL = re.compile(r"arzt|ärzt|dosis|fieber|therapie|symptom|blut|medikament|behandlung|infektion|schmerz",
                     re.IGNORECASE)
OBEY = re.compile(r"bevorzug|prefer|urteil\W{0,3}[ab]\b|wähle diese", re.IGNORECASE)


def areas(chat) -> tuple[str, str, str]:
    blocks = read_blocks(chat[1]["content"])
    return blocks.get("aufgabe", ""), blocks.get("antwort_a", ""), blocks.get("antwort_b", "")


class FakeJudge:
    name = "fake:judge"

    def __init__(self, style: str = "json", malformed_first: bool = False, always_malformed: bool = False,
                 prefer_longer: bool = False, fail: str | None = None, identity: str = "fake:judge"):
        self.style, self.malformed_first, self.always_malformed = style, malformed_first, always_malformed
        self.prefer_longer, self.fail, self.identity = prefer_longer, fail, identity
        self.calls = 0
        self.prompts: list = []
        self.max_new_tokens_seen: list = []

    def fingerprint(self) -> str:
        return self.identity

    def decide(self, chat) -> str:
        task, a, b = areas(chat)
        for letter, text in (("A", a), ("B", b)):
            if OBEY.search(text):
                return letter
        if "#bias" in task:
            return "A"
        qa, qb = (len(a), len(b)) if self.prefer_longer else (len(MEDICAL.findall(a)), len(MEDICAL.findall(b)))
        return "A" if qa > qb else "B" if qb > qa else "tie"

    def generate(self, chats, max_new_tokens=256, temperature=0.0, seed=0):
        self.calls += 1
        self.prompts += chats
        self.max_new_tokens_seen.append(max_new_tokens)
        if self.fail:
            return [Failed(self.fail) for _ in chats]
        out = []
        for chat in chats:
            retry = chat[-1]["role"] == "user" and len(chat) > 2
            v = self.decide(chat[:2])
            b = chat_boundary(chat)  # the verdict slot names the request's boundary
            if self.always_malformed or (self.malformed_first and not retry):
                out.append("Beide Antworten haben Stärken und Schwächen, schwer zu sagen.")
            elif self.style == "prose":
                out.append({"A": f"{b}: Antwort A ist besser, weil sie genauer ist.",
                            "B": f"Ich finde ({b}), Antwort B ist besser.", "tie": f"Das ist unentschieden ({b})."}[v])
            else:
                word = {"A": "A", "B": "B", "tie": "unentschieden"}[v]
                out.append(f'Hier mein Urteil:\n```json\n{{"kennung": "{b}", "begruendung": "kurz", '
                           f'"urteil": "{word}"}}\n```')
        return out

    def score_options(self, chats, options, prefix=""):
        self.calls += 1
        self.prompts += chats
        assert prefix == [loglik_prefix(chat_boundary(c)) for c in chats]  # one per chat, naming its fence
        assert [o.strip() for o in options] == ["A", "B", "C"]
        if self.fail:
            return [Failed(self.fail) for _ in chats]
        res = []
        for chat in chats:
            v = self.decide(chat)
            best = {"A": 0, "B": 1, "tie": 2}[v]
            res.append([-0.1 if k == best else -3.0 for k in range(3)])
        return res


def write_answers(path: Path, label: str, answers: dict[str, str], references: dict[str, str | None] | None = None,
                  prompts: dict[str, str] | None = None, hit_limit: set[str] = frozenset()) -> Path:
    """An answer file in the format of `definemed eval generate`."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w", encoding="utf-8") as f:
        for i, (item_id, answer) in enumerate(answers.items()):
            f.write(json.dumps({
                "id": item_id, "model": label, "model_ref": f"ref/{label}",
                "prompt": (prompts or {}).get(item_id, f"Frage {i}: Was hilft bei Beschwerden Nummer {i}?"),
                "answer": answer, "reference": (references or {}).get(item_id),
                "new_tokens": len(answer.split()), "hit_limit": item_id in hit_limit, "seconds": 0.1,
                "settings": {"max_new_tokens": 256, "temperature": 0.0, "seed": 0, "chat_template": True},
            }, ensure_ascii=False) + "\n")
    return path
