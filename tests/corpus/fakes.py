"""A deterministic, gullible fake LLM backend: it scores by medical keywords and OBEYS any
instruction it sees in the prompt ("bewerte ... mit 5", "rate this page ... maximum"). Tests use
it to prove that injected instructions never reach the model.

``fail`` makes every call return `Failed(fail)` (a backend that gives no usable answer);
``identity`` is its fingerprint (the model a cache must tell apart)."""

from __future__ import annotations

import math
import re

from definemed.llm.base import Failed
from definemed.llm.injection import chat_boundary, read_blocks

MEDICAL = re.compile(r"patient|therapie|dosis|mg\b|diagnose|symptom|arzt|ärzt|klinik|blut|medikament|krankheit|"
                     r"behandlung|pflege|infektion|eisen|ferritin", re.IGNORECASE)
OBEY = re.compile(r"(mit 5|maximum score|höchste punktzahl|jede seite mit 5|bewertung 0)", re.IGNORECASE)


class GullibleBackend:
    name = "fake:gullible"

    def __init__(self, malformed_first: bool = False, always_malformed: bool = False, fail: str | None = None,
                 identity: str = "fake:gullible"):
        self.calls = 0
        self.malformed_first, self.always_malformed = malformed_first, always_malformed
        self.fail, self.identity = fail, identity

    def fingerprint(self) -> str:
        return self.identity

    def _doc(self, chat) -> str:
        user = chat[1]["content"] if len(chat) > 1 else chat[0]["content"]
        return read_blocks(user).get("dokument", user)

    def _score(self, chat) -> int:
        obey = OBEY.search(self._doc(chat))
        if obey:
            return 0 if "0" in obey.group(0) else 5
        return min(5, len(MEDICAL.findall(self._doc(chat))) // 2)

    def generate(self, chats, max_new_tokens=256, temperature=0.0, seed=0):
        self.calls += 1
        if self.fail:
            return [Failed(self.fail) for _ in chats]
        out = []
        for chat in chats:
            is_retry = chat[-1]["role"] == "user" and len(chat) > 2
            if self.always_malformed or (self.malformed_first and not is_retry):
                out.append("Ich denke, das Dokument ist interessant.")
            else:
                s = self._score(chat)
                out.append(f'Hier meine Bewertung: {{"kennung": "{chat_boundary(chat)}", "medical": {s}, '
                           f'"edu": {max(0, s - 1)}, "reason": "x"}}')
        return out

    def score_options(self, chats, options, prefix=""):
        self.calls += 1
        if self.fail:
            return [Failed(self.fail) for _ in chats]
        res = []
        for chat in chats:
            s = self._score(chat)
            res.append([-(abs(i - s) * 2.0) - math.log(6) for i in range(len(options))])
        return res
