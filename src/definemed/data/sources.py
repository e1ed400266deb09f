"""Document sources: a parquet file/folder or a JSONL file, optionally narrowed by gold labels.

One schema for every place that reads documents by configuration — training data, held-out
perplexity sets of the train stage, the merge sweep's evaluation set — so that a user's own
held-out set is given the same way everywhere, and documents always keep their ids (the
held-out check in `definemed.data.heldout` needs them).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Literal, Optional

from pydantic import Field

from definemed.config import StrictModel
from definemed.errors import UserError


class TextSource(StrictModel):
    path: str  # parquet file/folder (e.g. a corpus run's shards/) or a .jsonl file
    text_column: str = "text"
    id_column: str = "id"  # documents without it get a content-derived id (see `Doc`)
    max_docs: Optional[int] = Field(None, ge=1)
    split: Optional[Literal["train", "validation", "test"]] = None  # with gold_labels: take one split
    gold_labels: Optional[str] = None  # JSONL with id, split, medical (to select a split/kind)
    min_medical: Optional[int] = None  # with gold_labels: keep documents with medical >= this
    max_medical: Optional[int] = None  # with gold_labels: keep documents with medical <= this
    lang: Optional[str] = None  # with gold_labels: keep documents of this language


@dataclass(frozen=True)
class Doc:
    id: str
    text: str


def load_docs(src: TextSource, limit: bool = True, what: str = "data") -> list[Doc]:
    """The source's documents, sorted by id (a fixed order whatever the file layout), empty
    texts dropped; ``limit=False`` ignores ``max_docs`` (callers that filter first, then cut);
    ``what`` names the source in errors ("training data", "held-out data")."""
    from definemed.data.io import read_jsonl, read_parquet_rows
    from definemed.data.heldout import text_key

    path = Path(src.path)
    if not path.exists():
        raise UserError(f"{what} not found: {path}")
    rows = read_jsonl(path) if path.suffix == ".jsonl" else read_parquet_rows(path)
    if rows and src.text_column not in rows[0]:
        raise UserError(f"{path}: no '{src.text_column}' column")
    if src.gold_labels:
        gold = {r["id"]: r for r in read_jsonl(src.gold_labels)}

        def keep(row):
            g = gold.get(row.get(src.id_column))
            return g is not None and (src.split is None or g["split"] == src.split) \
                and (src.min_medical is None or g["medical"] >= src.min_medical) \
                and (src.max_medical is None or g["medical"] <= src.max_medical) \
                and (src.lang is None or g["lang"] == src.lang)
        rows = [r for r in rows if keep(r)]
    docs = []
    for r in rows:
        text = r.get(src.text_column)
        if not text or not str(text).strip():
            continue
        doc_id = r.get(src.id_column)
        docs.append(Doc(str(doc_id) if doc_id is not None else f"text:{text_key(text):016x}", text))
    docs.sort(key=lambda d: d.id)
    return docs[: src.max_docs] if (limit and src.max_docs) else docs
