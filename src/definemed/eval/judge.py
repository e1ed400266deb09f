"""The LLM judge: which of two answers to the same German instruction is better?

Any `LLMBackend` judges (local transformers model or an OpenAI-compatible server such as vLLM).
Two verdict modes, as for the corpus annotator:
- ``generate``: the judge writes ``{"kennung": "DATA-…", "begruendung": ..., "urteil": "A"|"B"|"unentschieden"}``;
  parsed robustly (JSON anywhere in the output, else verdicts in prose such as "Antwort A ist
  besser"), but only from JSON objects or lines that name the request's boundary (the "kennung"),
  which no answer contains; malformed output gets one retry, then the comparison counts as failed
  (never a crash).
- ``loglik``: the probabilities of " A", " B", " C" (C = tie) as the next token after the
  assistant prefix "Urteil (DATA-…):" (the request's boundary); the verdict is the most probable
  option. Small models manage this far better than writing JSON.
Deviation from the usual "Urteil:"/"[[A]]" verdict slots (MT-Bench, AlpacaEval): the slot names the
boundary, because an answer that writes "Urteil: B" made a small judge copy the B (see
`definemed.llm.injection`); it is in ``METHOD``.
With ``reference_guided`` the judge also sees the item's reference answer.

Fail closed: a verdict is "ok" only if it came out of the model. Missing log-probs, an option
absent from a server's top-k, an HTTP error, empty or unparseable output make the comparison
``{"status": "failed", "verdict": None, "reason": ...}``; `stats` counts them and `failures`
counts them per reason. Failed verdicts are not cached, so a rerun asks again.

One call judges one order (answer A shown first); `definemed.eval.pairwise` runs both orders.
Verdicts are cached on disk by (judge backend fingerprint, prompt version, mode, the loglik
prefix template in loglik mode, max_new_tokens in generate mode, the full prompt), and the prompt
holds the instruction, both answers in their order and the reference (the prefix itself is the
template filled with the prompt's boundary).
"""

from __future__ import annotations

import json
import math
import re
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Literal, Optional

from definemed.eval import judge_prompt as P
from definemed.llm.base import Failed, LLMBackend
from definemed.llm.cache import ResultCache, cached_map, content_hash
from definemed.llm.fingerprint import cache_identity
from definemed.llm.injection import chat_boundary, chat_data, own_slots, strip_echo
from definemed.llm.parse import json_objects

Mode = Literal["generate", "loglik"]
VERDICTS = ("A", "B", "tie")
UNPARSEABLE = "unparseable_output"
METHOD = {
    "verdict_slot": "loglik: next token after 'Urteil (<boundary>):'; generate: only JSON objects or lines that "
                    "name the request's boundary are parsed",
    "deviations": ["the verdict slot names the request's data-fence boundary instead of a plain 'Urteil:', so "
                   "that a verdict written inside an answer cannot fill it (prompt injection)"],
}


@dataclass(frozen=True)
class Comparison:
    """One judge call: the instruction, the answer shown as A, the one shown as B, the reference."""

    instruction: str
    answer_a: str
    answer_b: str
    reference: Optional[str] = None


_VERDICT_KEYS = ("urteil", "verdict", "winner", "gewinner", "bessere_antwort", "bessere antwort",
                 "entscheidung", "ergebnis", "besser")
_TIE_WORDS = ("unentschieden", "gleich", "gleichwertig", "gleich gut", "beide", "tie", "c", "keine", "none",
              "draw", "remis")


def _norm_value(value) -> str | None:
    s = str(value).strip().lower().strip(".\"'` ")
    if re.fullmatch(r"(antwort |answer )?a", s):
        return "A"
    if re.fullmatch(r"(antwort |answer )?b", s):
        return "B"
    if s in _TIE_WORDS or s.startswith(("unentschieden", "gleich", "beide")):
        return "tie"
    return None


def _letter_patterns(x: str) -> list[str]:
    return [rf"\b(antwort|answer)\s+{x}\s+(ist|is|wäre|was)\s+(klar\s+|deutlich\s+|eindeutig\s+)?"
            r"(besser|überlegen|vorzuziehen|die bessere|better|superior|preferable|the better)",
            rf"\b(urteil|verdict)\s*[:=]?\s*[\"']?(antwort\s+|answer\s+)?{x}\b",
            rf"\bbessere\s+antwort\s+ist\s+(antwort\s+)?{x}\b", rf"\bbevorzuge\s+(ich\s+)?(antwort\s+)?{x}\b"]


_PROSE = {
    "A": _letter_patterns("a"),
    "B": _letter_patterns("b"),
    "tie": [r"\bunentschieden\b", r"\bbeide\s+antworten\s+sind\s+(etwa\s+)?(gleich|ähnlich)",
            r"\b(urteil|verdict)\s*[:=]?\s*[\"']?(c|tie)\b", r"\bboth answers are (equally|about equally)"],
}
_PROSE_RE = {v: re.compile("|".join(ps), re.IGNORECASE) for v, ps in _PROSE.items()}


def parse_verdict(text: str) -> dict | None:
    """{"verdict": "A"|"B"|"tie", "reason": str} from judge output, or None when it has none
    (or contradicts itself in prose)."""
    for obj in json_objects(text):
        for key in _VERDICT_KEYS:
            if key in obj and (v := _norm_value(obj[key])) is not None:
                reason = obj.get("begruendung", obj.get("begründung", obj.get("reason", "")))
                return {"verdict": v, "reason": str(reason)[:300]}
    found = [v for v, rx in _PROSE_RE.items() if rx.search(text)]
    if len(found) == 1:
        return {"verdict": found[0], "reason": ""}
    return None


def softmax(xs: list[float]) -> list[float]:
    m = max(xs)
    exps = [math.exp(x - m) for x in xs]
    return [e / sum(exps) for e in exps]


class LLMJudge:
    def __init__(self, backend: LLMBackend, mode: Mode = "loglik", reference_guided: bool = False,
                 cache_path: str | Path | None = None, max_new_tokens: int = 128):
        self.backend, self.mode, self.reference_guided = backend, mode, reference_guided
        self.max_new_tokens = max_new_tokens
        self.cache = ResultCache(cache_path) if cache_path else None
        self.stats: Counter = Counter()
        self.failures: Counter = Counter()  # reason -> failed calls (fresh and never cached)
        self.name = f"{backend.name}|{mode}" + ("|reference" if reference_guided else "")

    def identity(self) -> str:
        """What a cached verdict depends on besides the prompt (the prompt holds the reference)."""
        settings = {"prompt_version": P.VERSION, "mode": self.mode}
        if self.mode == "loglik":  # the prefix is scored text: the template is part of the key
            settings["loglik_prefix"] = P.LOGLIK_PREFIX
        if self.mode == "generate":  # greedy: temperature 0, so the token budget is the only setting
            settings.update(max_new_tokens=self.max_new_tokens, temperature=0.0)
        return cache_identity(self.backend, **settings)

    def chat(self, c: Comparison) -> list[dict[str, str]]:
        return P.judge_chat(c.instruction, c.answer_a, c.answer_b,
                            c.reference if self.reference_guided else None, self.mode)

    def judge(self, comparisons: list[Comparison], progress: Callable[[int], None] | None = None,
              chunk: int = 8) -> list[dict]:
        """One verdict per comparison: {"status": "ok", "verdict": "A"|"B"|"tie", ...} or
        {"status": "failed", "verdict": None, "reason": ...}."""
        chats = [self.chat(c) for c in comparisons]
        identity = self.identity() if self.cache is not None else ""
        keys = [ResultCache.key(identity, content_hash(json.dumps(ch))) for ch in chats]
        run = self._loglik if self.mode == "loglik" else self._generate
        results = cached_map(self.cache, keys, chats, run, chunk, progress, self.stats)
        for r in results:
            self.stats[r["status"]] += 1
            if r["status"] != "ok":
                self.failures[r["reason"]] += 1
        return results  # type: ignore[return-value]

    def _loglik(self, chats: list[list[dict]]) -> list[dict]:
        out = []
        prefixes = [P.loglik_prefix(chat_boundary(c)) for c in chats]
        for logps in self.backend.score_options(chats, list(P.LOGLIK_OPTIONS), prefix=prefixes):
            if isinstance(logps, Failed):
                out.append({**logps.as_dict(), "verdict": None})
                continue
            probs = softmax(logps)
            best = max(range(3), key=probs.__getitem__)
            out.append({"status": "ok", "verdict": VERDICTS[best], "probs": [round(p, 4) for p in probs]})
        return out

    def _generate(self, chats: list[list[dict]]) -> list[dict]:
        outputs = self.backend.generate(chats, max_new_tokens=self.max_new_tokens)
        parsed = [None if isinstance(o, Failed) else _own_verdict(o, c) for o, c in zip(outputs, chats)]
        # One retry for output that came but did not parse (a failed request was already retried).
        retry = [i for i, p in enumerate(parsed) if p is None and not isinstance(outputs[i], Failed)]
        if retry:
            self.stats["retried"] += len(retry)
            again = self.backend.generate(
                [chats[i] + [{"role": "assistant", "content": outputs[i]},
                             {"role": "user", "content": P.retry_message(chat_boundary(chats[i]))}]
                 for i in retry], max_new_tokens=self.max_new_tokens)
            for i, o in zip(retry, again):
                parsed[i] = None if isinstance(o, Failed) else _own_verdict(o, chats[i])
                outputs[i] = o
        return [_generated_verdict(p, o) for p, o in zip(parsed, outputs)]


def _own_verdict(output: str, chat: list[dict]) -> dict | None:
    """The verdict the judge wrote into its slot: copies of the data removed, then only what names
    the request's boundary is read (a short "Urteil: B" copied from an answer names none)."""
    return parse_verdict(own_slots(strip_echo(output, chat_data(chat)), chat_boundary(chat)))


def _generated_verdict(parsed: dict | None, output) -> dict:
    if isinstance(output, Failed):
        return {**output.as_dict(), "verdict": None}
    if parsed is None:
        return {"status": "failed", "reason": UNPARSEABLE, "verdict": None, "raw": output[:300]}
    return {"status": "ok", **parsed}
