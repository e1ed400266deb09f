"""Broken model folders are one line naming the folder and what is wrong, in every command that
loads a model (issue #12): no tokenizer, pickle-only weights, config.json not JSON, unknown
model_type, truncated safetensors, unreadable tokenizer files."""

from __future__ import annotations

import json

import pytest

from ._data import copy_model, one_line_error, tiny_model  # noqa: F401 (fixture)


def _no_tokenizer(good, out):
    return copy_model(good, out, skip=("tokenizer.json", "tokenizer_config.json", "chat_template.jinja"))


def _pickle_only(good, out):
    copy_model(good, out, skip=("model.safetensors",))
    (out / "pytorch_model.bin").write_bytes(b"\x80\x04pickled weights")
    return out


def _config_not_json(good, out):
    copy_model(good, out)
    (out / "config.json").write_text('{"model_type": "llama", ')
    return out


def _unknown_model_type(good, out):
    copy_model(good, out)
    conf = json.loads((out / "config.json").read_text())
    (out / "config.json").write_text(json.dumps({**conf, "model_type": "medllama-x"}))
    return out


def _truncated_weights(good, out):
    copy_model(good, out)
    data = (out / "model.safetensors").read_bytes()
    (out / "model.safetensors").write_bytes(data[: len(data) // 2])  # header intact, file short
    return out


def _garbled_tokenizer(good, out):
    copy_model(good, out)
    (out / "tokenizer.json").write_bytes(b'{"version": "1.0", "model": {\x00\x01')
    return out


# fault -> (folder maker, words the message must contain)
FAULTS = {
    "no-tokenizer": (_no_tokenizer, "no tokenizer"),
    "pickle-only": (_pickle_only, "pytorch_model.bin"),
    "config-not-json": (_config_not_json, "config.json"),
    "unknown-model-type": (_unknown_model_type, "medllama-x"),
    "truncated-safetensors": (_truncated_weights, "model.safetensors"),
    "garbled-tokenizer": (_garbled_tokenizer, "tokenizer.json"),
}


@pytest.fixture(scope="module")
def broken(tiny_model, tmp_path_factory):
    root = tmp_path_factory.mktemp("broken-models")
    return {name: make(tiny_model, root / name) for name, (make, _) in FAULTS.items()}


def _data_files(tmp_path):
    docs = tmp_path / "docs.jsonl"
    docs.write_text("".join(json.dumps({"text": f"Der Patient hat Fieber, Tag {i}."}) + "\n" for i in range(4)))
    mcq = tmp_path / "mcq.jsonl"
    mcq.write_text(json.dumps({"id": "q1", "question": "Was senkt Fieber?", "choices": ["Paracetamol", "Zucker"],
                               "answer": 0, "subject": "pharma"}) + "\n")
    inst = tmp_path / "inst.jsonl"
    inst.write_text(json.dumps({"id": "i1", "category": "erklaerung", "instruction": "Erkläre Fieber."}) + "\n")
    return docs, mcq, inst


def _command(name, model, tmp_path, good):
    docs, mcq, inst = _data_files(tmp_path)
    if name == "train run":
        cfg = tmp_path / "train.yaml"
        cfg.write_text(f"output_dir: {tmp_path / 'train'}\nmodel: {model}\ndata:\n  - path: {docs}\n"
                       "max_steps: 2\nwarmup_steps: 1\nseq_len: 32\nmicro_batch_size: 1\nheldout: {}\n")
        return ["train", "run", cfg]
    if name == "merge run":
        cfg = tmp_path / "merge.yaml"
        cfg.write_text(f"output_dir: {tmp_path / 'merge'}\nmodels:\n  cpt: {model}\n  instruct: {good}\n"
                       "sweep: [0.5]\neval:\n  enabled: false\n")
        return ["merge", "run", cfg]
    return {"eval perplexity": ["eval", "perplexity", docs, "--model", model],
            "eval mcq": ["eval", "mcq", "--model", model, "--data", mcq, "--out", tmp_path / "mcq"],
            "eval generate": ["eval", "generate", "--model", model, "--data", inst, "--out", tmp_path / "gen"],
            "model export-gguf": ["model", "export-gguf", model, "-o", tmp_path / "m.gguf"],
            "model chat": ["model", "chat", "Hallo", "--model", model]}[name]


COMMANDS = ("train run", "eval perplexity", "eval mcq", "eval generate", "merge run", "model export-gguf",
            "model chat")


@pytest.mark.parametrize("fault", list(FAULTS))
@pytest.mark.parametrize("command", COMMANDS)
def test_broken_model_folder_is_one_line_in_every_command(command, fault, broken, tiny_model, tmp_path, capsys,
                                                          monkeypatch):
    monkeypatch.setenv("DEFINEMED_CACHE", str(tmp_path / "cache"))
    folder = broken[fault]
    if command == "merge run" and fault == "no-tokenizer":
        needle = "tokenizer"  # the merge's own tokenizer comparison names it (tokenizer_source may allow it)
    else:
        needle = FAULTS[fault][1]
    line = one_line_error(capsys, monkeypatch, *_command(command, folder, tmp_path, tiny_model),
                          status_prefix="merge 1/")
    assert str(folder) in line or folder.name in line, line
    assert needle in line, line
    assert not (tmp_path / "m.gguf").exists()


def test_good_folder_passes_the_check(tiny_model):
    from definemed.models import resolve_model

    assert resolve_model(tiny_model) == str(tiny_model)


def _foreign_model_type(good, out):
    """A config naming another architecture than the weights hold: transformers would build that
    architecture and fill it with random weights ("Loading weights: 0it"), silently."""
    copy_model(good, out)
    conf = json.loads((out / "config.json").read_text())
    (out / "config.json").write_text(json.dumps({**conf, "model_type": "gpt_neox", "architectures": ["GPTNeoXForCausalLM"],
                                                 "rotary_pct": 1.0}))
    return out


def _missing_layer(good, out):
    """Weights of one layer fewer than the config asks for: the last layer would be random."""
    copy_model(good, out)
    conf = json.loads((out / "config.json").read_text())
    (out / "config.json").write_text(json.dumps({**conf, "num_hidden_layers": conf["num_hidden_layers"] + 1}))
    return out


@pytest.mark.parametrize("make", [_foreign_model_type, _missing_layer])
@pytest.mark.parametrize("command", ("train run", "eval perplexity", "eval mcq", "eval generate", "model chat"))
def test_weights_that_do_not_fit_the_config_are_refused(command, make, tiny_model, tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("DEFINEMED_CACHE", str(tmp_path / "cache"))
    folder = make(tiny_model, tmp_path / "model")
    # progress bars (transformers' "Loading weights", the answers' bar) are not part of the error
    line = one_line_error(capsys, monkeypatch, *_command(command, folder, tmp_path, tiny_model),
                          status_prefix=("Loading weights", "generate "))
    assert str(folder) in line and "not in the checkpoint" in line, line
