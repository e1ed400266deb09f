"""Packing: no padding, separators between documents, block-diagonal attention equals
running each document alone; token store caching; schedules."""

import numpy as np
import pytest
import torch

from definemed.config import validate_config
from definemed.train.config import TrainConfig
from definemed.train.packing import PackedMixture, forward
from definemed.train.schedule import lr_at
from definemed.train.tokens import TokenStore


def store(docs: list[list[int]], sep: int = 0) -> TokenStore:
    flat = np.array([t for d in docs for t in (*d, sep)], dtype=np.uint32)
    return TokenStore(flat, sep, len(docs))


def test_windows_cover_tokens_without_padding():
    s = store([[5, 6, 7], [8, 9], [10, 11, 12, 13]])  # 12 tokens with separators
    mix = PackedMixture([s], [1.0], seq_len=4, seed=0)
    plan = mix.plan(3)
    assert sorted(o for _, o in plan) == [0, 4, 8]  # one epoch: every window exactly once
    batch = mix.batch(plan, block_diagonal=False)
    assert batch["input_ids"].shape == (3, 4)
    assert sorted(batch["input_ids"].flatten().tolist()) == sorted(s.tokens.tolist())


def test_block_diagonal_positions_and_no_mask():
    """Documents are told apart by position ids that restart (transformers builds the mask for the
    model's attention implementation from them; `definemed.models.masks`)."""
    s = store([[5, 6], [7, 8, 9]])  # 5 6 0 7 8 9 0
    mix = PackedMixture([s], [1.0], seq_len=7, seed=0)
    b = mix.batch([(0, 0)], block_diagonal=True)
    assert b["position_ids"].tolist() == [[0, 1, 2, 0, 1, 2, 3]]  # the separator belongs to the first document
    assert "attention_mask" not in b
    assert "position_ids" not in mix.batch([(0, 0)], block_diagonal=False)


def test_packed_logits_equal_single_document(tiny_model):
    from transformers import AutoModelForCausalLM

    model = AutoModelForCausalLM.from_pretrained(tiny_model).eval()
    a, b = [101, 102, 103, 104], [201, 202, 203]
    s = store([a, b])
    mix = PackedMixture([s], [1.0], seq_len=len(a) + len(b) + 2, seed=0)
    batch = mix.batch([(0, 0)], block_diagonal=True)
    with torch.no_grad():
        packed = forward(model, batch).logits[0]
        alone = model(input_ids=torch.tensor([b + [0]])).logits[0]
        crossing = model(input_ids=batch["input_ids"]).logits[0]
    torch.testing.assert_close(packed[len(a) + 1:], alone, atol=1e-4, rtol=1e-4)
    assert (crossing[len(a) + 1:] - alone).abs().max() > 1e-3  # without the positions, documents see each other


def test_mixture_follows_weights():
    mix = PackedMixture([store([[1] * 99]), store([[2] * 99])], [0.75, 0.25], seq_len=10, seed=1)
    sources = [s for s, _ in mix.plan(100)]
    assert sources.count(0) == 75 and sources.count(1) == 25
    assert mix.plan(100) == PackedMixture([store([[1] * 99]), store([[2] * 99])], [0.75, 0.25], 10, 1).plan(100)


def test_schedules():
    base = {"data": [{"path": "x"}], "lr": 1.0, "min_lr_ratio": 0.1, "warmup_steps": 10, "max_steps": 110}
    cos = validate_config(TrainConfig, base)
    assert lr_at(0, cos) == pytest.approx(0.1) and lr_at(9, cos) == pytest.approx(1.0)
    assert lr_at(60, cos) == pytest.approx(0.55) and lr_at(110, cos) == pytest.approx(0.1)
    wsd = validate_config(TrainConfig, {**base, "schedule": "wsd", "wsd_decay_fraction": 0.5})
    assert lr_at(50, wsd) == 1.0 and lr_at(110, wsd) == pytest.approx(0.1)


def test_token_store_is_cached(tiny_model, tmp_path, monkeypatch):
    from transformers import AutoTokenizer

    from definemed.train import tokens
    from definemed.train.config import DataSource

    monkeypatch.setenv("DEFINEMED_CACHE", str(tmp_path))
    tok = AutoTokenizer.from_pretrained(tiny_model)
    src = DataSource(path=str(tmp_path / "d.jsonl"))
    (tmp_path / "d.jsonl").write_text('{"id": "1", "text": "Hallo Welt."}\n{"id": "2", "text": "Guten Tag."}\n')
    first = tokens.token_store(src, tok, tiny_model)
    assert first.documents == 2 and int((first.tokens == first.separator).sum()) == 2
    monkeypatch.setattr(tokens, "load_docs", lambda s: pytest.fail("tokenized twice"))
    again = tokens.token_store(src, tok, tiny_model)
    assert np.array_equal(first.tokens, again.tokens)
