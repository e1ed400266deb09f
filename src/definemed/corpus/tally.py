"""Checkpoints in a datatrove pipeline that count documents and tokens passing by.

``Tally("input")`` … ``Tally("output")`` give docs/tokens in/out per step in the stats; the
token count uses the project's tokenizer (a local tokenizer.json, no hub access).
"""

from __future__ import annotations

from datatrove.data import DocumentsPipeline
from datatrove.pipeline.base import PipelineStep
from datatrove.utils.batching import batched


class TokenCounter:
    """Lazily loaded fast tokenizer (picklable: the tokenizer is built in each worker)."""

    def __init__(self, tokenizer_file: str | None):
        self.tokenizer_file = tokenizer_file
        self._tok = None

    def count(self, texts: list[str]) -> list[int]:
        """Token counts of a batch (one Rust call: ~2x faster than one call per document)."""
        if self.tokenizer_file is None:
            return [len(t.split()) for t in texts]
        if self._tok is None:
            from tokenizers import Tokenizer

            self._tok = Tokenizer.from_file(self.tokenizer_file)
        return [len(e.ids) for e in self._tok.encode_batch_fast(texts, add_special_tokens=False)]

    def __getstate__(self):
        return {"tokenizer_file": self.tokenizer_file, "_tok": None}


class Tally(PipelineStep):
    type = "📊 TALLY"

    def __init__(self, point: str, counter: TokenCounter | None = None):
        self.name = point  # before super().__init__(), which names the stats after the step
        super().__init__()
        self.counter = counter

    def run(self, data: DocumentsPipeline, rank: int = 0, world_size: int = 1) -> DocumentsPipeline:
        for batch in batched(data, 256):
            todo = [d for d in batch if "token_count" not in d.metadata] if self.counter is not None else []
            if todo:
                with self.track_time("batch"):
                    for doc, n in zip(todo, self.counter.count([d.text for d in todo])):
                        doc.metadata["token_count"] = n
            for doc in batch:
                self.stat_update("documents")
                self.stat_update("tokens", value=int(doc.metadata.get("token_count", 0)))
                yield doc
