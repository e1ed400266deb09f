"""Tiny real-architecture checkpoints for merge tests: the bundled model's config with 2 layers,
random weights, saved as safetensors with the bundled tokenizer (35M parameters, ~140 MB)."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

TOKENIZER_FILES = ("tokenizer.json", "tokenizer_config.json", "chat_template.jinja", "generation_config.json")


def save_tiny(bundled: Path, out: Path, seed: int, chat_template: bool = True, num_hidden_layers: int = 2,
              **overrides) -> Path:
    from definemed.models import random_init_like

    model = random_init_like(bundled, seed=seed, num_hidden_layers=num_hidden_layers, **overrides)
    model.save_pretrained(out, safe_serialization=True)
    for name in TOKENIZER_FILES:
        if (bundled / name).exists() and (chat_template or name != "chat_template.jinja"):
            shutil.copy2(bundled / name, out / name)
    return out


def link_weights(src: Path, out: Path) -> None:
    """Same weights and config as ``src`` without copying 140 MB (hard links; copy as fallback)."""
    out.mkdir(parents=True)
    for name in ("model.safetensors", "config.json"):
        try:
            os.link(src / name, out / name)
        except OSError:
            shutil.copy2(src / name, out / name)


def with_extra_token(src: Path, out: Path) -> Path:
    """``src``'s weights with a tokenizer that has one more added token (same embedding shape)."""
    from transformers import AutoTokenizer

    link_weights(src, out)
    tok = AutoTokenizer.from_pretrained(src)
    tok.add_tokens(["<befund>"])
    tok.save_pretrained(out)
    return out


def load_tensors(folder: Path) -> dict:
    from safetensors.torch import load_file

    tensors = {}
    for f in sorted(Path(folder).glob("*.safetensors")):
        tensors.update(load_file(f))
    return tensors
