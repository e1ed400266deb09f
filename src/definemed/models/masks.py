"""Attention masks that mean the same under every attention implementation of transformers.

A 4-D mask handed to a transformers model goes to the attention function as is, and each
implementation reads it differently: ``sdpa`` takes a boolean (True = may attend), ``eager``
ADDS it to the scores (a boolean adds 0/1 and masks nothing), ``flex_attention`` wants a
``BlockMask`` (a tensor becomes an additive score bias), and the flash kernels take no 4-D mask
at all. So a mask must be built for the model's implementation; two ways, both transformers' own:

- Documents packed side by side (training windows): no mask, only position ids that restart at
  every document. transformers detects the packed sequences from the position ids
  (``masking_utils.find_packed_sequence_indices``; flash kernels: varlen via
  ``cu_seq_lens`` from the position ids) and builds the block-diagonal mask itself, sliding
  windows included. It only looks at them when no attention mask and no KV cache are given,
  hence ``use_cache=False`` in `packed_forward_kwargs`.
- Any other pattern (a shared MCQ context followed by several options): `custom_mask` runs the
  implementation's own mask builder (``masking_utils.ALL_MASK_ATTENTION_FUNCTIONS``) on our
  pattern as a mask function: boolean for sdpa, 0 / dtype-min float in the model's dtype for
  eager, a ``BlockMask`` for flex. Flash kernels cannot take such a pattern (`accepts_custom_mask`
  is False; callers fall back to unpacked rows).
"""

from __future__ import annotations

import torch

# Implementations whose transformers mask builder honours an arbitrary mask function.
CUSTOM_MASK_IMPLEMENTATIONS = ("eager", "sdpa", "flex_attention")
_KNOWN_LAYER_TYPES = {"full_attention", "sliding_attention"}


def attention_implementation(model) -> str:
    return getattr(model.config, "_attn_implementation", None) or "eager"


def accepts_custom_mask(model) -> bool:
    """Whether `custom_mask` can express an arbitrary pattern for this model."""
    layer_types = set(getattr(model.config, "layer_types", None) or ())
    return attention_implementation(model) in CUSTOM_MASK_IMPLEMENTATIONS and layer_types <= _KNOWN_LAYER_TYPES


def restart_positions(segments: torch.Tensor) -> torch.Tensor:
    """Position ids [B, L] counting from 0 at every change of segment id (and at index 0)."""
    idx = torch.arange(segments.shape[1], device=segments.device).expand_as(segments)
    starts = torch.ones_like(segments, dtype=torch.bool)
    starts[:, 1:] = segments[:, 1:] != segments[:, :-1]
    last_start = torch.cummax(torch.where(starts, idx, torch.zeros_like(idx)), dim=1).values
    return idx - last_start


def packed_forward_kwargs() -> dict:
    """Forward arguments that keep transformers' packed-sequence detection on (see the module doc)."""
    return {"use_cache": False}


def custom_mask(model, visible: torch.Tensor, position_ids: torch.Tensor):
    """The ``attention_mask`` argument expressing ``visible`` ([B, L(query), L(key)] boolean, True =
    may attend, causality included) for ``model``'s attention implementation.

    Sliding-window layers (Gemma 2/3, Qwen 2 with ``use_sliding_window``, Mistral) additionally
    see only keys whose position id is within the window of the query's, as transformers'
    ``sliding_window_overlay`` does; models with both kinds of layers get transformers' per-layer
    mapping ``{"full_attention": ..., "sliding_attention": ...}``.
    """
    from transformers.masking_utils import ALL_MASK_ATTENTION_FUNCTIONS

    impl = attention_implementation(model)
    if not accepts_custom_mask(model):
        raise ValueError(f"attention implementation {impl!r} (layer types "
                         f"{sorted(set(getattr(model.config, 'layer_types', None) or ()))}) takes no custom mask")
    config = model.config
    dtype = next(model.parameters()).dtype
    batch, length = visible.shape[0], visible.shape[1]
    build = ALL_MASK_ATTENTION_FUNCTIONS[impl]

    def make(pattern: torch.Tensor):
        pattern = pattern.to(visible.device)
        return build(batch_size=batch, q_length=length, kv_length=length,
                     mask_function=lambda b, h, q, kv: pattern[b, q, kv], attention_mask=None,
                     allow_is_causal_skip=False, dtype=dtype, device=visible.device, config=config)

    layer_types = getattr(config, "layer_types", None) or []
    window = getattr(config, "sliding_window", None)
    if window and (("sliding_attention" in layer_types)
                   or (not layer_types and getattr(config, "use_sliding_window", True))):
        pos = position_ids.to(visible.device)
        near = visible & (pos[:, None, :] > pos[:, :, None] - window)  # key > query - window
        if not layer_types:  # one kind of layer, all windowed (Mistral)
            return make(near)
        return {"full_attention": make(visible), "sliding_attention": make(near)}
    return make(visible)


def packed_positions_honoured(model, length: int = 8, seed: int = 0) -> bool | None:
    """Whether ``model`` keeps two packed documents apart when given only restarting position ids.

    Architectures outside transformers' masking utilities (remote code, old ports) ignore the
    boundaries silently, so this runs the check on the model itself: the second of two random
    documents scored packed vs alone must differ by under a tenth of what full cross-document
    attention changes. None when the model's outputs do not depend on the first document at all.
    """
    device = next(model.parameters()).device
    vocab = model.get_input_embeddings().num_embeddings
    gen = torch.Generator().manual_seed(seed)
    first, second = (torch.randint(vocab, (1, length), generator=gen) for _ in range(2))
    ids = torch.cat([first, second], dim=1).to(device)
    positions = torch.arange(length).repeat(2)[None].to(device)
    was_training = model.training
    model.eval()
    try:
        with torch.no_grad():
            packed = model(input_ids=ids, position_ids=positions, **packed_forward_kwargs()).logits[0, length:]
            alone = model(input_ids=second.to(device), use_cache=False).logits[0]
            crossing = model(input_ids=ids, use_cache=False).logits[0, length:]
    finally:
        model.train(was_training)
    leak = (packed.float() - alone.float()).abs().max().item()
    scale = (crossing.float() - alone.float()).abs().max().item()
    return None if scale == 0 else leak <= 0.1 * scale
