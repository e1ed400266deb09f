"""Held-out documents never reach the training corpus: an id list and/or evaluation splits are
dropped right after the reader, before any other step (only the `input` tally counts them first).

Why at the corpus stage: the sample's test split would otherwise pass into the CPT shards, and
"held-out" perplexity later would be measured partly on training documents. Dropped documents
are kept, like every other drop, under `work/excluded/heldout/`, counted by reason
(`heldout_id`, `heldout_split`), and the classifier's held-out evaluation reads them back from
there (`heldout_documents`), so its test-split metrics stay measurable.

YAML (`input:` section):

    exclude_ids: data/heldout_ids.txt          # .txt: one id per line; .jsonl: objects with an `id`
    exclude_split: [test]                      # split names, looked up in split_labels
    split_labels: data/sample/labels/fineweb2_deu_gold.jsonl   # JSONL with `id` and `split`
"""

from __future__ import annotations

from pathlib import Path
from typing import Iterator

from datatrove.data import Document
from datatrove.pipeline.filters.base_filter import BaseFilter

from definemed.corpus.writers import read_excluded
from definemed.data.io import iter_jsonl
from definemed.errors import UserError

FOLDER = "heldout"  # work/excluded/<FOLDER>


def read_id_file(path: Path) -> set[str]:
    path = Path(path)
    if path.suffix == ".jsonl":
        ids = set()
        for lineno, row in enumerate(iter_jsonl(path), 1):
            if not isinstance(row.get("id"), str):
                raise UserError(f"{path}: record {lineno} has no string 'id' (input.exclude_ids)")
            ids.add(row["id"])
        return ids
    return {line.strip() for line in path.read_text(encoding="utf-8").splitlines()
            if line.strip() and not line.lstrip().startswith("#")}


def heldout_reasons(exclude_ids: Path | None, exclude_split: list[str], split_labels: Path | None) -> dict[str, str]:
    """{document id: drop reason}; an id in the id list counts as `heldout_id` even if its split
    is excluded too (each document is counted once)."""
    reasons: dict[str, str] = {}
    if exclude_split:
        wanted = set(exclude_split)
        for row in iter_jsonl(split_labels):
            if row.get("split") in wanted and "id" in row:
                reasons[str(row["id"])] = "heldout_split"
    for i in read_id_file(exclude_ids) if exclude_ids else ():
        reasons[i] = "heldout_id"
    return reasons


class HeldOutFilter(BaseFilter):
    """Drops documents whose id is held out (counted as `dropped_heldout_id` / `dropped_heldout_split`)."""

    name = "🔒 held-out exclusion"

    def __init__(self, reasons: dict[str, str], exclusion_writer=None):
        super().__init__(exclusion_writer)
        self.reasons = reasons

    def filter(self, doc: Document):
        reason = self.reasons.get(doc.id)
        return True if reason is None else (False, reason)


def heldout_documents(excluded_dir: Path) -> Iterator[Document]:
    """The held-out documents as the exclusion writer kept them (text, id, metadata)."""
    return read_excluded(Path(excluded_dir) / FOLDER)
