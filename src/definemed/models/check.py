"""Cheap integrity check of a local model folder, before anything loads it.

transformers reports a broken checkpoint as a long traceback from deep inside ``from_pretrained``
(a JSONDecodeError for a config that is not JSON, a KeyError for an unknown ``model_type``, a
SafetensorError or a segfault-free but confusing "incomplete metadata" for a truncated
safetensors file, a tokenizers panic for a garbled tokenizer.json). Every command that loads a
model resolves it through `resolve_model`, which calls `check_model_folder` here, so each of
those is one line naming the folder and what is wrong. Only file headers are read: the check
costs milliseconds even for a 70B checkpoint.
"""

from __future__ import annotations

import json
import os
import struct
from pathlib import Path

from definemed.errors import UserError

PICKLE_SUFFIXES = (".bin", ".pt", ".pth", ".ckpt", ".pkl")
# Any one of these is a tokenizer transformers can load (fast, sentencepiece, BPE or WordPiece vocab).
TOKENIZER_FILES = ("tokenizer.json", "tokenizer.model", "spiece.model", "sentencepiece.bpe.model", "vocab.json",
                   "vocab.txt")
JSON_TOKENIZER_FILES = ("tokenizer.json", "tokenizer_config.json", "special_tokens_map.json")


def _read_json(path: Path, folder: Path, what: str) -> object:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except PermissionError:
        raise UserError(f"model folder {folder}: {path.name} is not readable (permission denied)") from None
    except (UnicodeDecodeError, json.JSONDecodeError) as err:
        raise UserError(f"model folder {folder}: {path.name} is not valid JSON ({what}; {err})") from None
    except OSError as err:
        raise UserError(f"model folder {folder}: cannot read {path.name} ({err.strerror or err})") from None


def check_config(folder: Path, trust_remote_code: bool = False) -> dict:
    """config.json parses and names a model type this transformers knows (or custom code, if allowed)."""
    from transformers import __version__
    from transformers.models.auto.configuration_auto import CONFIG_MAPPING_NAMES

    config = _read_json(folder / "config.json", folder, "config.json")
    if not isinstance(config, dict):
        raise UserError(f"model folder {folder}: config.json is not a JSON object")
    model_type = config.get("model_type")
    if "auto_map" in config and trust_remote_code:
        return config  # custom architecture: its own code decides
    if not model_type:
        raise UserError(f"model folder {folder}: config.json has no 'model_type'")
    if model_type not in CONFIG_MAPPING_NAMES:
        hint = " (it ships custom code: set trust_remote_code: true if you trust it)" if "auto_map" in config else ""
        raise UserError(f"model folder {folder}: config.json has model_type '{model_type}', which transformers "
                        f"{__version__} does not know{hint}")
    return config


def check_safetensors_file(path: Path, folder: Path) -> None:
    """Header parses and the file is as long as its header says (a cut-off download or copy is not)."""
    try:
        size = path.stat().st_size
        with open(path, "rb") as fh:
            head = fh.read(8)
            if len(head) < 8:
                raise UserError(f"model folder {folder}: {path.name} is truncated "
                                f"({size} bytes, no safetensors header)")
            (n,) = struct.unpack("<Q", head)
            if n > size - 8:
                raise UserError(f"model folder {folder}: {path.name} is truncated or not safetensors "
                                f"(header of {n} bytes in a {size}-byte file)")
            header = json.loads(fh.read(n))
    except PermissionError:
        raise UserError(f"model folder {folder}: {path.name} is not readable (permission denied)") from None
    except (UnicodeDecodeError, json.JSONDecodeError):
        raise UserError(f"model folder {folder}: {path.name} is not a safetensors file (header is not JSON)") from None
    ends = [t["data_offsets"][1] for k, t in header.items()
            if k != "__metadata__" and isinstance(t, dict) and len(t.get("data_offsets") or ()) == 2]
    expected = 8 + n + max(ends, default=0)
    if size < expected:
        raise UserError(f"model folder {folder}: {path.name} is truncated ({size} of {expected} bytes; "
                        "the download or copy was cut off)")


def safetensors_files(folder: Path) -> list[Path]:
    index = folder / "model.safetensors.index.json"
    if index.exists():
        data = _read_json(index, folder, "shard index")
        shards = sorted(set((data.get("weight_map") or {}).values())) if isinstance(data, dict) else []
        missing = [s for s in shards if not (folder / s).exists()]
        if missing:
            raise UserError(f"model folder {folder}: shard {missing[0]} listed in model.safetensors.index.json "
                            f"is missing" + (f" (+{len(missing) - 1} more)" if len(missing) > 1 else ""))
        return [folder / s for s in shards]
    return sorted(folder.glob("*.safetensors"))


def check_weights(folder: Path) -> None:
    files = safetensors_files(folder)
    if not files:
        pickles = sorted(p.name for p in folder.iterdir() if p.name.endswith(PICKLE_SUFFIXES))
        if pickles:
            raise UserError(f"model folder {folder}: only pickle weights ({', '.join(pickles[:3])}), which are "
                            "refused (they can run code); convert them to safetensors")
        raise UserError(f"model folder {folder}: no weights (model.safetensors) found")
    for f in files:
        check_safetensors_file(f, folder)


def check_tokenizer(folder: Path) -> None:
    if not any((folder / name).exists() for name in TOKENIZER_FILES):
        raise UserError(f"model folder {folder}: no tokenizer (none of {', '.join(TOKENIZER_FILES)}); "
                        "copy the tokenizer files of the model it came from")
    for name in JSON_TOKENIZER_FILES:
        if (folder / name).exists():
            _read_json(folder / name, folder, "tokenizer file")
    for name in TOKENIZER_FILES:
        if (folder / name).exists() and not os.access(folder / name, os.R_OK):
            raise UserError(f"model folder {folder}: {name} is not readable (permission denied)")


def check_model_folder(folder: str | Path, weights: bool = True, tokenizer: bool = True,
                       trust_remote_code: bool = False) -> None:
    """Raise a one-line `UserError` for anything in ``folder`` that would break loading."""
    folder = Path(folder)
    check_config(folder, trust_remote_code)
    if weights:
        check_weights(folder)
    if tokenizer:
        check_tokenizer(folder)
