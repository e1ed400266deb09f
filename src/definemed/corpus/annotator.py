"""The LLM annotator: medical relevance and educational quality (0–5) per document.

Two modes:
- ``generate``: the model writes a JSON verdict naming the request's boundary (``"kennung"``);
  parsed robustly, but only from JSON objects or lines that name the boundary (no document
  contains it, so scores copied from the page are never read); one retry on malformed output,
  then counted as failed (never a crash).
- ``loglik``: per criterion, the probabilities of the answer digits "0".."5" after the prompt;
  the score is their expectation. Small models rank far better this way than by writing JSON.
Documents are untrusted: injection is neutralised and the text is delimited as data.

Fail closed: a score is "ok" only if it came out of the model. Missing log-probs (or a digit
absent from a server's top-k), an HTTP error, empty or unparseable output make the document
``{"status": "failed", "reason": ...}`` with no score; `stats` counts them (``failed:<reason>``).
Results are cached on disk by (backend fingerprint, prompt version, mode, max_new_tokens in
generate mode, document hash); failures are not cached, so a rerun asks again.
"""

from __future__ import annotations

import logging
import math
from collections import Counter
from pathlib import Path
from typing import Callable, Literal

from pydantic import Field

from definemed.config import StrictModel
from definemed.llm.injection import chat_boundary, neutralise, own_slots, strip_echo
from definemed.corpus.parse import parse_scores
from definemed.corpus.prompts import PromptConfig, criterion_chat, generation_chat
from definemed.llm.base import BackendConfig, Failed, LLMBackend, make_backend
from definemed.llm.cache import ResultCache, cached_map, content_hash
from definemed.llm.fingerprint import cache_identity

log = logging.getLogger("definemed.corpus.annotate")
DIGITS = [str(i) for i in range(6)]
UNPARSEABLE = "unparseable_output"


def softmax(xs: list[float]) -> list[float]:
    m = max(xs)
    exps = [math.exp(x - m) for x in xs]
    total = sum(exps)
    return [e / total for e in exps]


class AnnotatorConfig(StrictModel):
    mode: Literal["generate", "loglik"] = "loglik"
    backend: BackendConfig = Field(default_factory=BackendConfig)
    prompt: PromptConfig = Field(default_factory=PromptConfig)
    max_new_tokens: int = Field(64, ge=8)


class Annotator:
    def __init__(self, cfg: AnnotatorConfig, cache_path: str | Path, backend: LLMBackend | None = None):
        self.cfg = cfg
        self.backend = backend or make_backend(cfg.backend)
        self.cache = ResultCache(cache_path)
        self.stats: Counter = Counter()

    def prepare(self, text: str) -> tuple[str, int]:
        """Cleaned document prefix that goes into the prompt, and its signs of an injection attempt."""
        clean, removed = neutralise(text)
        return clean[: self.cfg.prompt.max_chars], removed

    def annotate(self, texts: list[str], progress: Callable[[int], None] | None = None,
                 chunk: int = 16) -> list[dict]:
        prepared = [self.prepare(t) for t in texts]
        identity = self.identity()
        keys = [ResultCache.key(identity, content_hash(p)) for p, _ in prepared]
        run = self._loglik if self.cfg.mode == "loglik" else self._generate
        results = cached_map(self.cache, keys, [p for p, _ in prepared], run, chunk, progress, self.stats)
        out = []
        for r, (_, removed) in zip(results, prepared):
            self.stats[r["status"]] += 1
            if r["status"] != "ok":
                self.stats[f"failed:{r['reason']}"] += 1
            if removed:
                self.stats["injection_flagged"] += 1
            out.append({**r, "injection_signs": removed})
        return out

    def identity(self) -> str:
        """What a cached annotation depends on besides the document."""
        settings = {"prompt_version": self.cfg.prompt.version, "mode": self.cfg.mode}
        if self.cfg.mode == "generate":  # greedy: the token budget is the only decoding setting
            settings.update(max_new_tokens=self.cfg.max_new_tokens, temperature=0.0)
        return cache_identity(self.backend, **settings)

    # -- modes -----------------------------------------------------------------------------
    def _loglik(self, docs: list[str]) -> list[dict]:
        res: list[dict] = [{"status": "ok", "mode": "loglik"} for _ in docs]
        for crit in self.cfg.prompt.criteria:
            chats = [criterion_chat(self.cfg.prompt, crit, d) for d in docs]
            for k, logps in enumerate(self.backend.score_options(chats, DIGITS)):
                if res[k]["status"] != "ok":
                    continue
                if isinstance(logps, Failed):  # one criterion without a score: the document has none
                    res[k] = {**logps.as_dict(), "mode": "loglik", "criterion": crit}
                    continue
                probs = softmax(logps)
                res[k][crit] = round(sum(i * p for i, p in enumerate(probs)), 4)
                res[k][f"{crit}_probs"] = [round(p, 4) for p in probs]
        return res

    def _generate(self, docs: list[str]) -> list[dict]:
        chats = [generation_chat(self.cfg.prompt, d) for d in docs]
        crits = tuple(self.cfg.prompt.criteria)
        outputs = self.backend.generate(chats, max_new_tokens=self.cfg.max_new_tokens)
        parsed = [None if isinstance(o, Failed) else _own_scores(o, d, c, crits)
                  for o, d, c in zip(outputs, docs, chats)]
        # One retry for output that came but did not parse (a failed request was already retried).
        retry = [i for i, p in enumerate(parsed) if p is None and not isinstance(outputs[i], Failed)]
        if retry:
            self.stats["retried"] += len(retry)
            again = self.backend.generate(
                [chats[i] + [{"role": "assistant", "content": outputs[i]},
                             {"role": "user", "content": self.cfg.prompt.retry_message.replace(
                                 "{boundary}", chat_boundary(chats[i]))}] for i in retry],
                max_new_tokens=self.cfg.max_new_tokens)
            for i, o in zip(retry, again):
                parsed[i] = None if isinstance(o, Failed) else _own_scores(o, docs[i], chats[i], crits)
                outputs[i] = o
        res = []
        for p, o in zip(parsed, outputs):
            if isinstance(o, Failed):
                res.append({**o.as_dict(), "mode": "generate"})
            elif p is None:
                res.append({"status": "failed", "reason": UNPARSEABLE, "mode": "generate", "raw": o[:300]})
            else:
                res.append({"status": "ok", "mode": "generate", **p})
        return res


def _own_scores(output: str, doc: str, chat: list[dict], crits: tuple[str, ...]) -> dict | None:
    """The scores the model wrote into its slot: copies of the document removed, then only what
    names the request's boundary is read (a "Relevanz: 5" copied from the page names none)."""
    return parse_scores(own_slots(strip_echo(output, [doc]), chat_boundary(chat)), crits)
