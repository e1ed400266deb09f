"""Checkpoint folders without loading weights: safetensors headers, config.json, tokenizer vocab.

The pre-checks and post-merge checks compare models of any size (7B included) in milliseconds by
reading only the JSON header of each safetensors shard, never the tensors.
"""

from __future__ import annotations

import json
import math
import struct
from dataclasses import dataclass
from pathlib import Path

from definemed.errors import UserError

# The files mergekit reads weights from (it falls back to pickled pytorch_model.bin otherwise,
# which we never want to reach).
SAFETENSORS_SINGLE = "model.safetensors"
SAFETENSORS_INDEX = "model.safetensors.index.json"
# Tokenizer and chat files of a checkpoint, copied together so that they stay consistent.
TOKENIZER_FILES = ("tokenizer.json", "tokenizer_config.json", "special_tokens_map.json", "tokenizer.model",
                   "added_tokens.json", "vocab.json", "merges.txt", "chat_template.jinja", "chat_template.json",
                   "generation_config.json")
# safetensors dtype codes -> the names configs use
ST_DTYPES = {"F32": "float32", "BF16": "bfloat16", "F16": "float16", "F64": "float64", "F8_E4M3": "float8_e4m3",
             "F8_E5M2": "float8_e5m2", "I64": "int64", "I32": "int32", "I16": "int16", "I8": "int8",
             "U8": "uint8", "BOOL": "bool"}


@dataclass(frozen=True)
class TensorSpec:
    dtype: str  # safetensors code: F32, BF16, ...
    shape: tuple[int, ...]

    @property
    def numel(self) -> int:
        return math.prod(self.shape)


def shard_files(folder: Path, role: str = "model") -> list[Path]:
    """The safetensors files mergekit will read, or a one-line error if there are none."""
    folder = Path(folder)
    if (folder / SAFETENSORS_INDEX).exists():
        try:
            weight_map = json.loads((folder / SAFETENSORS_INDEX).read_text())["weight_map"]
        except (json.JSONDecodeError, KeyError, TypeError):
            raise UserError(f"{role}: {folder / SAFETENSORS_INDEX} is not a valid safetensors index") from None
        files = [folder / name for name in sorted(set(weight_map.values()))]
        missing = [f.name for f in files if not f.exists()]
        if missing:
            raise UserError(f"{role}: {folder} lacks the shard {missing[0]} named in its index")
        return files
    if (folder / SAFETENSORS_SINGLE).exists():
        return [folder / SAFETENSORS_SINGLE]
    pickled = sorted(p.name for p in folder.glob("*.bin")) + sorted(p.name for p in folder.glob("*.pt"))
    hint = f" (found {pickled[0]}: pickled weights are not loaded; convert to safetensors)" if pickled else ""
    raise UserError(f"{role}: {folder} has no {SAFETENSORS_SINGLE} or {SAFETENSORS_INDEX}{hint}")


def read_header(path: Path) -> dict[str, TensorSpec]:
    """Names, dtypes and shapes from one safetensors file's JSON header."""
    try:
        with open(path, "rb") as f:
            (n,) = struct.unpack("<Q", f.read(8))
            if n > 100_000_000:
                raise ValueError("header too large")
            header = json.loads(f.read(n))
    except (OSError, struct.error, ValueError, UnicodeDecodeError) as err:
        raise UserError(f"{path}: not a readable safetensors file ({err})") from None
    return {name: TensorSpec(v["dtype"], tuple(v["shape"])) for name, v in header.items() if name != "__metadata__"}


def tensor_specs(folder: Path, role: str = "model") -> dict[str, TensorSpec]:
    specs: dict[str, TensorSpec] = {}
    for f in shard_files(folder, role):
        specs.update(read_header(f))
    return specs


def read_config(folder: Path, role: str = "model") -> dict:
    path = Path(folder) / "config.json"
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise UserError(f"{role}: {folder} has no config.json") from None
    except (json.JSONDecodeError, UnicodeDecodeError):
        raise UserError(f"{role}: {path} is not valid JSON") from None


def text_config(config: dict) -> dict:
    """The language model's own settings (multimodal configs nest them under text_config)."""
    return config.get("text_config") or config


def tokenizer_vocab(folder: Path, role: str = "model") -> dict[str, int] | None:
    """token -> id from tokenizer.json (model vocab plus added tokens); None if there is none."""
    path = Path(folder) / "tokenizer.json"
    if not path.exists():
        return None
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError):
        raise UserError(f"{role}: {path} is not valid JSON") from None
    raw = (data.get("model") or {}).get("vocab") or {}
    # BPE/WordPiece store {token: id}; Unigram stores [[token, score], ...] in id order.
    vocab = dict(raw) if isinstance(raw, dict) else {entry[0]: i for i, entry in enumerate(raw)}
    for tok in data.get("added_tokens") or []:
        vocab[tok["content"]] = tok["id"]
    return vocab
