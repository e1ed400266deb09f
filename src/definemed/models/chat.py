"""Chat-formatted generation with a local transformers model (greedy by default)."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass
class GenerationSettings:
    max_new_tokens: int = 256
    temperature: float = 0.0  # 0 means greedy
    top_p: float = 1.0
    seed: int = 0


def build_messages(user: str, system: str | None = None) -> list[dict[str, str]]:
    return ([{"role": "system", "content": system}] if system else []) + [{"role": "user", "content": user}]


def chat_prompt_ids(tokenizer, messages: list[dict[str, str]]) -> list[int]:
    """Token ids of a chat prompt ending with the assistant turn opener."""
    if tokenizer.chat_template is None:  # base models: plain "user text\n" prompt
        return tokenizer("\n\n".join(m["content"] for m in messages) + "\n", add_special_tokens=True).input_ids
    out = tokenizer.apply_chat_template(messages, add_generation_prompt=True, tokenize=True, return_dict=True)
    return list(out["input_ids"])


def generate_chat(model, tokenizer, prompts: list[list[dict[str, str]]], settings: GenerationSettings,
                  batch_size: int = 4) -> list[dict]:
    """Generate one answer per chat; returns text, token counts and whether the limit was hit.

    Prompts are left-padded into batches so that generation of several prompts shares work.
    """
    import torch

    results: list[dict] = []
    pad_id = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else tokenizer.eos_token_id
    for start in range(0, len(prompts), batch_size):
        chunk = [chat_prompt_ids(tokenizer, msgs) for msgs in prompts[start:start + batch_size]]
        width = max(len(ids) for ids in chunk)
        input_ids = torch.tensor([[pad_id] * (width - len(ids)) + ids for ids in chunk], device=model.device)
        attention = torch.tensor([[0] * (width - len(ids)) + [1] * len(ids) for ids in chunk], device=model.device)
        kwargs = dict(max_new_tokens=settings.max_new_tokens, pad_token_id=pad_id)
        if settings.temperature > 0:
            torch.manual_seed(settings.seed + start)
            kwargs.update(do_sample=True, temperature=settings.temperature, top_p=settings.top_p)
        else:
            kwargs.update(do_sample=False)
        with torch.no_grad():
            out = model.generate(input_ids=input_ids, attention_mask=attention, **kwargs)
        for row in out[:, width:]:
            ids = row.tolist()
            eos = tokenizer.eos_token_id
            n = ids.index(eos) + 1 if eos in ids else len([i for i in ids if i != pad_id])
            finished = eos in ids
            results.append({
                "text": tokenizer.decode(ids[:n], skip_special_tokens=True).strip(),
                "new_tokens": n,
                "hit_limit": not finished and n >= settings.max_new_tokens,
            })
    return results
