"""Checks before merging, each failure a one-line `UserError` naming the models involved.

mergekit would otherwise fail deep inside its planner (or, worse, succeed: two tokenizers with
the same vocabulary size but different ids merge without complaint into a broken model). All
checks read headers and JSON only, so they take milliseconds even for 7B checkpoints.
"""

from __future__ import annotations

from pathlib import Path
from typing import Optional

from definemed.errors import UserError
from definemed.merge.config import DTYPES
from definemed.merge.weights import (ST_DTYPES, TensorSpec, read_config, shard_files, tensor_specs, text_config,
                                     tokenizer_vocab)

# Only these header dtypes can be merged; anything else is quantized or otherwise packed.
MERGEABLE_ST_DTYPES = ("F32", "BF16", "F16")
# Config fields whose disagreement explains a shape mismatch in words.
SHAPE_FIELDS = ("hidden_size", "num_hidden_layers", "intermediate_size", "num_attention_heads",
                "num_key_value_heads", "head_dim", "vocab_size", "tie_word_embeddings")
# Files worth fetching for a hub id: mergekit needs weights and configs, we need the tokenizer too.
HUB_PATTERNS = ["*.json", "*.safetensors", "tokenizer.model", "*.jinja", "*.txt"]


def local_model(ref: str, role: str) -> Path:
    """A local checkpoint folder for a model reference (hub ids are downloaded, safetensors only)."""
    from definemed.models import resolve_model

    try:
        resolved = resolve_model(ref, tokenizer=False)  # tokenizers: _check_tokenizers
    except UserError as err:
        raise UserError(f"{role}: {err}") from None
    if Path(resolved).exists():
        return Path(resolved).resolve()
    from huggingface_hub import snapshot_download

    try:
        return Path(snapshot_download(resolved, allow_patterns=HUB_PATTERNS))
    except Exception as err:  # offline, gated, missing repo: all mean "cannot get it"
        first = (str(err).strip().splitlines() or [type(err).__name__])[0]
        raise UserError(f"{role}: cannot download '{ref}' from the hub: {first}") from None


def check_dtype(name: Optional[str], where: str = "dtype") -> None:
    if name is not None and name not in DTYPES:
        raise UserError(f"{where}: unsupported dtype '{name}' (use one of: {', '.join(DTYPES)})")


def _check_weights_dtype(role: str, folder: Path, specs: dict[str, TensorSpec]) -> None:
    config = read_config(folder, role)
    if "quantization_config" in config or "quantization_config" in text_config(config):
        method = (config.get("quantization_config") or {}).get("quant_method", "unknown")
        raise UserError(f"{role}: {folder} is a quantized checkpoint ({method}): merge the unquantized weights")
    bad = sorted({s.dtype for s in specs.values()} - set(MERGEABLE_ST_DTYPES))
    if bad:
        names = ", ".join(ST_DTYPES.get(b, b) for b in bad)
        raise UserError(f"{role}: {folder} holds {names} tensors: merging needs float32, bfloat16 or float16 weights")


def _check_architecture(a: str, ca: dict, b: str, cb: dict) -> None:
    def arch(c: dict) -> str:
        return f"{c.get('model_type', '?')} ({', '.join(c.get('architectures') or ['?'])})"

    if (ca.get("model_type"), ca.get("architectures") or []) != (cb.get("model_type"), cb.get("architectures") or []):
        raise UserError(f"different architectures: {a} is {arch(ca)} but {b} is {arch(cb)}; "
                        "mergekit merges models of one architecture only")


def _check_tokenizers(a: str, fa: Path, b: str, fb: Path) -> None:
    va, vb = tokenizer_vocab(fa, a), tokenizer_vocab(fb, b)
    if va is None or vb is None:
        from definemed.runs import sha256_file

        sp_a, sp_b = fa / "tokenizer.model", fb / "tokenizer.model"
        if va is None and vb is None and sp_a.exists() and sp_b.exists():
            if sha256_file(sp_a) == sha256_file(sp_b):
                return
            raise UserError(f"different tokenizers: {a} and {b} have different tokenizer.model files; "
                            "set tokenizer_source to merge them anyway")
        missing, where = (a, fa) if va is None else (b, fb)
        raise UserError(f"{missing}: {where} has no tokenizer.json: cannot check that the tokenizers match "
                        "(set tokenizer_source to choose one)")
    if va == vb:
        return
    only_a = sorted((i, t) for t, i in va.items() if t not in vb)
    only_b = sorted((i, t) for t, i in vb.items() if t not in va)
    moved = sorted((va[t], t) for t in va.keys() & vb.keys() if va[t] != vb[t])
    if only_a:
        first = f"{only_a[0][1]!r} (id {only_a[0][0]}) only in {a}"
    elif only_b:
        first = f"{only_b[0][1]!r} (id {only_b[0][0]}) only in {b}"
    else:
        first = f"{moved[0][1]!r} has id {va[moved[0][1]]} in {a} but {vb[moved[0][1]]} in {b}"
    raise UserError(f"different tokenizers: {a} has {len(va)} tokens, {b} has {len(vb)}; first difference: "
                    f"{first}. Use the same tokenizer or set tokenizer_source")


def _check_shapes(a: str, ca: dict, sa: dict[str, TensorSpec], b: str, cb: dict, sb: dict[str, TensorSpec],
                  vocab_may_differ: bool) -> None:
    ta, tb = text_config(ca), text_config(cb)
    fields = [f"{k} {ta.get(k)} vs {tb.get(k)}" for k in SHAPE_FIELDS
              if ta.get(k) != tb.get(k) and not (vocab_may_differ and k == "vocab_size")]
    hint = f" ({', '.join(fields)})" if fields else ""
    only_a, only_b = sorted(sa.keys() - sb.keys()), sorted(sb.keys() - sa.keys())
    if only_a or only_b:
        name, where = (only_a[0], a) if only_a else (only_b[0], b)
        more = len(only_a) + len(only_b) - 1
        raise UserError(f"different weights: {a} and {b} do not have the same tensors{hint}; e.g. {name} is only "
                        f"in {where}" + (f" (+{more} more)" if more else ""))
    vocab = {ta.get("vocab_size"), tb.get("vocab_size")}
    for name in sorted(sa):
        x, y = sa[name].shape, sb[name].shape
        if x == y or (vocab_may_differ and x and y and x[0] in vocab and y[0] in vocab and x[1:] == y[1:]):
            continue
        raise UserError(f"different shapes: {name} is {list(x)} in {a} but {list(y)} in {b}{hint}")
    if fields:  # same tensors, but the configs disagree on the architecture's sizes
        raise UserError(f"different configs: {a} and {b} differ in {', '.join(fields)}")


def check_models(folders: dict[str, Path], tokenizer_source: Optional[str] = None) -> dict:
    """Compare every model against the first; returns a summary (type, parameters, dtypes) per model."""
    roles = list(folders)
    for role, folder in folders.items():
        if not Path(folder).is_dir():
            raise UserError(f"{role}: model folder not found: {folder}")
        shard_files(folder, role)
    configs = {r: read_config(folders[r], r) for r in roles}
    specs = {r: tensor_specs(folders[r], r) for r in roles}
    for r in roles:
        _check_weights_dtype(r, folders[r], specs[r])
    ref = roles[0]
    for r in roles[1:]:
        _check_architecture(ref, configs[ref], r, configs[r])
        if tokenizer_source is None:
            _check_tokenizers(ref, folders[ref], r, folders[r])
        _check_shapes(ref, configs[ref], specs[ref], r, configs[r], specs[r],
                      vocab_may_differ=tokenizer_source is not None)
    return {r: {"path": str(folders[r]), "model_type": configs[r].get("model_type"),
                "parameters": sum(s.numel for s in specs[r].values()),
                "dtypes": sorted({ST_DTYPES[s.dtype] for s in specs[r].values()})} for r in roles}
