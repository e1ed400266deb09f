"""Local transformers backend (CPU or GPU), batched."""

from __future__ import annotations

from definemed.llm.base import (EMPTY_OUTPUT, BackendConfig, Completion, Failed, Message, OptionScores, checked_scores,
                                per_chat)


class LocalBackend:
    def __init__(self, cfg: BackendConfig, model=None, tokenizer=None):
        from definemed.models import load_causal_lm, resolve_model

        self.cfg = cfg
        self.name = f"local:{cfg.model}"
        self._given = model is not None  # a model object without a folder: fingerprinted from its parameters
        if model is None:
            model, tokenizer = load_causal_lm(resolve_model(cfg.model), dtype=cfg.dtype,
                                              trust_remote_code=cfg.trust_remote_code)
        self.model, self.tok = model, tokenizer
        self._fingerprint: str | None = None

    def fingerprint(self) -> str:
        from definemed.llm.fingerprint import loaded_model_fingerprint, local_fingerprint

        if self._fingerprint is None:  # hashing the weights once per backend is enough
            self._fingerprint = (loaded_model_fingerprint(self.model, self.tok) if self._given
                                 else local_fingerprint(self.cfg.model, self.cfg.dtype))
        return self._fingerprint

    def generate(self, chats: list[list[Message]], max_new_tokens: int = 256, temperature: float = 0.0,
                 seed: int = 0) -> list[Completion]:
        from definemed.models.chat import GenerationSettings, generate_chat

        settings = GenerationSettings(max_new_tokens=max_new_tokens, temperature=temperature, seed=seed)
        return [r["text"] if r["text"].strip() else Failed(EMPTY_OUTPUT)
                for r in generate_chat(self.model, self.tok, chats, settings, self.cfg.batch_size)]

    def score_options(self, chats: list[list[Message]], options: list[str],
                      prefix: str | list[str] = "") -> list[OptionScores]:
        """Exact log-probability of each option's tokens after prompt + prefix (one forward per batch);
        ``prefix``: one for all chats or one per chat."""
        import torch

        from definemed.models.chat import chat_prompt_ids

        option_ids = [self.tok(opt, add_special_tokens=False).input_ids for opt in options]
        single = all(len(ids) == 1 for ids in option_ids)
        prefix_ids = [self.tok(p, add_special_tokens=False).input_ids if p else []
                      for p in per_chat(prefix, len(chats))]
        out: list[OptionScores] = []
        pad = self.tok.pad_token_id if self.tok.pad_token_id is not None else 0
        for start in range(0, len(chats), self.cfg.batch_size):
            prompts = [chat_prompt_ids(self.tok, c) + prefix_ids[start + k]
                       for k, c in enumerate(chats[start:start + self.cfg.batch_size])]
            if single:  # the common case (score digits): one forward pass, read the next-token distribution
                width = max(map(len, prompts))
                dev = self.model.device
                ids = torch.tensor([[pad] * (width - len(p)) + p for p in prompts], device=dev)
                mask = torch.tensor([[0] * (width - len(p)) + [1] * len(p) for p in prompts], device=dev)
                # Left padding: every row's first real token must sit at position 0, as it does when the
                # prompt runs alone; without explicit position ids the model counts the pads too, and
                # models with absolute positions (GPT-2, OPT, ...) then score a prompt differently
                # depending on its batch. (Rotary models only hide this because RoPE is relative.)
                positions = (mask.cumsum(-1) - 1).clamp(min=0)
                with torch.no_grad():
                    logits = self.model(input_ids=ids, attention_mask=mask, position_ids=positions).logits[:, -1]
                logp = torch.log_softmax(logits.float(), dim=-1)
                out.extend(checked_scores([logp[i, o[0]].item() for o in option_ids]) for i in range(len(prompts)))
            else:
                for p in prompts:
                    out.append(checked_scores([self._continuation_logprob(p, o) for o in option_ids]))
        return out

    def _continuation_logprob(self, prompt: list[int], cont: list[int]) -> float:
        import torch

        ids = torch.tensor([prompt + cont], device=self.model.device)
        with torch.no_grad():
            logp = torch.log_softmax(self.model(input_ids=ids).logits[0, :-1].float(), dim=-1)
        positions = range(len(prompt) - 1, len(prompt) + len(cont) - 1)
        return float(sum(logp[pos, tok].item() for pos, tok in zip(positions, cont)))
