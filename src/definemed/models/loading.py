"""Resolve a model reference and load it safely.

A reference is one of:
- ``smollm2-135m-instruct`` (or ``bundled``): the bundled model, converted and cached;
- a local folder with a Hugging Face checkpoint;
- a hub id such as ``Qwen/Qwen2.5-7B`` (needs internet; used as is by transformers).
Safetensors only (no pickle), and ``trust_remote_code`` stays off unless asked for.
"""

from __future__ import annotations

import re
from pathlib import Path

from definemed.errors import UserError
from definemed.models.bundled import BUNDLED_NAME, bundled_gguf_path, bundled_model_dir, ensure_bundled_model
from definemed.models.check import check_model_folder

_HUB_ID = re.compile(r"^[A-Za-z0-9][\w.-]*/[\w.-]+$")
_DTYPES = {"float32": "float32", "fp32": "float32", "bfloat16": "bfloat16", "bf16": "bfloat16",
           "float16": "float16", "fp16": "float16"}


def check_model_ref(ref: str | Path, weights: bool = True, tokenizer: bool = True,
                    trust_remote_code: bool = False, check: bool = True) -> str:
    """The kind of a model reference ("bundled", "local", "hub") without loading, converting or
    downloading anything; raises UserError for a reference that cannot work. Configs are checked
    with this before a pipeline starts, so a typo does not surface hours later.

    A local folder is checked (`check_model_folder`: config, safetensors weights when ``weights``,
    tokenizer files when ``tokenizer``; headers only) so that a broken checkpoint is one line naming
    the folder in every command, not a traceback from inside transformers. ``check=False`` only
    for callers that hash the folder and load nothing (fingerprints)."""
    ref = str(ref)
    if ref in (BUNDLED_NAME, "bundled"):
        if not (bundled_model_dir() / "config.json").exists():
            bundled_gguf_path()  # not converted yet: its package must be installed
        return "bundled"
    path = Path(ref).expanduser()
    if path.exists():
        if not path.is_dir():
            raise UserError(f"model '{ref}' is a file; give the checkpoint folder (with config.json)")
        if not (path / "config.json").exists():
            raise UserError(f"model folder {path} has no config.json (not a Hugging Face checkpoint)")
        if check:
            check_model_folder(path, weights=weights, tokenizer=tokenizer, trust_remote_code=trust_remote_code)
        return "local"
    if ref.startswith((".", "/", "~")) or not _HUB_ID.match(ref):
        raise UserError(f"model not found: '{ref}' is neither a local folder nor a hub id (org/name)")
    return "hub"  # transformers downloads it (users with internet)


def resolve_model(ref: str | Path, weights: bool = True, tokenizer: bool = True,
                  trust_remote_code: bool = False, check: bool = True) -> str:
    """Turn a model reference into something ``from_pretrained`` accepts (checked as in
    `check_model_ref`)."""
    kind = check_model_ref(ref, weights=weights, tokenizer=tokenizer, trust_remote_code=trust_remote_code,
                           check=check)
    if kind == "bundled":
        return str(ensure_bundled_model())
    return str(Path(str(ref)).expanduser()) if kind == "local" else str(ref)


def torch_dtype(name: str):
    import torch

    if name not in _DTYPES:
        raise UserError(f"unknown dtype '{name}' (use one of: {', '.join(sorted(_DTYPES))})")
    return getattr(torch, _DTYPES[name])


def load_tokenizer(ref: str | Path, trust_remote_code: bool = False):
    from transformers import AutoTokenizer

    src = resolve_model(ref, weights=False, trust_remote_code=trust_remote_code)
    try:
        tok = AutoTokenizer.from_pretrained(src, trust_remote_code=trust_remote_code)
    except (OSError, ValueError) as err:  # missing/unreadable files, unusable tokenizer class
        raise UserError(f"cannot load tokenizer from '{ref}': {str(err).splitlines()[0]}") from None
    if tok.pad_token is None:
        tok.pad_token = tok.eos_token
    return tok


def default_device() -> str:
    """`$DEFINEMED_DEVICE` if set, else the first CUDA GPU when there is one, else the CPU."""
    import os

    import torch

    return os.environ.get("DEFINEMED_DEVICE") or ("cuda" if torch.cuda.is_available() else "cpu")


def from_pretrained_checked(src: str, dtype, trust_remote_code: bool = False, shown: str | None = None):
    """``AutoModelForCausalLM.from_pretrained`` (safetensors only) that refuses a checkpoint whose
    weights do not fill the architecture its config names. transformers initialises missing
    tensors at random and only logs a table ("MISSING ... newly initialized"): a config naming
    another architecture, or one layer more than the weights hold, would be trained or evaluated
    as a partly random model without any error. Fail closed instead."""
    import logging

    from transformers import AutoModelForCausalLM
    from transformers.utils import logging as hf_logging

    shown = shown or src
    level = hf_logging.get_verbosity()
    hf_logging.set_verbosity_error()  # its load report table: we judge the loading info ourselves
    try:
        model, info = AutoModelForCausalLM.from_pretrained(
            src, dtype=dtype, use_safetensors=True, trust_remote_code=trust_remote_code, output_loading_info=True)
    except (OSError, ValueError) as err:  # e.g. a config whose model type is no causal LM
        raise UserError(f"cannot load model from '{shown}': {str(err).splitlines()[0]}") from None
    finally:
        hf_logging.set_verbosity(level)
    if unexpected := sorted(info.get("unexpected_keys") or []):  # e.g. a value head: harmless, but say so
        logging.getLogger("definemed.models").warning("model '%s': %d weight(s) not used by the architecture "
                                                      "(e.g. %s)", shown, len(unexpected), unexpected[0])
    missing = sorted(info.get("missing_keys") or [])
    mismatched = [k if isinstance(k, str) else k[0] for k in info.get("mismatched_keys") or []]
    if missing or mismatched:
        bad = missing or mismatched
        what = "not in the checkpoint" if missing else "of another shape in the checkpoint"
        raise UserError(f"model '{shown}': {len(bad)} weight(s) the config's architecture needs are {what} "
                        f"(e.g. {bad[0]}): config.json does not describe these weights")
    return model


def load_causal_lm(ref: str | Path, dtype: str = "float32", trust_remote_code: bool = False,
                   with_tokenizer: bool = True, device: str | None = None):
    """Load (model, tokenizer) in eval mode from safetensors weights only, on `device`
    (default: `default_device()`)."""
    from transformers import AutoModelForCausalLM

    src = resolve_model(ref, tokenizer=with_tokenizer, trust_remote_code=trust_remote_code)
    model = from_pretrained_checked(src, torch_dtype(dtype), trust_remote_code, shown=str(ref))
    model.to(device or default_device()).eval()
    tok = load_tokenizer(src, trust_remote_code=trust_remote_code) if with_tokenizer else None
    return model, tok


def random_init_like(ref: str | Path, seed: int = 0, num_hidden_layers: int | None = None, **overrides):
    """A randomly initialised model with the architecture of ``ref`` (optionally fewer layers).

    Used as the untrained control in evaluations and as the tiny real-config model in tests.
    """
    import torch
    from transformers import AutoConfig, AutoModelForCausalLM

    config = AutoConfig.from_pretrained(resolve_model(ref, weights=False, tokenizer=False))
    if num_hidden_layers is not None:
        config.num_hidden_layers = num_hidden_layers
    for key, value in overrides.items():
        setattr(config, key, value)
    torch.manual_seed(seed)
    model = AutoModelForCausalLM.from_config(config, dtype=torch.float32)
    model.eval()
    return model
