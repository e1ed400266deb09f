"""GGUF export round trips: tiny real-config models (2 layers, random weights) are exported, read back
with gguf's reader and loaded by transformers' GGUF loader, whose logits must match the original's;
the tokenizer and chat template must survive. The real bundled model is checked under `slow`."""

import json
import shutil

import numpy as np
import pytest
import torch
from gguf import GGUFReader

from conftest import run_cli
from definemed.errors import UserError
from definemed.models.gguf_export import export_gguf, llama3_rope_factors
from merge.tiny import TOKENIZER_FILES, save_tiny

TOKEN_IDS = [[1, 520, 7000, 30, 12345, 49151, 2, 900, 4711, 17]]
GERMAN = "Die Ärztin prüft Übelkeit, Müdigkeit und Schwindel nach 400 mg Ibuprofen – größere Dosen schaden."
# Max |logit difference| allowed, per dtype. f32 is lossless (the only error is float summation
# order). f16 keeps ~3 significant digits of each weight. Q8_0 stores each block of 32 weights as
# int8 times one f16 scale: up to 1/254 of the block's largest weight per weight, which compounds
# over the layers; measured on the tiny model: f16 0.0015, q8_0 0.039 (logits up to ~2.2).
ATOL = {"f32": 1e-4, "f16": 1e-2, "q8_0": 0.1}


def logits(model, ids=TOKEN_IDS):
    with torch.no_grad():
        return model(torch.tensor(ids)).logits[0]


def load_gguf(path):
    from transformers import AutoModelForCausalLM

    return AutoModelForCausalLM.from_pretrained(path.parent, gguf_file=path.name, dtype=torch.float32).eval()


def load_hf(folder):
    from transformers import AutoModelForCausalLM

    return AutoModelForCausalLM.from_pretrained(folder, dtype=torch.float32).eval()


def save_tiny_config(bundled, out, config):
    """A random model of another architecture with the bundled tokenizer (vocab 49152)."""
    from transformers import AutoModelForCausalLM

    torch.manual_seed(0)
    AutoModelForCausalLM.from_config(config, dtype=torch.float32).save_pretrained(out)
    for name in TOKENIZER_FILES[:3]:
        shutil.copy2(bundled / name, out / name)
    return out


@pytest.fixture(scope="module")
def tiny(tmp_path_factory, bundled_model_path):
    return save_tiny(bundled_model_path, tmp_path_factory.mktemp("gguf") / "tiny", seed=7)


@pytest.fixture(scope="module")
def tiny_f32(tiny):
    return export_gguf(tiny, tiny.parent / "tiny-f32.gguf", dtype="f32")


def test_f32_file_has_llama_metadata_and_tensors(tiny, tiny_f32):
    reader = GGUFReader(tiny_f32)
    fields = {k: f.contents() for k, f in reader.fields.items() if not k.startswith("tokenizer.ggml.t")}
    assert fields["general.architecture"] == "llama"
    expected = {"llama.context_length": 8192, "llama.embedding_length": 576, "llama.block_count": 2,
                "llama.feed_forward_length": 1536, "llama.attention.head_count": 9,
                "llama.attention.head_count_kv": 3, "llama.rope.freq_base": 100000.0,
                "llama.vocab_size": 49152, "llama.rope.dimension_count": 64,
                "tokenizer.ggml.model": "gpt2", "tokenizer.ggml.pre": "smollm",
                "tokenizer.ggml.bos_token_id": 1, "tokenizer.ggml.eos_token_id": 2,
                "tokenizer.ggml.padding_token_id": 2, "tokenizer.ggml.add_bos_token": False}
    assert {k: fields.get(k) for k in expected} == expected
    assert fields["llama.attention.layer_norm_rms_epsilon"] == pytest.approx(1e-5)
    assert len(reader.fields["tokenizer.ggml.tokens"].data) == 49152
    assert len(reader.fields["tokenizer.ggml.merges"].data) == 48900
    assert reader.fields["tokenizer.ggml.token_type"].contents()[:3] == [3, 3, 3]  # <|endoftext|> etc.: control

    tensors = {t.name: (tuple(int(d) for d in t.shape), t.tensor_type.name) for t in reader.tensors}
    assert len(tensors) == 2 * 9 + 2  # 9 per block, token_embd, output_norm; no output: tied
    assert "output.weight" not in tensors
    assert tensors["token_embd.weight"] == ((576, 49152), "F32")  # GGUF lists dims innermost first
    assert tensors["blk.1.attn_k.weight"] == ((576, 192), "F32")
    assert tensors["blk.0.ffn_down.weight"] == ((1536, 576), "F32")
    assert tensors["output_norm.weight"] == ((576,), "F32")


@pytest.mark.parametrize("dtype", ["f32", "f16", "q8_0"])
def test_logits_round_trip(tiny, tiny_f32, dtype):
    path = tiny_f32 if dtype == "f32" else export_gguf(tiny, tiny.parent / f"tiny-{dtype}.gguf", dtype=dtype)
    kinds = {t.tensor_type.name for t in GGUFReader(path).tensors if len(t.shape) == 2}
    assert kinds == {"f32": {"F32"}, "f16": {"F16"}, "q8_0": {"Q8_0"}}[dtype]
    ref, got = logits(load_hf(tiny)), logits(load_gguf(path))
    diff = (got - ref).abs().max().item()
    assert diff < ATOL[dtype], diff
    if dtype != "f32":
        assert diff > 0  # really stored at lower precision


def test_tokenizer_and_chat_template_round_trip(tiny, tiny_f32):
    from transformers import AutoTokenizer

    orig = AutoTokenizer.from_pretrained(tiny)
    back = AutoTokenizer.from_pretrained(tiny_f32.parent, gguf_file=tiny_f32.name)
    ids = orig(GERMAN).input_ids
    assert back(GERMAN).input_ids == ids and len(ids) > 10
    assert back.decode(ids) == GERMAN
    assert back.chat_template == orig.chat_template and "<|im_start|>" in back.chat_template
    msgs = [{"role": "user", "content": "Was hilft gegen Übelkeit?"}]
    assert back.apply_chat_template(msgs, add_generation_prompt=True, tokenize=False) == \
        orig.apply_chat_template(msgs, add_generation_prompt=True, tokenize=False)


def test_qwen2_untied_with_biases(tmp_path, bundled_model_path):
    from transformers import Qwen2Config

    cfg = Qwen2Config(vocab_size=49152, hidden_size=64, intermediate_size=128, num_hidden_layers=2,
                      num_attention_heads=4, num_key_value_heads=2, tie_word_embeddings=False)
    src = save_tiny_config(bundled_model_path, tmp_path / "qwen2", cfg)
    path = export_gguf(src, tmp_path / "qwen2.gguf", dtype="f32")
    names = {t.name for t in GGUFReader(path).tensors}
    assert {"output.weight", "blk.0.attn_q.bias", "blk.1.attn_v.bias"} <= names
    assert GGUFReader(path).fields["general.architecture"].contents() == "qwen2"
    assert (logits(load_gguf(path)) - logits(load_hf(src))).abs().max().item() < ATOL["f32"]


def test_mistral_as_llama_with_explicit_head_dim(tmp_path, bundled_model_path):
    from transformers import MistralConfig

    # like Mistral Small 24B: head_dim (16) is not hidden_size / heads (64 / 8)
    cfg = MistralConfig(vocab_size=49152, hidden_size=64, intermediate_size=128, num_hidden_layers=2,
                        num_attention_heads=8, num_key_value_heads=2, head_dim=16, sliding_window=None)
    src = save_tiny_config(bundled_model_path, tmp_path / "tiny-mistral", cfg)
    path = export_gguf(src, tmp_path / "mistral.gguf", dtype="f32")
    assert GGUFReader(path).fields["llama.attention.key_length"].contents() == 16
    assert (logits(load_gguf(path)) - logits(load_hf(src))).abs().max().item() < ATOL["f32"]


def test_llama3_rope_factors_match_transformers():
    from transformers import LlamaConfig
    from transformers.modeling_rope_utils import ROPE_INIT_FUNCTIONS

    cfg = LlamaConfig(hidden_size=2048, num_attention_heads=32, max_position_embeddings=131072, rope_theta=500000.0,
                      rope_scaling={"rope_type": "llama3", "factor": 32.0, "low_freq_factor": 1.0,
                                    "high_freq_factor": 4.0, "original_max_position_embeddings": 8192})
    scaled, _ = ROPE_INIT_FUNCTIONS["llama3"](cfg)
    plain = 1.0 / (500000.0 ** (torch.arange(0, 64, 2, dtype=torch.float32) / 64))
    factors = llama3_rope_factors(cfg)
    assert factors.shape == (32,) and factors.min() == 1.0 and factors.max() == 32.0
    np.testing.assert_allclose(factors, (plain / scaled).numpy(), rtol=1e-4)


def test_user_errors(tmp_path, tiny):
    with pytest.raises(UserError, match="unknown GGUF dtype"):
        export_gguf(tiny, tmp_path / "x.gguf", dtype="q4_0")
    other = tmp_path / "gpt2"
    other.mkdir()
    (other / "config.json").write_text(json.dumps({"architectures": ["GPT2LMHeadModel"], "model_type": "gpt2"}))
    with pytest.raises(UserError, match="GPT2LMHeadModel.*convert_hf_to_gguf.py"):
        export_gguf(other, tmp_path / "x.gguf")
    sp = tmp_path / "sentencepiece"
    sp.mkdir()
    for f in tiny.iterdir():
        (sp / f.name).symlink_to(f)
    (sp / "tokenizer.json").unlink()
    tj = json.loads((tiny / "tokenizer.json").read_text())
    tj["model"]["byte_fallback"] = True
    (sp / "tokenizer.json").write_text(json.dumps(tj))
    with pytest.raises(UserError, match="not a byte-level BPE tokenizer"):
        export_gguf(sp, tmp_path / "x.gguf")
    assert not list(tmp_path.glob("*.gguf")) and not list(tmp_path.glob(".*tmp"))  # nothing half-written


def test_cli_export(tmp_path, tiny):
    res = run_cli("model", "export-gguf", tiny, "-o", tmp_path / "m.gguf", "--dtype", "q8_0")
    assert res.returncode == 0, res.stderr
    assert (tmp_path / "m.gguf").exists() and str(tmp_path / "m.gguf") in res.stdout
    bad = run_cli("model", "export-gguf", tiny, "-o", tmp_path / "n.gguf", "--dtype", "q4")
    assert bad.returncode == 2 and "unknown GGUF dtype" in bad.stderr and "Traceback" not in bad.stderr


@pytest.mark.slow
def test_bundled_model_f16(tmp_path, bundled_model_path, bundled):
    model, tok = bundled
    path = export_gguf(bundled_model_path, tmp_path / "smollm2.gguf", dtype="f16")
    back = load_gguf(path)
    ids = tok.apply_chat_template([{"role": "user", "content": "Welche Nebenwirkungen hat Ibuprofen?"}],
                                  add_generation_prompt=True, tokenize=True, return_dict=True)["input_ids"]
    diff = (logits(back, [ids]) - logits(model, [ids])).abs()
    # f16 weights through 30 layers; logits span -31..40. Measured: max 0.051, mean 0.006.
    assert diff.max().item() < 0.2 and diff.mean().item() < 0.02, (diff.max().item(), diff.mean().item())

    def greedy(m):
        out = m.generate(torch.tensor([ids]), max_new_tokens=10, do_sample=False, pad_token_id=tok.eos_token_id)
        return out[0, len(ids):].tolist()

    with torch.no_grad():
        assert greedy(back) == greedy(model)
