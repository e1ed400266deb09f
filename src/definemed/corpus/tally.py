"""Checkpoints in a datatrove pipeline that count documents, words and tokens passing by.

``Tally("input")`` … ``Tally("output")`` give docs/words in/out per step in the stats. Tokens
(the project's tokenizer, a local tokenizer.json, no hub access) are counted where a counter is
given: by default only at the output, because exact token counts of every input document cost
more than all prefilters together (~1 ms per page) while the number that matters is the size of
the training corpus; `token_counts: all` counts them at every point.
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
            if self.counter is not None:
                with self.track_time("batch"):
                    for doc, n in zip(batch, self.counter.count([d.text for d in batch])):
                        doc.metadata["token_count"] = n
            for doc in batch:
                self.stat_update("documents")
                self.stat_update("words", value=len(doc.text.split()))
                if self.counter is not None:
                    self.stat_update("tokens", value=int(doc.metadata["token_count"]))
                yield doc
