"""Tiny random causal LMs with the shapes of real model families, for every attention implementation.

Hidden size 64, 2 layers, 4 query / 2 key-value heads (grouped-query attention like the real
configs), fp32, seeded; nothing comes from the hub. An implementation that cannot run here
(flash-attn not installed, sdpa not offered for Gemma 2 by this transformers) is skipped with
transformers' own reason.
"""

import pytest

FAMILIES = ("llama", "qwen2", "gemma2")
# flex_attention compiles its kernels on first use per model family (~30-90 s on 2 CPU cores): slow
FLEX = pytest.param("flex_attention", marks=pytest.mark.slow)
IMPLEMENTATIONS = ("eager", "sdpa", FLEX, "flash_attention_2")


def tiny_config(family: str, vocab_size: int = 512, **overrides):
    from transformers import Gemma2Config, LlamaConfig, MistralConfig, Qwen2Config

    shape = dict(vocab_size=vocab_size, hidden_size=64, intermediate_size=128, num_hidden_layers=2,
                 num_attention_heads=4, num_key_value_heads=2, head_dim=16, max_position_embeddings=512)
    if family == "gemma2":  # real Gemma 2 configs scale queries by head_dim and alternate sliding/full layers
        shape["query_pre_attn_scalar"] = 16
    cls = {"llama": LlamaConfig, "qwen2": Qwen2Config, "gemma2": Gemma2Config, "mistral": MistralConfig}[family]
    return cls(**{**shape, **overrides})


def tiny_causal_lm(family: str, implementation: str, vocab_size: int = 512, seed: int = 0, **overrides):
    import torch
    from transformers import AutoModelForCausalLM

    config = tiny_config(family, vocab_size, **overrides)
    torch.manual_seed(seed)
    try:
        model = AutoModelForCausalLM.from_config(config, attn_implementation=implementation, dtype=torch.float32)
    except (ImportError, ValueError) as err:  # transformers refuses what it cannot run here
        pytest.skip(f"{family} / {implementation} not usable here: {str(err).splitlines()[0][:200]}")
    return model.eval()
