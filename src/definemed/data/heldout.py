"""Held-out means disjoint from training — checked in code, not promised by a config.

Every token store records, per training document, a 64-bit key of its id and of its
normalised text (`DocIndex`). The train stage writes the union of its stores' keys next to the
trained model (`TRAINING_DOCS_FILE` in the model folder); merged models inherit their parents'.
Any evaluation that calls itself held-out (train's start/end perplexity, the merge sweep,
`definemed eval perplexity`) drops documents whose id or normalised text is in the model's
training index, and reports how many it dropped (``heldout_overlap_docs``).

Normalisation: Unicode NFKC, case-folded, whitespace runs collapsed — so a page that was
re-crawled with other line breaks or capitalisation still counts as the same document.
64-bit keys (BLAKE2b): a false match needs a hash collision, about 1 in 10⁸ even for 10⁵
held-out documents against 10⁷ training documents.
"""

from __future__ import annotations

import hashlib
import re
import unicodedata
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable, Optional

import numpy as np

TRAINING_DOCS_FILE = "definemed_training_docs.npz"
_WS = re.compile(r"\s+")


def normalise_text(text: str) -> str:
    return _WS.sub(" ", unicodedata.normalize("NFKC", text).casefold()).strip()


def _key(data: str) -> int:
    return int.from_bytes(hashlib.blake2b(data.encode("utf-8"), digest_size=8).digest(), "little")


def text_key(text: str) -> int:
    return _key(normalise_text(text))


def id_key(doc_id: str) -> int:
    return _key("id:" + str(doc_id))


@dataclass
class DocIndex:
    """Sorted 64-bit keys of document ids and normalised texts."""

    ids: np.ndarray
    texts: np.ndarray

    @classmethod
    def build(cls, docs: Iterable) -> "DocIndex":
        docs = list(docs)
        return cls(np.unique(np.array([id_key(d.id) for d in docs], dtype=np.uint64)),
                   np.unique(np.array([text_key(d.text) for d in docs], dtype=np.uint64)))

    @classmethod
    def empty(cls) -> "DocIndex":
        return cls(np.zeros(0, np.uint64), np.zeros(0, np.uint64))

    @classmethod
    def union(cls, indexes: Iterable["DocIndex"]) -> "DocIndex":
        indexes = list(indexes)
        if not indexes:
            return cls.empty()
        return cls(np.unique(np.concatenate([i.ids for i in indexes])),
                   np.unique(np.concatenate([i.texts for i in indexes])))

    def __len__(self) -> int:
        return len(self.texts)

    def save(self, path: str | Path) -> None:
        from definemed.runs import atomic_write_bytes
        import io

        buf = io.BytesIO()
        np.savez(buf, ids=self.ids, texts=self.texts)
        atomic_write_bytes(path, buf.getvalue())

    @classmethod
    def load(cls, path: str | Path) -> "DocIndex":
        with np.load(path, allow_pickle=False) as z:
            return cls(z["ids"].astype(np.uint64), z["texts"].astype(np.uint64))

    def contains(self, doc) -> bool:
        return _member(self.ids, id_key(doc.id)) or _member(self.texts, text_key(doc.text))


def _member(sorted_keys: np.ndarray, key: int) -> bool:
    i = int(np.searchsorted(sorted_keys, np.uint64(key)))
    return i < len(sorted_keys) and int(sorted_keys[i]) == key


def exclude_training(docs: list, index: Optional[DocIndex]) -> tuple[list, int]:
    """(documents not in the training index, number dropped). Without an index (a model that
    definemed did not train) nothing can be checked: every document is kept, 0 dropped."""
    if index is None:
        return docs, 0
    kept = [d for d in docs if not index.contains(d)]
    return kept, len(docs) - len(kept)


def model_training_index(model_path: str | Path) -> Optional[DocIndex]:
    """The training index stored with a model trained (or merged) by definemed, else None."""
    path = Path(model_path) / TRAINING_DOCS_FILE
    return DocIndex.load(path) if path.exists() else None


def parents_training_index(parents: Iterable[str | Path]) -> Optional[DocIndex]:
    """The union of the training indexes of models built from ``parents`` (a merge), or None
    when no parent has one."""
    found = [i for p in parents if (i := model_training_index(p)) is not None]
    return DocIndex.union(found) if found else None


def inherit_training_index(parents: Iterable[str | Path], target: str | Path) -> Optional[DocIndex]:
    """Give a model built from ``parents`` (a merge) the union of their training indexes."""
    index = parents_training_index(parents)
    if index is not None:
        index.save(Path(target) / TRAINING_DOCS_FILE)
    return index
