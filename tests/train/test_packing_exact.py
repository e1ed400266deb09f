"""Packed training windows: the per-token loss of every document inside a window equals the loss
of the document run alone, for every model family and attention implementation available here."""

import numpy as np
import pytest
import torch

from definemed.train.packing import PackedMixture, forward
from definemed.train.tokens import TokenStore
from tiny_models import FAMILIES, IMPLEMENTATIONS, tiny_causal_lm

SEP = 0
DOCS = [[11, 12, 13, 14, 15], [21, 22, 23], [31], [41, 42, 43, 44, 45, 46, 47]]  # a one-token document too


def token_losses(logits: torch.Tensor, ids: torch.Tensor) -> torch.Tensor:
    """Loss of predicting token t+1 at every position t."""
    return torch.nn.functional.cross_entropy(logits[:-1].double(), ids[1:], reduction="none")


@pytest.mark.parametrize("implementation", IMPLEMENTATIONS)
@pytest.mark.parametrize("family", FAMILIES)
def test_packed_loss_equals_per_document_loss(family, implementation):
    check_packed_loss(tiny_causal_lm(family, implementation, vocab_size=64))


@pytest.mark.parametrize("family, implementation", [("gemma2", "eager"), ("mistral", "eager"), ("mistral", "sdpa")])
def test_packed_loss_with_sliding_window(family, implementation):
    """A 3-token window (shorter than the documents) holds inside every packed document too."""
    check_packed_loss(tiny_causal_lm(family, implementation, vocab_size=64, sliding_window=3))


def check_packed_loss(model):
    model.train()  # as in the training loop (no dropout in these configs)
    flat = np.array([t for d in DOCS for t in (*d, SEP)], dtype=np.uint32)  # 20 tokens
    mix = PackedMixture([TokenStore(flat, SEP, len(DOCS))], [1.0], seq_len=10, seed=0)
    batch = mix.batch([(0, 0), (0, 10)], block_diagonal=True)  # window 2 starts inside document 4
    with torch.no_grad():
        out = forward(model, batch)
        packed = [token_losses(out.logits[b], batch["input_ids"][b]) for b in range(2)]
        # the model's own loss is the mean of these per-token losses (labels = inputs, shifted inside)
        assert out.loss.item() == pytest.approx(torch.cat(packed).mean().item(), abs=1e-4)
        windows = [flat[:10].tolist(), flat[10:].tolist()]
        for b, window in enumerate(windows):
            # documents of the window: cut after every separator
            start = 0
            for end in [i + 1 for i, t in enumerate(window) if t == SEP] + [len(window)]:
                doc = window[start:end]
                if len(doc) >= 2:
                    alone = model(input_ids=torch.tensor([doc]), use_cache=False).logits[0]
                    torch.testing.assert_close(packed[b][start:end - 1], token_losses(alone, torch.tensor(doc)),
                                               atol=1e-4, rtol=0)
                start = end


def test_boundary_check_catches_models_that_ignore_position_ids():
    from definemed.models.masks import packed_positions_honoured

    model = tiny_causal_lm("llama", "eager", vocab_size=64)
    assert packed_positions_honoured(model) is True
    original = model.forward
    model.forward = lambda **kw: original(**{k: v for k, v in kw.items() if k != "position_ids"})
    assert packed_positions_honoured(model) is False
