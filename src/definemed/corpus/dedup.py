"""MinHash near-deduplication with datatrove's four stages, with a dependency-free word tokenizer.

datatrove's default word tokenizers for German need spaCy; MinHash only needs stable word
boundaries, which a Unicode regex gives for any language written with spaces.
"""

from __future__ import annotations

import re

from datatrove.pipeline.dedup.minhash import MinhashConfig
from datatrove.utils.word_tokenizers import WordTokenizer

from definemed.corpus.config import DedupConfig

_WORDS = re.compile(r"\w+", re.UNICODE)
_SENTENCES = re.compile(r"(?<=[.!?])\s+")


class RegexWordTokenizer(WordTokenizer):
    def __init__(self):
        super().__init__("any")

    def word_tokenize(self, text: str) -> list[str]:
        return _WORDS.findall(text)

    def sent_tokenize(self, text: str) -> list[str]:
        return [s for s in _SENTENCES.split(text) if s]

    def span_tokenize(self, text: str) -> list[tuple[int, int]]:
        return [m.span() for m in re.finditer(r"[^.!?]+[.!?]*", text)]


def minhash_config(cfg: DedupConfig, seed: int) -> MinhashConfig:
    return MinhashConfig(n_grams=cfg.n_grams, num_buckets=cfg.num_buckets,
                         hashes_per_bucket=cfg.hashes_per_bucket, seed=seed + 1)
