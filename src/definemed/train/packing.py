"""Sequence packing: documents concatenated with separators and cut into seq_len windows, no
padding. Sources are mixed by weight in a fixed, seeded order, so the data position of a run is
just the step number (exact resume) and every process can compute its own share (DDP).

With ``cross_document_attention=False`` each window gets position ids that restart at every
document; transformers derives a block-diagonal causal mask from them for whichever attention
implementation the model uses (eager, sdpa, flex, flash varlen), so tokens never attend across
a boundary. The model must be called through `forward`.
"""

from __future__ import annotations

import numpy as np
import torch

from definemed.models.masks import packed_forward_kwargs, restart_positions
from definemed.train.tokens import TokenStore


class PackedMixture:
    def __init__(self, stores: list[TokenStore], weights: list[float], seq_len: int, seed: int):
        self.stores, self.seq_len = stores, seq_len
        rng = np.random.default_rng(seed)
        # each source: its windows in a seeded order (reshuffled per epoch when it runs out)
        self.windows = [len(s) // seq_len for s in stores]
        if min(self.windows) == 0:
            raise ValueError("a data source has fewer tokens than one sequence (seq_len)")
        self._orders = [[rng.permutation(n)] for n in self.windows]
        self._rng = rng
        w = np.asarray(weights, dtype=float)
        self.weights = w / w.sum()

    def _source_sequence(self, n: int) -> list[tuple[int, int]]:
        """(source, k-th window of that source) for the first n sequences: smooth weighted round robin."""
        counts = np.zeros(len(self.stores))
        taken = [0] * len(self.stores)
        out = []
        for i in range(n):
            s = int(np.argmax(self.weights * (i + 1) - counts))
            counts[s] += 1
            out.append((s, taken[s]))
            taken[s] += 1
        return out

    def plan(self, n_sequences: int) -> list[tuple[int, int]]:
        """(source, window start offset) of the first n sequences of the run."""
        plan = []
        for s, k in self._source_sequence(n_sequences):
            epoch, j = divmod(k, self.windows[s])
            while len(self._orders[s]) <= epoch:
                self._orders[s].append(self._rng.permutation(self.windows[s]))
            plan.append((s, int(self._orders[s][epoch][j]) * self.seq_len))
        return plan

    def batch(self, items: list[tuple[int, int]], block_diagonal: bool) -> dict[str, torch.Tensor]:
        ids = np.stack([np.asarray(self.stores[s].tokens[o:o + self.seq_len], dtype=np.int64) for s, o in items])
        input_ids = torch.from_numpy(ids)
        out = {"input_ids": input_ids, "labels": input_ids.clone()}
        seps = torch.tensor([self.stores[s].separator for s, _ in items])[:, None]
        is_sep = (input_ids == seps).long()
        # A separator before the last position starts a new document inside the window. Position ids
        # that restart there are all transformers needs: it finds the documents from them and masks
        # every attention implementation accordingly (`definemed.models.masks`; call the model with
        # `forward`). Without a boundary in the whole batch nothing is passed, and SDPA's causal fast
        # path is taken.
        if block_diagonal and bool(is_sep[:, :-1].any()):
            # segment of each token: number of separators strictly before it (a separator ends its document)
            out["position_ids"] = restart_positions(torch.cumsum(is_sep, dim=1) - is_sep)
        return out


def forward(model, batch: dict[str, torch.Tensor]):
    """The model's forward pass on a `PackedMixture.batch` (the KV cache off: with it transformers
    ignores the document boundaries in the position ids)."""
    return model(**batch, **packed_forward_kwargs())
