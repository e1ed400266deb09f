"""Export a Hugging Face checkpoint (CPT or merged model) to one GGUF file for llama.cpp and Ollama.

Supported: Llama-family checkpoints with a byte-level BPE tokenizer (``tokenizer.json``):
``LlamaForCausalLM`` (SmolLM2, Llama 3.x) and ``MistralForCausalLM`` (Mistral Nemo/Small with the
tekken tokenizer) are written as llama.cpp's ``llama`` architecture, ``Qwen2ForCausalLM`` (Qwen2,
Qwen2.5) as ``qwen2``. Anything else (other architectures, SentencePiece tokenizers such as Llama 2
or Mistral 7B v0.1, rope scaling other than Llama 3's) is refused with a pointer to llama.cpp's
``convert_hf_to_gguf.py``, which this module follows for every convention it uses:

- tensor names from the ``gguf`` package's ``TensorNameMap``; 1-D tensors (norms, biases) stay F32;
- Q/K projections of ``llama`` models are permuted into llama.cpp's rotary layout (``permute``
  below; transformers' GGUF loader reverses it when reading);
- tied embeddings: only ``token_embd`` is written, which is how readers recognise tying;
- ``tokenizer.ggml.pre`` from the hash of the token ids of llama.cpp's probe text (``CHKTXT``).

Tensors are converted one at a time and streamed into a temp file beside the output, renamed at
the end: peak memory is about one tensor, and a crash never leaves a half-written ``.gguf``.
"""

from __future__ import annotations

import json
import logging
import math
import os
from hashlib import sha256
from pathlib import Path

from definemed.errors import UserError

log = logging.getLogger("definemed.models")

CONVERT_HINT = "use llama.cpp's convert_hf_to_gguf.py for it"
DTYPES = ("f32", "f16", "q8_0")

# llama.cpp's probe text and the hashes of its token ids (convert_hf_to_gguf.py, get_vocab_base_pre)
# for the tokenizers of the supported families.
CHKTXT = ('\n \n\n \n\n\n \t \t\t \t\n  \n   \n    \n     \n🚀 (normal) 😶\u200d🌫️ (multiple emojis concatenated) ✅ '
          '🦙🦙 3 33 333 3333 33333 333333 3333333 33333333 3.3 3..3 3...3 កាន់តែពិសេសអាច😁 ?我想在apple工作1314151天～ '
          '------======= нещо на Български \'\'\'\'\'\'```````""""......!!!!!!?????? I\'ve been \'told he\'s there, '
          '\'RE you sure? \'M not sure I\'ll make it, \'D you like some tea? We\'Ve a\'lL')
PRE_TOKENIZERS = {
    "855059429035d75a914d1eda9f10a876752e281a054a7a3d421ef0533e5b6249": "smollm",     # SmolLM, SmolLM2
    "0ef9807a4087ebef797fc749390439009c3b9eda9ad1a097abbe738f486c01e5": "llama-bpe",  # Llama 3.x
    "e636dc30a262dcc0d8c323492e32ae2b70728f4df7dfe9737d9f920a282b8aea": "qwen2",      # Qwen1.5/2/2.5
    "63b97e4253352e6f357cc59ea5b583e3a680eaeaf2632188c2b952de2588485e": "tekken",     # Mistral Nemo
}


def _architectures():
    import gguf

    return {"LlamaForCausalLM": gguf.MODEL_ARCH.LLAMA, "MistralForCausalLM": gguf.MODEL_ARCH.LLAMA,
            "Qwen2ForCausalLM": gguf.MODEL_ARCH.QWEN2}


def export_gguf(model_dir: str | Path, out_file: str | Path, dtype: str = "f16") -> Path:
    """Write ``model_dir`` (a local Hugging Face checkpoint) as one GGUF file; returns its path."""
    from contextlib import ExitStack

    import gguf
    import numpy as np
    from safetensors import safe_open

    from definemed.console import progress_bar
    from definemed.models.check import check_tokenizer, check_weights
    from definemed.models.loading import resolve_model

    if dtype not in DTYPES:
        raise UserError(f"unknown GGUF dtype '{dtype}' (use one of: {', '.join(DTYPES)})")
    model_dir = Path(resolve_model(model_dir, weights=False, tokenizer=False))
    if not model_dir.is_dir():
        raise UserError(f"'{model_dir}': GGUF export needs a local checkpoint folder, not a hub id")
    cfg, arch = _load_config(model_dir)
    check_weights(model_dir)  # after the architecture check: an unsupported one is the first thing to say
    check_tokenizer(model_dir)
    out_file = Path(out_file)
    out_file.parent.mkdir(parents=True, exist_ok=True)

    writer = gguf.GGUFWriter(path=None, arch=gguf.MODEL_ARCH_NAMES[arch])
    writer.add_type(gguf.GGUFType.MODEL)
    writer.add_name(model_dir.name)
    writer.add_file_type({"f32": gguf.LlamaFileType.ALL_F32, "f16": gguf.LlamaFileType.MOSTLY_F16,
                          "q8_0": gguf.LlamaFileType.MOSTLY_Q8_0}[dtype])
    _add_hparams(writer, cfg)
    _add_tokenizer(writer, model_dir, cfg.vocab_size)
    writer.add_quantization_version(gguf.GGML_QUANT_VERSION)

    plan = _plan(model_dir, cfg, arch, dtype)
    for name, _src, shape, qtype in plan:
        byte_shape = gguf.quants.quant_shape_to_byte_shape(shape, qtype) if qtype == gguf.GGMLQuantizationType.Q8_0 \
            else shape
        np_dtype = np.dtype({gguf.GGMLQuantizationType.F32: np.float32,
                             gguf.GGMLQuantizationType.F16: np.float16}.get(qtype, np.uint8))
        writer.add_tensor_info(name, byte_shape, np_dtype, math.prod(byte_shape) * np_dtype.itemsize, raw_dtype=qtype)

    tmp = out_file.parent / f".{out_file.name}.{os.getpid()}.tmp"
    try:
        writer.write_header_to_file(path=tmp)
        writer.write_kv_data_to_file()
        writer.write_ti_data_to_file()
        with progress_bar(f"GGUF {dtype}", total=len(plan)) as advance, ExitStack() as stack:
            handles: dict[Path, object] = {}
            for name, (file, key), _shape, qtype in plan:
                if file is not None and file not in handles:
                    handles[file] = stack.enter_context(safe_open(str(file), framework="pt"))
                data = _tensor_data(handles.get(file), key, name, cfg, arch)
                writer.write_tensor_data(_encode(data, qtype))
                advance()
        writer.close()
        with open(tmp, "rb+") as f:
            os.fsync(f.fileno())
        os.replace(tmp, out_file)
    except BaseException:
        writer.close()
        tmp.unlink(missing_ok=True)
        raise
    log.info("wrote %s (%s, %d tensors)", out_file, dtype, len(plan))
    return out_file


def _load_config(model_dir: Path):
    from transformers import AutoConfig

    raw = json.loads((model_dir / "config.json").read_text())
    name = (raw.get("architectures") or [raw.get("model_type", "?")])[0]
    arches = _architectures()
    if name not in arches:
        raise UserError(f"{model_dir}: architecture {name} cannot be exported to GGUF here (supported: "
                        f"{', '.join(arches)}); {CONVERT_HINT}")
    cfg = AutoConfig.from_pretrained(model_dir)
    rope = _rope_parameters(cfg)
    if rope.get("rope_type", "default") not in ("default", "llama3"):
        raise UserError(f"{model_dir}: rope scaling '{rope['rope_type']}' is not supported by this export; "
                        f"{CONVERT_HINT}")
    return cfg, arches[name]


def _rope_parameters(cfg) -> dict:
    rope = dict(getattr(cfg, "rope_parameters", None) or getattr(cfg, "rope_scaling", None) or {})
    rope.setdefault("rope_theta", getattr(cfg, "rope_theta", 10000.0))
    return rope


def _head_dim(cfg) -> int:
    return getattr(cfg, "head_dim", None) or cfg.hidden_size // cfg.num_attention_heads


def _add_hparams(writer, cfg) -> None:
    n_kv = getattr(cfg, "num_key_value_heads", None) or cfg.num_attention_heads
    writer.add_context_length(cfg.max_position_embeddings)
    writer.add_embedding_length(cfg.hidden_size)
    writer.add_block_count(cfg.num_hidden_layers)
    writer.add_feed_forward_length(cfg.intermediate_size)
    writer.add_head_count(cfg.num_attention_heads)
    writer.add_head_count_kv(n_kv)
    writer.add_rope_freq_base(float(_rope_parameters(cfg)["rope_theta"]))
    writer.add_layer_norm_rms_eps(cfg.rms_norm_eps)
    writer.add_vocab_size(cfg.vocab_size)
    writer.add_rope_dimension_count(_head_dim(cfg))
    writer.add_key_length(_head_dim(cfg))
    writer.add_value_length(_head_dim(cfg))


def _add_tokenizer(writer, model_dir: Path, vocab_size: int) -> None:
    """Byte-level BPE vocabulary as llama.cpp's ``gpt2`` tokenizer model (like ``_set_vocab_gpt2``)."""
    import gguf
    from transformers import AutoTokenizer

    tj_path = model_dir / "tokenizer.json"
    if not tj_path.exists():
        raise UserError(f"{model_dir}: no tokenizer.json (GGUF export needs a fast byte-level BPE tokenizer)")
    tj = json.loads(tj_path.read_text(encoding="utf-8"))
    model, decoder = tj.get("model") or {}, tj.get("decoder") or {}
    if model.get("type") != "BPE" or model.get("byte_fallback") or decoder.get("type") != "ByteLevel":
        raise UserError(f"{tj_path}: not a byte-level BPE tokenizer (SentencePiece-style tokenizers are not "
                        f"supported here); {CONVERT_HINT}")
    tok = AutoTokenizer.from_pretrained(model_dir)
    pre = _pre_tokenizer(tok)
    if pre is None:
        raise UserError(f"{tj_path}: unknown pre-tokenizer (known: {', '.join(PRE_TOKENIZERS.values())}); "
                        f"{CONVERT_HINT}")

    vocab = tok.get_vocab()
    if max(vocab.values()) >= vocab_size:
        raise UserError(f"{model_dir}: tokenizer has ids up to {max(vocab.values())}, more than the model's "
                        f"vocab_size {vocab_size}")
    reverse = {i: t for t, i in vocab.items()}
    added, decoder_map = tok.get_added_vocab(), tok.added_tokens_decoder
    tokens, types = [], []
    for i in range(vocab_size):
        if i not in reverse:  # embedding rows beyond the tokenizer (e.g. Qwen2.5 pads to a multiple of 128)
            tokens.append(f"[PAD{i}]")
            types.append(gguf.TokenType.UNUSED)
            continue
        token = reverse[i]
        if token in added:
            special = decoder_map[i].special or (token.startswith("<|") and token.endswith("|>"))
            types.append(gguf.TokenType.CONTROL if special else gguf.TokenType.USER_DEFINED)
        else:
            types.append(gguf.TokenType.NORMAL)
        tokens.append(token)
    writer.add_tokenizer_model("gpt2")
    writer.add_tokenizer_pre(pre)
    writer.add_token_list(tokens)
    writer.add_token_types(types)

    special = gguf.SpecialVocab(model_dir, load_merges=True, n_vocab=vocab_size)
    # Whether BOS/EOS are added is taken from what the tokenizer really does, not from config guesses.
    probe = tok("a").input_ids
    special.add_special_token["bos"] = tok.bos_token_id is not None and probe[:1] == [tok.bos_token_id]
    special.add_special_token["eos"] = tok.eos_token_id is not None and probe[-1:] == [tok.eos_token_id]
    if special.chat_template is None and tok.chat_template:
        special.chat_template = tok.chat_template
    special.add_to_gguf(writer, quiet=True)


def _pre_tokenizer(tok) -> str | None:
    """llama.cpp's name for how text is split before BPE: by llama.cpp's probe hash, else (a changed
    vocabulary changes the hash) by the split regex itself, via transformers' GGUF regex table."""
    chkhsh = sha256(str(tok.encode(CHKTXT)).encode()).hexdigest()
    if chkhsh in PRE_TOKENIZERS:
        return PRE_TOKENIZERS[chkhsh]
    try:
        from transformers.integrations.gguf.gguf_tokenizer_mapping import GGUF_PRE_TOKENIZER_SPLITS
    except ImportError:
        return None
    pre = json.loads(tok.backend_tokenizer.to_str()).get("pre_tokenizer") or {}
    regexes = {p.get("pattern", {}).get("Regex") for p in pre.get("pretokenizers", [pre]) if p.get("type") == "Split"}
    return next((name for name in ("llama-bpe", "qwen2", "tekken") if GGUF_PRE_TOKENIZER_SPLITS.get(name) in regexes),
                None)


def _plan(model_dir: Path, cfg, arch, dtype: str) -> list[tuple[str, tuple[Path, str], tuple[int, ...], object]]:
    """(gguf name, (file, hf name), shape, GGML type) for every tensor to write, rope_freqs included."""
    import gguf
    from safetensors import safe_open

    index = model_dir / "model.safetensors.index.json"
    files = (sorted({model_dir / f for f in json.loads(index.read_text())["weight_map"].values()}) if index.exists()
             else [model_dir / "model.safetensors"] if (model_dir / "model.safetensors").exists() else [])
    if not files:
        raise UserError(f"{model_dir}: no *.safetensors weights (GGUF export reads safetensors only)")
    names = gguf.get_tensor_name_map(arch, cfg.num_hidden_layers)
    Q = gguf.GGMLQuantizationType
    plan = []
    for file in files:
        with safe_open(str(file), framework="pt") as f:
            for key in f.keys():
                if key.endswith(".rotary_emb.inv_freq"):  # recomputed by every reader
                    continue
                if key == "lm_head.weight" and cfg.tie_word_embeddings:
                    continue  # tied: token_embd serves as output
                name = names.get_name(key, try_suffixes=(".weight", ".bias"))
                if name is None:
                    raise UserError(f"{file}: tensor '{key}' has no GGUF name for {gguf.MODEL_ARCH_NAMES[arch]}; "
                                    f"{CONVERT_HINT}")
                shape = tuple(f.get_slice(key).get_shape())
                if len(shape) == 1 or dtype == "f32":
                    qtype = Q.F32
                elif dtype == "q8_0" and shape[-1] % gguf.GGML_QUANT_SIZES[Q.Q8_0][0] == 0:
                    qtype = Q.Q8_0
                else:  # f16, and the fallback of llama.cpp for rows that do not fill Q8_0 blocks
                    qtype = Q.F16
                plan.append((name, (file, key), shape, qtype))
    if _rope_parameters(cfg).get("rope_type") == "llama3":
        plan.append((gguf.TENSOR_NAMES[gguf.MODEL_TENSOR.ROPE_FREQS] + ".weight", (None, "rope_freqs"),
                     (_head_dim(cfg) // 2,), Q.F32))
    return plan


def permute(weights, n_head: int, n_head_kv: int):
    """llama.cpp's ``LlamaModel.permute``: HF's rotate-half Q/K rows → interleaved rotary pairs."""
    if n_head_kv is not None and n_head != n_head_kv:
        n_head = n_head_kv
    return (weights.reshape(n_head, 2, weights.shape[0] // n_head // 2, *weights.shape[1:])
            .swapaxes(1, 2).reshape(weights.shape))


def _tensor_data(handle, key: str, name: str, cfg, arch):
    import gguf

    if key == "rope_freqs":
        return llama3_rope_factors(cfg)
    data = handle.get_tensor(key).float().numpy()  # via torch: bf16 checkpoints have no numpy dtype
    if arch == gguf.MODEL_ARCH.LLAMA:
        n_head = cfg.num_attention_heads
        if ".attn_q." in name:
            data = permute(data, n_head, n_head)
        elif ".attn_k." in name:
            data = permute(data, n_head, getattr(cfg, "num_key_value_heads", None) or n_head)
    return data


def _encode(data, qtype):
    import gguf
    import numpy as np

    Q = gguf.GGMLQuantizationType
    if qtype == Q.F32:
        return np.ascontiguousarray(data, dtype=np.float32)
    if qtype == Q.F16:
        return np.ascontiguousarray(data, dtype=np.float16)
    return gguf.quants.quantize(np.ascontiguousarray(data, dtype=np.float32), qtype)


def llama3_rope_factors(cfg):
    """Per-frequency divisors of Llama 3.1+ rope scaling, as llama.cpp reads them from ``rope_freqs``."""
    import numpy as np

    rope = _rope_parameters(cfg)
    dim = _head_dim(cfg)
    freqs = 1.0 / (float(rope["rope_theta"]) ** (np.arange(0, dim, 2, dtype=np.float32) / dim))
    factor = rope.get("factor", 8.0)
    low, high = rope.get("low_freq_factor", 1.0), rope.get("high_freq_factor", 4.0)
    old_ctx = rope.get("original_max_position_embeddings", 8192)
    low_wavelen, high_wavelen = old_ctx / low, old_ctx / high
    out = []
    for freq in freqs:
        wavelen = 2 * math.pi / freq
        if wavelen < high_wavelen:
            out.append(1.0)
        elif wavelen > low_wavelen:
            out.append(factor)
        else:
            smooth = (old_ctx / wavelen - low) / (high - low)
            out.append(1 / ((1 - smooth) / factor + smooth))
    return np.asarray(out, dtype=np.float32)
