"""MinHash near-deduplication with datatrove's four stages; stage 1 (signatures) vectorised.

`FastMinhashSignature` gives the same signatures as datatrove's `MinhashDedupSignature` with the
same `MinhashConfig` and word tokenizer (tested bit for bit): datatrove's `simplify_text` (lower
case, numbers → 0 incl. decimals such as `1,5`, punctuation → space, whitespace collapsed,
accents folded: ä→a, é→e, ß stays), the same n-grams of words, the same xxhash64 of each n-gram
joined by spaces, the same seeded permutations. What differs is only how it is computed: the
permutation's `% (2^61-1)` is two bit operations on the whole (shingles × hashes) matrix instead of
numpy's slow uint64 modulo, and the accent folding (a Python loop over every character in
datatrove) runs once per distinct word (cached) — exact, because folding acts on each character
and its combining marks, never across the spaces between words.

Deviation from datatrove's default for German (named in stats.json `dedup.method` and the card):
datatrove assigns spaCy's German tokenizer to `deu`; we split the simplified text on whitespace
(`WhitespaceWordTokenizer`), which needs no spaCy. After `simplify_text` has replaced punctuation
with spaces, the two differ only where spaCy splits inside a whitespace token (symbols such as
`€`, `§`, `°`, `®`, emoji, and units after numbers: `0mg` → `0 mg`). Measured on the bundled sample
(364 pages, datatrove 0.10.1, spaCy 3.8 `de`): 39 pages get a different word list, the mean
Jaccard similarity of a page's shingle sets under the two tokenizers is 0.990 (min 0.42, a page
of star ratings), and the LSH candidate pairs are identical (12 and 12; tested when spaCy is
installed). Stage 1 costs ~0.7 ms per page here, ~1.0 ms with datatrove's code and the same
tokenizer, ~8 ms with datatrove's spaCy tokenizer.
"""

from __future__ import annotations

import re
import unicodedata

import numpy as np
import xxhash
from datatrove.pipeline.dedup.minhash import MinhashConfig, MinhashDedupSignature
from datatrove.utils.text import NUMBERS_PATTERN, PUNCTUATION_TRANS, WHITESPACE_PATTERN, ngrams
from datatrove.utils.word_tokenizers import WordTokenizer

from definemed.corpus.config import DedupConfig

_SENTENCES = re.compile(r"(?<=[.!?])\s+")
_MERSENNE = np.uint64((1 << 61) - 1)
METHOD = ("datatrove MinHash (MinhashDedupSignature-identical signatures: simplify_text, word 5-grams, "
          "xxhash64, seeded permutations mod 2^61-1; vectorised stage 1); deviation: words split on "
          "whitespace after simplify_text instead of datatrove's spaCy German tokenizer")


class WhitespaceWordTokenizer(WordTokenizer):
    """Words of a text that `simplify_text` has already stripped of punctuation: split on whitespace."""

    def __init__(self):
        super().__init__("any")

    def word_tokenize(self, text: str) -> list[str]:
        return text.split()

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
        super().__init__(output_folder, config=config, language=WhitespaceWordTokenizer())
        self._folded: dict[str, str] = {}

    def _fold(self, word: str) -> str:
        """datatrove's diacritics folding (NFD, drop combining marks) of one word, cached."""
        folded = self._folded.get(word)
        if folded is None:
            if len(self._folded) > 2_000_000:  # bound memory on long runs; vocabulary repeats quickly
                self._folded.clear()
            folded = word if word.isascii() else "".join(
                c for c in unicodedata.normalize("NFD", word) if unicodedata.category(c) != "Mn")
            self._folded[word] = folded
        return folded

    def words(self, text: str) -> list[str]:
        """`simplify_text(text, config.norm_config)` split into words, with the same steps in the
        same order; only the accent folding is done per distinct word."""
        norm = self.config.norm_config
        if norm.norm_weekdays or norm.norm_monthnames or not (norm.norm_whitespace and norm.remove_punctuation):
            from datatrove.utils.text import simplify_text  # options we do not specialise: datatrove's code

            return simplify_text(text, norm).split()
        if norm.lowercase:
            text = text.lower()
        if norm.norm_numbers:
            text = NUMBERS_PATTERN.sub("0", text)
        words = WHITESPACE_PATTERN.sub(" ", text.translate(PUNCTUATION_TRANS).strip()).split()
        if norm.norm_unicode_diacritics:
            words = [w for w in map(self._fold, words) if w]  # a word of combining marks only vanishes
        return words

    def get_shingles(self, text: str) -> np.ndarray:
        h = xxhash.xxh64_intdigest if self.config.hash_config.precision == 64 else xxhash.xxh32_intdigest
        if self.config.hash_config.hash_fc != "xxhash":
            h = self._hash_func
        words = self.words(text)
        return np.fromiter((h(" ".join(g)) for g in ngrams(words, self.config.n_grams)),
                           dtype=np.uint64).reshape((-1, 1))

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
        state["_folded"] = {}
        return state


def minhash_config(cfg: DedupConfig, seed: int) -> MinhashConfig:
    return MinhashConfig(n_grams=cfg.n_grams, num_buckets=cfg.num_buckets,
                         hashes_per_bucket=cfg.hashes_per_bucket, seed=seed + 1)
