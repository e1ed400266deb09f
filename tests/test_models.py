"""The bundled real model: conversion, loading, German chat generation, perplexity vs control."""

import json
import math

import pytest

from definemed.errors import UserError
from definemed.models import random_init_like, resolve_model

pytestmark = pytest.mark.slow


def test_converted_checkpoint_is_plain_safetensors(bundled_model_path):
    files = {p.name for p in bundled_model_path.iterdir()}
    assert {"config.json", "model.safetensors", "tokenizer.json", "tokenizer_config.json"} <= files
    assert not any(f.endswith((".bin", ".pt", ".gguf")) for f in files)
    config = json.loads((bundled_model_path / "config.json").read_text())
    assert "quantization_config" not in config
    assert config["model_type"] == "llama" and config["num_hidden_layers"] == 30


def test_loads_with_chat_template(bundled):
    model, tok = bundled
    n = sum(p.numel() for p in model.parameters())
    assert 134_000_000 < n < 135_000_000
    assert tok.chat_template and "<|im_start|>" in tok.chat_template


def test_greedy_chat_answer_is_german(bundled):
    from definemed.demo import DEFAULT_SYSTEM
    from definemed.eval.langid import detect_language
    from definemed.models.chat import GenerationSettings, build_messages, generate_chat

    model, tok = bundled
    res = generate_chat(model, tok, [build_messages("Welche Nebenwirkungen hat Ibuprofen?", DEFAULT_SYSTEM)],
                        GenerationSettings(max_new_tokens=40))[0]
    assert len(res["text"].split()) >= 5
    assert detect_language(res["text"]) == "de", res["text"]
    again = generate_chat(model, tok, [build_messages("Welche Nebenwirkungen hat Ibuprofen?", DEFAULT_SYSTEM)],
                          GenerationSettings(max_new_tokens=40))[0]
    assert again["text"] == res["text"]  # greedy is deterministic


def test_perplexity_far_below_random_init(bundled, bundled_model_path):
    from definemed.data.sample import labelled_docs
    from definemed.eval.perplexity import perplexity

    model, tok = bundled
    texts = [d["text"] for d in labelled_docs("test") if d["lang"] == "de"][:8]
    real = perplexity(model, tok, texts, max_length=256)
    control = perplexity(random_init_like(bundled_model_path, seed=0), tok, texts, max_length=256)
    assert math.isfinite(real["ppl"]) and real["tokens"] > 1000
    assert real["ppl"] < control["ppl"] / 20  # random init sits near the vocabulary size (49k)


def test_tiny_model_from_real_config(bundled_model_path):
    tiny = random_init_like(bundled_model_path, num_hidden_layers=2, seed=1)
    assert tiny.config.num_hidden_layers == 2 and tiny.config.hidden_size == 576


def test_model_reference_errors(tmp_path):
    with pytest.raises(UserError, match="neither a local folder nor a hub id"):
        resolve_model("./does/not/exist")
    (tmp_path / "empty").mkdir()
    with pytest.raises(UserError, match="no config.json"):
        resolve_model(tmp_path / "empty")
    assert resolve_model("Qwen/Qwen2.5-7B") == "Qwen/Qwen2.5-7B"  # hub ids pass through for users online
