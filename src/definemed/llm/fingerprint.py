"""One identity for a backend, used by every LLM result cache (annotator, judge, answer files).

A cached answer may be reused only if nothing that could change it has changed:
- a server: its URL and the served model name (the same name on another server is another model);
- a local model: the contents of its weights, config and tokenizer
  (`definemed.models.fingerprint`), and the dtype it runs in; a model object handed in directly
  (tests, a model already loaded) is hashed from its parameters;
- the caller adds its own settings (prompt version, mode, decoding settings) with `cache_identity`.
"""

from __future__ import annotations

import hashlib
import json

from definemed.llm.base import BackendConfig

TOP_LOGPROBS = 20  # what OpenAI-compatible servers are asked for; part of the server identity


def served_fingerprint(base_url: str, model: str) -> str:
    return f"openai|{base_url.rstrip('/')}|{model}|top_logprobs={TOP_LOGPROBS}"


def local_fingerprint(model_ref: str, dtype: str) -> str:
    from definemed.models.fingerprint import model_fingerprint

    return f"local|{model_fingerprint(model_ref)}|{dtype}"


def loaded_model_fingerprint(model, tokenizer) -> str:
    """A model object without a folder: hash of its parameters, config and tokenizer vocabulary."""
    import torch

    h = hashlib.sha256()
    for name, tensor in sorted(model.state_dict().items()):
        h.update(f"{name}:{tensor.dtype}:{tuple(tensor.shape)}".encode())
        h.update(tensor.detach().cpu().contiguous().view(-1).view(torch.uint8).numpy().tobytes())
    h.update(model.config.to_json_string().encode())
    h.update(json.dumps(sorted(tokenizer.get_vocab().items())).encode())
    h.update(str(getattr(tokenizer, "chat_template", None)).encode())
    return f"local|params:{h.hexdigest()}"


def backend_fingerprint(cfg: BackendConfig) -> str:
    if cfg.kind == "openai":
        return served_fingerprint(cfg.base_url or "", cfg.model)
    return local_fingerprint(cfg.model, cfg.dtype)


def cache_identity(backend, **settings) -> str:
    """The part of a cache key that names the model and the settings (JSON, sorted keys)."""
    return json.dumps({"backend": backend.fingerprint(), **settings}, sort_keys=True, default=str)
