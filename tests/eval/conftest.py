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
