"""Perplexity of a causal LM on held-out documents (token-weighted, sliding windows).

Documents longer than the window are cut into non-overlapping windows: cheaper than a strided
sliding window and the same for every model compared, which is what matters here.
"""

from __future__ import annotations

import math
from typing import Iterable


def perplexity(model, tokenizer, texts: Iterable[str], max_length: int = 512, batch_size: int = 4,
               progress=None) -> dict:
    """Return {"ppl", "nll", "tokens", "docs"} with the mean NLL per predicted token."""
    import torch

    windows: list[list[int]] = []
    n_docs = 0
    for text in texts:
        ids = tokenizer(text, add_special_tokens=False).input_ids
        if tokenizer.bos_token_id is not None and getattr(tokenizer, "add_bos_token", False):
            ids = [tokenizer.bos_token_id] + ids
        n_docs += 1
        for s in range(0, len(ids), max_length):
            window = ids[s:s + max_length]
            if len(window) >= 2:
                windows.append(window)
    windows.sort(key=len)  # similar lengths together: little padding
    total_nll, total_tokens = 0.0, 0
    pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else 0
    for start in range(0, len(windows), batch_size):
        chunk = windows[start:start + batch_size]
        width = max(len(w) for w in chunk)
        ids = torch.tensor([w + [pad] * (width - len(w)) for w in chunk], device=model.device)
        mask = torch.tensor([[1] * len(w) + [0] * (width - len(w)) for w in chunk], device=model.device)
        with torch.no_grad():
            logits = model(input_ids=ids, attention_mask=mask).logits[:, :-1].float()
        targets = ids[:, 1:]
        valid = mask[:, 1:].bool()
        nll = torch.nn.functional.cross_entropy(logits.transpose(1, 2), targets, reduction="none")
        total_nll += nll[valid].sum().item()
        total_tokens += int(valid.sum())
        if progress is not None:
            progress(len(chunk))
    mean = total_nll / max(total_tokens, 1)
    return {"ppl": math.exp(mean), "nll": mean, "tokens": total_tokens, "docs": n_docs,
            "windows": len(windows)}
