"""Batched log-likelihood of continuations given a context, as lm-evaluation-harness computes it.

Tokenization follows lm-eval's ``_encode_pair`` exactly: trailing whitespace of the context moves
to the continuation, ``context + continuation`` is encoded as a whole and the continuation's
tokens are what follows the context's own encoding; the model reads ``context_ids +
continuation_ids`` (that is not always the tokenization of the joined string). Special tokens as
lm-eval's ``tok_encode``: BOS where the tokenizer adds one, none where the text already starts
with it (a rendered chat template).

Two ways to run the forward passes:

- ``share_prefix=True``: one row per request (an MCQ item): the context once, then every
  continuation (minus its last token, which is only predicted) packed after it. A mask lets each
  continuation see the context and itself only, and position ids restart at the context's
  length for each, so every option is scored exactly as if it followed the context alone — at
  the cost of ``context + Σ options`` tokens instead of ``K × (context + option)``. The mask is
  built for the model's attention implementation (`definemed.models.masks.custom_mask`: eager,
  sdpa, flex); flash kernels take no such mask, and there scoring falls back to
  ``share_prefix=False``.
- ``share_prefix=False``: one right-padded row per (context, continuation) pair, plain causal
  attention: lm-eval's own computation.

Only the hidden states at positions that predict a continuation token go through the LM head
and the log-softmax (the vocabulary projection of every position is most of the cost of a small
model with a large vocabulary).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

log = logging.getLogger("definemed.eval")


@dataclass
class Request:
    context: list[int]
    continuations: list[list[int]]


def tok_encode(tokenizer, text: str) -> list[int]:
    """Token ids of ``text`` as lm-eval's ``HFLM.tok_encode`` makes them (its default
    ``add_bos_token=None``): the tokenizer's own special tokens (so BOS where the tokenizer adds
    one), except when the text already starts with the prefix token's text (BOS, else EOS), as a
    rendered chat template does: then none, so BOS is never doubled."""
    prefix = tokenizer.bos_token_id if tokenizer.bos_token_id is not None else tokenizer.eos_token_id
    if prefix is not None and text.startswith(tokenizer.decode(prefix)):
        return tokenizer.encode(text, add_special_tokens=False)
    return tokenizer.encode(text)


def encode_pair(tokenizer, context: str, continuation: str) -> tuple[list[int], list[int]]:
    """(context ids, continuation ids) by lm-eval's rules (``lm_eval.api.model._encode_pair``)."""
    n_spaces = len(context) - len(context.rstrip())
    if n_spaces:
        continuation = context[-n_spaces:] + continuation
        context = context[:-n_spaces]
    whole = tok_encode(tokenizer, context + continuation)
    ctx = tok_encode(tokenizer, context)
    return ctx, whole[len(ctx):]


def make_request(tokenizer, context: str, continuations: list[str]) -> Request:
    pairs = [encode_pair(tokenizer, context, c) for c in continuations]
    ctx = pairs[0][0]
    if any(p[0] != ctx for p in pairs) or any(not p[1] for p in pairs):
        raise AssertionError(f"inconsistent context encoding for continuations {continuations!r}")
    return Request(ctx, [p[1] for p in pairs])


def _max_positions(model) -> int:
    return int(getattr(model.config, "max_position_embeddings", None) or 1 << 30)


def _packed_row(req: Request, max_pos: int):
    """Token ids, position ids, segment ids (0 = context, j+1 = option j) and, per option, the
    (row index predicting it, token) pairs."""
    longest = max(len(c) for c in req.continuations)
    ctx = req.context[-max(1, max_pos - longest + 1):]  # lm-eval truncates from the left too
    n = len(ctx)
    ids, pos, seg = list(ctx), list(range(n)), [0] * n
    gathers = []
    for j, cont in enumerate(req.continuations):
        prev, picks = n - 1, []
        for m, tok in enumerate(cont):
            picks.append((prev, tok))
            if m < len(cont) - 1:
                ids.append(tok)
                pos.append(n + m)
                seg.append(j + 1)
                prev = len(ids) - 1
        gathers.append(picks)
    return ids, pos, seg, gathers


def _plain_rows(req: Request, max_pos: int):
    rows = []
    for cont in req.continuations:
        full = (req.context + cont)[-(max_pos + 1):][:-1]
        start = len(full) - len(cont)  # row index predicting the first continuation token
        rows.append((full, [(start + m, tok) for m, tok in enumerate(cont)]))
    return rows


def _logprobs_at(model, hidden, rows_idx, pos_idx, tokens):
    """log p(token) at the given (row, position) of the last hidden states (LM head on those only)."""
    import torch

    h = hidden[rows_idx, pos_idx]
    logits = model.get_output_embeddings()(h).float()
    cap = getattr(model.config, "final_logit_softcapping", None)
    if cap:  # Gemma 2 style
        logits = torch.tanh(logits / cap) * cap
    logp = torch.log_softmax(logits, dim=-1)
    return logp.gather(1, tokens[:, None])[:, 0]


def score(model, requests: list[Request], batch_size: int = 8, share_prefix: bool = True,
          progress=None) -> list[list[float]]:
    """Per request, the summed log-probability of each continuation."""
    import torch

    from definemed.models.masks import accepts_custom_mask, attention_implementation, custom_mask

    if share_prefix and not accepts_custom_mask(model):
        log.info("attention %s takes no custom mask: scoring options in rows of their own",
                 attention_implementation(model))
        share_prefix = False
    max_pos = _max_positions(model)
    base = model.get_decoder() if hasattr(model, "get_decoder") else model.model
    device = next(model.parameters()).device
    size = (lambda r: len(r.context) + sum(len(c) for c in r.continuations)) if share_prefix else \
        (lambda r: len(r.context) + max(len(c) for c in r.continuations))
    order = sorted(range(len(requests)), key=lambda i: -size(requests[i]))  # similar lengths together
    out: list[list[float]] = [[] for _ in requests]
    for start in range(0, len(order), batch_size):
        chunk = order[start:start + batch_size]
        picks: list[tuple[int, int, int, int, int]] = []  # (request, option, row, position, token)
        if share_prefix:
            packed = [_packed_row(requests[i], max_pos) for i in chunk]
            width = max(len(p[0]) for p in packed)
            ids = torch.zeros(len(chunk), width, dtype=torch.long)
            pos = torch.zeros(len(chunk), width, dtype=torch.long)
            seg = torch.full((len(chunk), width), -1, dtype=torch.long)  # -1 = padding
            for b, (i, (r_ids, r_pos, r_seg, gathers)) in enumerate(zip(chunk, packed)):
                ids[b, :len(r_ids)] = torch.tensor(r_ids)
                pos[b, :len(r_pos)] = torch.tensor(r_pos)
                seg[b, :len(r_seg)] = torch.tensor(r_seg)
                picks += [(i, j, b, p, t) for j, g in enumerate(gathers) for p, t in g]
            idx = torch.arange(width)
            causal = idx[None, :] <= idx[:, None]  # [L, L]: key <= query
            visible = (seg[:, None, :] == 0) | (seg[:, None, :] == seg[:, :, None])  # [B, L(query), L(key)]
            pos = pos.to(device)
            kwargs = dict(attention_mask=custom_mask(model, (causal[None] & visible).to(device), pos),
                          position_ids=pos, use_cache=False)
        else:
            rows = []
            for i in chunk:
                for j, (r_ids, gathers) in enumerate(_plain_rows(requests[i], max_pos)):
                    picks += [(i, j, len(rows), p, t) for p, t in gathers]
                    rows.append(r_ids)
            width = max(len(r) for r in rows)
            ids = torch.tensor([r + [0] * (width - len(r)) for r in rows])  # right padding: causal, no mask
            kwargs = dict(use_cache=False)
        with torch.no_grad():
            hidden = base(input_ids=ids.to(device), **kwargs).last_hidden_state
            lp = _logprobs_at(model, hidden, torch.tensor([p[2] for p in picks], device=device),
                              torch.tensor([p[3] for p in picks], device=device),
                              torch.tensor([p[4] for p in picks], device=device)).double().cpu().tolist()
        sums: dict[tuple[int, int], float] = {}
        for (i, j, *_), value in zip(picks, lp):
            sums[(i, j)] = sums.get((i, j), 0.0) + value
        for i in chunk:
            out[i] = [sums[(i, j)] for j in range(len(requests[i].continuations))]
        if progress is not None:
            progress(len(chunk))
    return out
