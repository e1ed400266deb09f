"""MinHash near-deduplication with datatrove's four stages, and a faster stage 1 (signatures).

datatrove's default word tokenizers for German need spaCy; MinHash only needs stable word
boundaries, which a Unicode regex gives for any language written with spaces.

`FastMinhashSignature` replaces only how shingles are hashed and how the permutation's
modulo is computed; it writes datatrove's signature files, so stages 2–4 (buckets, clusters,
filter) are datatrove's own. Why our own: datatrove's stage 1 spends ~3 ms per 400-word
document in Python (text normalisation with several regexes, one string join and one xxhash
call per shingle, a uint64 `%` that numpy cannot vectorise well). Here each distinct word is
hashed once per worker (cached), the n-gram hashes are combined in numpy, and the modulo by
the Mersenne prime 2^61-1 is two bit operations. Measured in benchmarks/corpus_throughput.py.
The shingle hash values differ from datatrove's (a different hash of the same n-grams), so all
signatures of one run must come from the same class — the pipeline uses only this one.
"""

from __future__ import annotations

import re

import numpy as np
import xxhash
from datatrove.pipeline.dedup.minhash import MinhashConfig, MinhashDedupSignature
from datatrove.utils.word_tokenizers import WordTokenizer

from definemed.corpus.config import DedupConfig

_WORDS = re.compile(r"\w+", re.UNICODE)
_SENTENCES = re.compile(r"(?<=[.!?])\s+")
_DIGITS = re.compile(r"\d+")
_MERSENNE = np.uint64((1 << 61) - 1)
_MIX = np.uint64(0x9E3779B97F4A7C15)  # odd 64-bit constant (golden ratio): position weights of the rolling hash


class RegexWordTokenizer(WordTokenizer):
    def __init__(self):
        super().__init__("any")

    def word_tokenize(self, text: str) -> list[str]:
        return _WORDS.findall(text)

    def sent_tokenize(self, text: str) -> list[str]:
        return [s for s in _SENTENCES.split(text) if s]

    def span_tokenize(self, text: str) -> list[tuple[int, int]]:
        return [m.span() for m in re.finditer(r"[^.!?]+[.!?]*", text)]


def mersenne_mod(x: np.ndarray) -> np.ndarray:
    """x mod (2^61 - 1) for uint64 x, in place and exactly: x = q·2^61 + r ≡ q + r < 2·(2^61 - 1)."""
    q = x >> np.uint64(61)
    x &= _MERSENNE
    x += q
    np.subtract(x, _MERSENNE, out=x, where=x >= _MERSENNE)
    return x


class FastMinhashSignature(MinhashDedupSignature):
    name = "🎯 MinHash stage 1 (vectorised)"

    def __init__(self, output_folder, config: MinhashConfig):
        super().__init__(output_folder, config=config, language=RegexWordTokenizer())
        self._word_hashes: dict[str, int] = {}
        n = config.n_grams
        # weight of the word at offset k in an n-gram: distinct odd constants, so order matters
        self._weights = np.array([(int(_MIX) * (2 * k + 1)) & (2**64 - 1) for k in range(n)], dtype=np.uint64)

    def _word_ids(self, text: str) -> np.ndarray:
        cache = self._word_hashes
        if len(cache) > 2_000_000:  # bound memory on long runs; vocabulary repeats quickly
            cache.clear()
        words = _WORDS.findall(text.lower())
        for w in set(words).difference(cache):  # digits normalised per distinct word, not per text
            cache[w] = xxhash.xxh64_intdigest(_DIGITS.sub("0", w))
        return np.fromiter(map(cache.__getitem__, words), dtype=np.uint64, count=len(words))

    def get_shingles(self, text: str) -> np.ndarray:
        ids = self._word_ids(text)
        n = self.config.n_grams
        if len(ids) < n:  # like datatrove's ngrams(): a short text is one shingle of all its words
            if len(ids) == 0:
                return np.empty((0, 1), dtype=np.uint64)
            return (ids * self._weights[:len(ids)]).sum(dtype=np.uint64).reshape(1, 1)
        # shingle i = sum_k w_k * id[i+k] (mod 2^64), then an avalanche step so nearby sums spread out
        windows = np.lib.stride_tricks.sliding_window_view(ids, n)
        h = (windows * self._weights).sum(axis=1, dtype=np.uint64)
        h ^= h >> np.uint64(31)
        h *= np.uint64(0xBF58476D1CE4E5B9)
        h ^= h >> np.uint64(29)
        return h.reshape(-1, 1)

    def get_signature(self, shingles: np.ndarray) -> list[list[int]]:
        a, b = self.parameters
        with np.errstate(over="ignore"):  # uint64 wrap-around is the intended arithmetic, as in datatrove
            phv = shingles * a
            phv += b
            mersenne_mod(phv)
        if self.config.hash_config.precision == 32:
            phv = np.bitwise_and(phv, self.config.hash_config.max)
        mins = phv.min(axis=0).astype(self.config.hash_config.np_dtype)
        return [x.tolist() for x in np.split(mins, self.config.num_buckets)]

    def __getstate__(self):
        state = self.__dict__.copy()
        state["_word_hashes"] = {}
        return state


def minhash_config(cfg: DedupConfig, seed: int) -> MinhashConfig:
    return MinhashConfig(n_grams=cfg.n_grams, num_buckets=cfg.num_buckets,
                         hashes_per_bucket=cfg.hashes_per_bucket, seed=seed + 1)
