"""Packed MCQ scoring (context once, options packed after it under a custom mask) gives the same
log-likelihoods as scoring each context + option alone, for every model family and attention
implementation available here."""

import random

import pytest
import torch

from definemed.eval.loglik import Request, score
from tiny_models import FAMILIES, IMPLEMENTATIONS, tiny_causal_lm


def requests(seed: int = 0, n: int = 5, vocab: int = 512) -> list[Request]:
    """Contexts of different lengths (so rows get padded), 2-4 options of 1-4 tokens, one shared prefix."""
    rng = random.Random(seed)
    return [Request([rng.randrange(vocab) for _ in range(rng.randint(3, 14))],
                    [[rng.randrange(vocab) for _ in range(rng.randint(1, 4))] for _ in range(rng.randint(2, 4))])
            for _ in range(n)]


def one_by_one(model, reqs: list[Request]) -> list[list[float]]:
    """The reference: each context + option in its own forward pass, no mask, no padding (run with
    an eager twin of the model: exact without any mask, and one compile-free pass per length)."""
    model = eager_twin(model)
    out = []
    with torch.no_grad():
        for r in reqs:
            row = []
            for cont in r.continuations:
                logits = model(input_ids=torch.tensor([r.context + cont]), use_cache=False).logits[0]
                logp = torch.log_softmax(logits.double(), dim=-1)
                row.append(sum(logp[len(r.context) - 1 + m, tok].item() for m, tok in enumerate(cont)))
            out.append(row)
    return out


def eager_twin(model):
    if model.config._attn_implementation == "eager":
        return model
    twin = type(model)(model.config.__class__.from_dict({**model.config.to_dict(), "_attn_implementation": "eager"}))
    twin.load_state_dict(model.state_dict())
    twin.set_attn_implementation("eager")
    assert twin.config._attn_implementation == "eager"
    return twin.eval()


@pytest.mark.parametrize("implementation", IMPLEMENTATIONS)
@pytest.mark.parametrize("family", FAMILIES)
def test_packed_equals_one_by_one(family, implementation):
    model = tiny_causal_lm(family, implementation)
    reqs = requests()
    packed = score(model, reqs, batch_size=3, share_prefix=True)
    unpacked = score(model, reqs, batch_size=3, share_prefix=False)
    reference = one_by_one(model, reqs)
    for p, u, ref in zip(packed, unpacked, reference):
        assert p == pytest.approx(ref, abs=1e-4)
        assert u == pytest.approx(ref, abs=1e-4)


@pytest.mark.parametrize("family, implementation", [
    ("gemma2", "eager"), pytest.param("gemma2", "flex_attention", marks=pytest.mark.slow),
    ("mistral", "eager"), ("mistral", "sdpa")])
def test_packed_equals_one_by_one_with_sliding_window(family, implementation):
    """A 4-token window (Gemma 2: every other layer; Mistral: every layer): options see only the
    context tokens within the window of their own positions, as when they follow the context alone."""
    model = tiny_causal_lm(family, implementation, sliding_window=4)
    reqs = requests(seed=1)
    packed = score(model, reqs, batch_size=3, share_prefix=True)
    for p, ref in zip(packed, one_by_one(model, reqs)):
        assert p == pytest.approx(ref, abs=1e-4)


def test_implementations_without_custom_masks_score_unpacked(monkeypatch):
    """Flash kernels take no custom mask: scoring falls back to one row per option (lm-eval's way)."""
    from definemed.models import masks

    model = tiny_causal_lm("llama", "eager")
    monkeypatch.setattr(masks, "accepts_custom_mask", lambda m: False)
    monkeypatch.setattr(masks, "custom_mask", lambda *a, **k: pytest.fail("custom mask built"))
    reqs = requests(seed=2)
    for p, ref in zip(score(model, reqs, batch_size=3, share_prefix=True), one_by_one(model, reqs)):
        assert p == pytest.approx(ref, abs=1e-4)


def test_accepts_custom_mask():
    from types import SimpleNamespace

    from definemed.models.masks import accepts_custom_mask

    def model(impl, layer_types=None):
        return SimpleNamespace(config=SimpleNamespace(_attn_implementation=impl, layer_types=layer_types))

    assert all(accepts_custom_mask(model(i)) for i in ("eager", "sdpa", "flex_attention"))
    assert not accepts_custom_mask(model("flash_attention_2"))
    assert accepts_custom_mask(model("eager", ["sliding_attention", "full_attention"]))
    assert not accepts_custom_mask(model("sdpa", ["chunked_attention", "full_attention"]))  # Llama 4
