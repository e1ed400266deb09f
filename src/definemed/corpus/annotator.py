"""The LLM annotator: medical relevance and educational quality (0–5) per document.

Two modes:
- ``generate``: the model writes a JSON verdict; parsed robustly, one retry on malformed output,
  then counted as failed (never a crash).
- ``loglik``: per criterion, the probabilities of the answer digits "0".."5" after the prompt;
  the score is their expectation. Small models rank far better this way than by writing JSON.
Documents are untrusted: injection is neutralised and the text is delimited as data.
Results are cached on disk by (backend, prompt version, mode, document hash).
"""

from __future__ import annotations

import logging
import math
from collections import Counter
from pathlib import Path
from typing import Callable, Literal

from pydantic import Field

from definemed.config import StrictModel
from definemed.llm.injection import neutralise, strip_echo
from definemed.corpus.parse import parse_scores
from definemed.corpus.prompts import PromptConfig, criterion_chat, generation_chat
from definemed.llm.base import BackendConfig, LLMBackend, make_backend
from definemed.llm.cache import ResultCache, cached_map, content_hash

log = logging.getLogger("definemed.corpus.annotate")
DIGITS = [str(i) for i in range(6)]


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
        keys = [ResultCache.key(self.backend.name, self.cfg.prompt.version, self.cfg.mode, content_hash(p))
                for p, _ in prepared]
        run = self._loglik if self.cfg.mode == "loglik" else self._generate
        results = cached_map(self.cache, keys, [p for p, _ in prepared], run, chunk, progress, self.stats)
        out = []
        for r, (_, removed) in zip(results, prepared):
            self.stats[r["status"]] += 1
            if removed:
                self.stats["injection_flagged"] += 1
            out.append({**r, "injection_signs": removed})
        return out

    # -- modes -----------------------------------------------------------------------------
    def _loglik(self, docs: list[str]) -> list[dict]:
        res = [{"status": "ok", "mode": "loglik"} for _ in docs]
        for crit in self.cfg.prompt.criteria:
            chats = [criterion_chat(self.cfg.prompt, crit, d) for d in docs]
            for r, logps in zip(res, self.backend.score_options(chats, DIGITS)):
                probs = softmax(logps)
                r[crit] = round(sum(i * p for i, p in enumerate(probs)), 4)
                r[f"{crit}_probs"] = [round(p, 4) for p in probs]
        return res

    def _generate(self, docs: list[str]) -> list[dict]:
        chats = [generation_chat(self.cfg.prompt, d) for d in docs]
        crits = tuple(self.cfg.prompt.criteria)
        outputs = self.backend.generate(chats, max_new_tokens=self.cfg.max_new_tokens)
        parsed = [parse_scores(strip_echo(o, [d]), crits) for o, d in zip(outputs, docs)]
        retry = [i for i, p in enumerate(parsed) if p is None]
        if retry:
            self.stats["retried"] += len(retry)
            again = self.backend.generate(
                [chats[i] + [{"role": "assistant", "content": outputs[i]},
                             {"role": "user", "content": self.cfg.prompt.retry_message}] for i in retry],
                max_new_tokens=self.cfg.max_new_tokens)
            for i, o in zip(retry, again):
                parsed[i] = parse_scores(strip_echo(o, [docs[i]]), crits)
                outputs[i] = o
        res = []
        for p, o in zip(parsed, outputs):
            if p is None:
                res.append({"status": "failed", "mode": "generate", "raw": o[:300]})
            else:
                res.append({"status": "ok", "mode": "generate", **p})
        return res
