"""Local transformers backend (CPU or GPU), batched."""

from __future__ import annotations

from definemed.llm.base import BackendConfig, Message


class LocalBackend:
    def __init__(self, cfg: BackendConfig, model=None, tokenizer=None):
        from definemed.models import load_causal_lm, resolve_model

        self.cfg = cfg
        self.name = f"local:{cfg.model}"
        if model is None:
            model, tokenizer = load_causal_lm(resolve_model(cfg.model), dtype=cfg.dtype,
                                              trust_remote_code=cfg.trust_remote_code)
        self.model, self.tok = model, tokenizer

    def generate(self, chats: list[list[Message]], max_new_tokens: int = 256, temperature: float = 0.0,
                 seed: int = 0) -> list[str]:
        from definemed.models.chat import GenerationSettings, generate_chat

        settings = GenerationSettings(max_new_tokens=max_new_tokens, temperature=temperature, seed=seed)
        return [r["text"] for r in generate_chat(self.model, self.tok, chats, settings, self.cfg.batch_size)]

    def score_options(self, chats: list[list[Message]], options: list[str], prefix: str = "") -> list[list[float]]:
        """Exact log-probability of each option's tokens after prompt + prefix (one forward per batch)."""
        import torch

        from definemed.models.chat import chat_prompt_ids

        option_ids = [self.tok(opt, add_special_tokens=False).input_ids for opt in options]
        single = all(len(ids) == 1 for ids in option_ids)
        prefix_ids = self.tok(prefix, add_special_tokens=False).input_ids if prefix else []
        out: list[list[float]] = []
        pad = self.tok.pad_token_id if self.tok.pad_token_id is not None else 0
        for start in range(0, len(chats), self.cfg.batch_size):
            prompts = [chat_prompt_ids(self.tok, c) + prefix_ids for c in chats[start:start + self.cfg.batch_size]]
            if single:  # the common case (score digits): one forward pass, read the next-token distribution
                width = max(map(len, prompts))
                dev = self.model.device
                ids = torch.tensor([[pad] * (width - len(p)) + p for p in prompts], device=dev)
                mask = torch.tensor([[0] * (width - len(p)) + [1] * len(p) for p in prompts], device=dev)
                with torch.no_grad():
                    logits = self.model(input_ids=ids, attention_mask=mask).logits[:, -1].float()
                logp = torch.log_softmax(logits, dim=-1)
                out.extend([[logp[i, o[0]].item() for o in option_ids] for i in range(len(prompts))])
            else:
                for p in prompts:
                    out.append([self._continuation_logprob(p, o) for o in option_ids])
        return out

    def _continuation_logprob(self, prompt: list[int], cont: list[int]) -> float:
        import torch

        ids = torch.tensor([prompt + cont], device=self.model.device)
        with torch.no_grad():
            logp = torch.log_softmax(self.model(input_ids=ids).logits[0, :-1].float(), dim=-1)
        positions = range(len(prompt) - 1, len(prompt) + len(cont) - 1)
        return float(sum(logp[pos, tok].item() for pos, tok in zip(positions, cont)))
