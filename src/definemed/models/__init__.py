"""Model references (bundled GGUF, local folders, hub ids), loading and chat generation."""

from definemed.models.loading import check_model_ref, load_causal_lm, load_tokenizer, random_init_like, resolve_model

__all__ = ["check_model_ref", "load_causal_lm", "load_tokenizer", "random_init_like", "resolve_model"]
