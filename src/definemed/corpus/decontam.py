"""Benchmark decontamination: no document that quotes an evaluation item may train the model.

Every evaluation set is turned into a set of 64-bit hashes of word n-grams (default n = 13, the
window GPT-3 and FineWeb-style decontamination use); a document is contaminated when any of its
own n-gram hashes is in that set. Lookups are set membership, so the cost is linear in the
corpus size and independent of the number of benchmark items (no pairwise comparisons).

Normalisation (both sides): Unicode NFKC, lowercase, words only (`\\w+` runs: letters and digits;
punctuation, markup and whitespace vanish), so "Welche Aussage trifft zu?" and
"welche  aussage – trifft zu" are the same words.

What an item is:
- MCQ (a `question` field): question + choices (the explanation is not shown to the model);
- instructions (an `instruction` field): instruction + input + reference;
- any other JSONL: all its string fields (and lists of strings); a `.txt` file: one item per line.
Rule for short items: an item with fewer than n words counts as one n-gram of its full length
if it has at least `min_words` (8) words; shorter items are too generic to mean contamination
("Welche Aussage trifft zu?") and are skipped.

Consequently a near-miss is not flagged: a page that quotes a question with a word changed every
12 words shares no 13 consecutive words with it. That is the intended trade-off: only verbatim
runs of n words count, paraphrases do not.

Mode `drop`: a filter with reason `contaminated`; mode `flag`: documents pass with
`metadata["contaminated_by"]` (benchmark names). Either way `contaminated_<benchmark>` counts.
"""

from __future__ import annotations

import json
import re
import unicodedata
from pathlib import Path
from typing import Iterable, Literal

import numpy as np
import xxhash
from datatrove.data import Document
from datatrove.pipeline.filters.base_filter import BaseFilter
from pydantic import Field

from definemed.config import StrictModel
from definemed.errors import UserError

_WORD = re.compile(r"\w+")


def _sample_benchmarks() -> list[Path]:
    """The project's own evaluation sets (none outside a source checkout: list yours then)."""
    from definemed.data import sample

    try:
        return [sample.mcq_path(), sample.instructions_path()]
    except UserError:
        return []


class DecontamConfig(StrictModel):
    enabled: bool = True
    n: int = Field(13, ge=3)
    min_words: int = Field(8, ge=1)  # shortest benchmark item still used (as one shorter n-gram)
    mode: Literal["drop", "flag"] = "drop"
    benchmarks: list[Path] = Field(default_factory=_sample_benchmarks)  # JSONL or .txt; name = file stem


def normalise(text: str) -> list[str]:
    return _WORD.findall(unicodedata.normalize("NFKC", text).lower())


_PRIME = np.uint64(1_099_511_628_211)  # FNV-64 prime: odd, so the rolling hash wraps without losing bits


def ngram_hash_array(words: list[str], n: int) -> np.ndarray:
    """64-bit hashes of all word n-grams: each word hashed once (xxh3), then a polynomial over the
    window, vectorised (uint64 arithmetic wraps mod 2^64)."""
    if len(words) < n:
        return np.empty(0, dtype=np.uint64)
    w = np.fromiter((xxhash.xxh3_64_intdigest(x) for x in words), dtype=np.uint64, count=len(words))
    m = len(words) - n + 1
    h = np.zeros(m, dtype=np.uint64)
    with np.errstate(over="ignore"):
        for j in range(n):
            h = h * _PRIME + w[j:j + m]
    return h


def ngram_hashes(words: list[str], n: int) -> set[int]:
    return set(ngram_hash_array(words, n).tolist())


def item_texts(row: dict) -> str:
    """The text of one benchmark item that a contaminated page would contain."""
    if "question" in row:
        return "\n".join([str(row["question"]), *map(str, row.get("choices") or [])])
    if "instruction" in row:
        return "\n".join(str(row.get(k) or "") for k in ("instruction", "input", "reference"))
    parts = []
    for v in row.values():
        parts += [v] if isinstance(v, str) else [x for x in v if isinstance(x, str)] if isinstance(v, list) else []
    return "\n".join(parts)


def read_items(path: Path) -> list[str]:
    path = Path(path)
    if not path.is_file():
        raise UserError(f"benchmark file not found: {path}")
    lines = path.read_text(encoding="utf-8").splitlines()
    if path.suffix != ".jsonl":
        return [line for line in lines if line.strip()]
    items = []
    for no, line in enumerate(lines, 1):
        if line.strip():
            try:
                items.append(item_texts(json.loads(line)))
            except (json.JSONDecodeError, AttributeError):
                raise UserError(f"{path}:{no}: not a JSON object") from None
    return items


class BenchmarkIndex:
    """Hashes of benchmark n-grams → the benchmarks they come from."""

    def __init__(self, n: int = 13, min_words: int = 8):
        self.n, self.min_words = n, min_words
        self.owner: dict[int, set[str]] = {}
        self.short_lengths: set[int] = set()  # lengths of whole short items, looked up as k-grams
        self.items: dict[str, int] = {}

    def add(self, name: str, texts: Iterable[str]) -> "BenchmarkIndex":
        self.items.setdefault(name, 0)
        for text in texts:
            words = normalise(text)
            if len(words) >= self.n:
                hashes = ngram_hashes(words, self.n)
            elif len(words) >= self.min_words:
                hashes = ngram_hashes(words, len(words))
                self.short_lengths.add(len(words))
            else:
                continue
            self.items[name] += 1
            for h in hashes:
                self.owner.setdefault(h, set()).add(name)
        return self

    @classmethod
    def from_files(cls, files: Iterable[Path], n: int = 13, min_words: int = 8) -> "BenchmarkIndex":
        index = cls(n, min_words)
        for f in files:
            index.add(Path(f).stem, read_items(Path(f)))
        return index

    def hits(self, text: str) -> set[str]:
        """Names of the benchmarks that share at least one n-gram with `text`."""
        words = normalise(text)
        found: set[str] = set()
        for k in (self.n, *sorted(self.short_lengths)):
            for h in ngram_hashes(words, k) & self.owner.keys():  # set intersection: hash lookups
                found |= self.owner[h]
        return found


class DecontaminationFilter(BaseFilter):
    """Drops (or flags) documents that share an n-gram with any evaluation set."""

    name = "🧪 decontamination"

    def __init__(self, cfg: DecontamConfig | None = None, exclusion_writer=None):
        super().__init__(exclusion_writer)
        self.cfg = cfg or DecontamConfig()
        self._index: BenchmarkIndex | None = None  # built in the worker: executors pickle the step

    @property
    def index(self) -> BenchmarkIndex:
        if self._index is None:
            self._index = BenchmarkIndex.from_files(self.cfg.benchmarks, self.cfg.n, self.cfg.min_words)
        return self._index

    def filter(self, doc: Document):
        found = self.index.hits(doc.text)
        if not found:
            return True
        for name in sorted(found):
            self.stat_update(f"contaminated_{name}")
        if self.cfg.mode == "flag":
            doc.metadata["contaminated_by"] = sorted(found)
            return True
        return False, "contaminated"
