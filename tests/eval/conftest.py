import shutil

import pytest

TOKENIZER_FILES = ("tokenizer.json", "tokenizer_config.json", "chat_template.jinja", "generation_config.json")


@pytest.fixture(scope="session")
def tiny_model(bundled_model_path, tmp_path_factory):
    """A 2-layer random model with the real SmolLM2 config, tokenizer and chat template."""
    from definemed.models import random_init_like

    path = tmp_path_factory.mktemp("tiny-eval")
    random_init_like(bundled_model_path, num_hidden_layers=2, seed=0).save_pretrained(path, safe_serialization=True)
    for name in TOKENIZER_FILES:
        if (bundled_model_path / name).exists():
            shutil.copy2(bundled_model_path / name, path / name)
    return path


@pytest.fixture(scope="session")
def tiny_loaded(tiny_model):
    from definemed.models import load_causal_lm

    return load_causal_lm(tiny_model)


BOS = "<|endoftext|>"


def write_bos_tokenizer(src, dest):
    """The SmolLM2 tokenizer turned into a BOS-adding one like Llama 3's: a post-processor that
    prepends BOS to every encoding, ``add_bos_token``, and a chat template that starts with
    ``{{ bos_token }}`` (so a rendered chat already holds the BOS text)."""
    import json

    tok = json.loads((src / "tokenizer.json").read_text())
    bos = {"SpecialToken": {"id": BOS, "type_id": 0}}
    tok["post_processor"] = {
        "type": "TemplateProcessing",
        "single": [bos, {"Sequence": {"id": "A", "type_id": 0}}],
        "pair": [bos, {"Sequence": {"id": "A", "type_id": 0}}, {"Sequence": {"id": "B", "type_id": 1}}],
        "special_tokens": {BOS: {"id": BOS, "ids": [0], "tokens": [BOS]}}}
    (dest / "tokenizer.json").write_text(json.dumps(tok))
    cfg = {**json.loads((src / "tokenizer_config.json").read_text()), "bos_token": BOS, "add_bos_token": True}
    (dest / "tokenizer_config.json").write_text(json.dumps(cfg))
    (dest / "chat_template.jinja").write_text("{{ bos_token }}" + (src / "chat_template.jinja").read_text())


def save_tiny_llama(bundled_model_path, path, add_bos: bool):
    """A tiny random Llama (hidden 64, 2 layers, SmolLM2's vocabulary) saved as safetensors with the
    SmolLM2 tokenizer, made BOS-adding (Llama 3 style) when ``add_bos``."""
    from tiny_models import tiny_causal_lm

    model = tiny_causal_lm("llama", "sdpa", vocab_size=49152, bos_token_id=0 if add_bos else 1, eos_token_id=2,
                           pad_token_id=2)
    model.save_pretrained(path, safe_serialization=True)
    if add_bos:
        write_bos_tokenizer(bundled_model_path, path)
    else:
        for name in TOKENIZER_FILES:
            if (bundled_model_path / name).exists():
                shutil.copy2(bundled_model_path / name, path / name)
    return path


@pytest.fixture(scope="session")
def tiny_llama(bundled_model_path, tmp_path_factory):
    """Tiny random Llama with the SmolLM2 tokenizer (adds no BOS)."""
    return save_tiny_llama(bundled_model_path, tmp_path_factory.mktemp("tiny-llama"), add_bos=False)


@pytest.fixture(scope="session")
def tiny_bos_model(bundled_model_path, tmp_path_factory):
    """Tiny random Llama with a tokenizer that adds BOS and a chat template that starts with it."""
    return save_tiny_llama(bundled_model_path, tmp_path_factory.mktemp("tiny-bos"), add_bos=True)
