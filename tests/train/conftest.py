import pytest
import yaml

from conftest import ROOT

GOLD = str(ROOT / "data/sample/labels/fineweb2_deu_gold.jsonl")
DOCS = str(ROOT / "data/sample/fineweb2_deu")


@pytest.fixture(scope="session")
def tiny_model(bundled_model_path, tmp_path_factory):
    """A 2-layer random model built from the real SmolLM2 config, with the real tokenizer."""
    from transformers import AutoTokenizer

    from definemed.models import random_init_like

    path = tmp_path_factory.mktemp("tiny")
    random_init_like(bundled_model_path, num_hidden_layers=2, seed=0).save_pretrained(path, safe_serialization=True)
    AutoTokenizer.from_pretrained(bundled_model_path).save_pretrained(path)
    return path


def train_config(out, model, **changes) -> dict:
    cfg = {
        "output_dir": str(out), "model": str(model), "seed": 0,
        "data": [
            {"path": DOCS, "gold_labels": GOLD, "split": "train", "min_medical": 3, "lang": "de"},
            {"path": DOCS, "gold_labels": GOLD, "split": "train", "max_medical": 0, "kind": "replay", "weight": 0.3},
        ],
        "heldout": {"medical": {"path": DOCS, "gold_labels": GOLD, "split": "test", "min_medical": 4, "lang": "de"}},
        "heldout_max_docs": 3, "heldout_max_length": 64,
        "seq_len": 64, "micro_batch_size": 2, "max_steps": 6, "warmup_steps": 2, "lr": 1e-3,
        "checkpoint_every": 2, "keep_last": 2, "tensorboard": False,
    }
    cfg.update(changes)
    return cfg


def write_yaml(path, cfg):
    path.write_text(yaml.safe_dump(cfg))
    return path
