"""Real mergekit merges of tiny real-architecture models (bundled config, 2 layers, random weights):
known answers per method, pre-check errors, the sweep on disk, resume, reload and generation."""

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import torch
import yaml

from conftest import ROOT
from definemed.config import validate_config
from definemed.errors import UserError
from definemed.merge import mergekit_config as mkc
from definemed.merge.config import MergeConfig
from definemed.merge.prechecks import check_models
from definemed.merge.run import mergekit_merge, run_merge

from .tiny import link_weights, load_tensors, save_tiny, with_extra_token

NO_EVAL = {"enabled": False}
# Scoring costs ~1 s per 300 tokens here (the 49k-vocabulary head dominates): one document, two
# instructions; long windows, since short ones cost more per token.
TINY_EVAL = {"docs": 1, "max_length": 512, "instructions": 2, "max_new_tokens": 4,
             "heldout": {"path": str(ROOT / "data/sample/fineweb2_deu"), "split": "test", "min_medical": 4,
                         "lang": "de", "gold_labels": str(ROOT / "data/sample/labels/fineweb2_deu_gold.jsonl")},
             "instructions_data": str(ROOT / "data/sample/instructions_de/instructions_de.jsonl")}


@pytest.fixture(scope="module")
def tiny(tmp_path_factory, bundled_model_path):
    """instruct, cpt and base (the base without a chat template, like many pre-trained models),
    plus models that must fail the pre-checks."""
    root = tmp_path_factory.mktemp("tiny")
    m = {"instruct": save_tiny(bundled_model_path, root / "instruct", seed=1),
         "cpt": save_tiny(bundled_model_path, root / "cpt", seed=2),
         "base": save_tiny(bundled_model_path, root / "base", seed=3, chat_template=False)}
    m["extra_token"] = with_extra_token(m["cpt"], root / "extra_token")
    m["three_layers"] = save_tiny(bundled_model_path, root / "three_layers", seed=4, num_hidden_layers=3)
    m["hidden_512"] = save_tiny(bundled_model_path, root / "hidden_512", seed=5, hidden_size=512,
                                num_attention_heads=8, num_key_value_heads=2)
    m["tensors"] = {k: load_tensors(m[k]) for k in ("instruct", "cpt", "base")}
    return m


def config(tiny, out: Path, **changes) -> MergeConfig:
    data = {"output_dir": str(out), "models": {"cpt": str(tiny["cpt"]), "instruct": str(tiny["instruct"])},
            "sweep": [0.5], "eval": NO_EVAL, **changes}
    return validate_config(MergeConfig, data, "test")


def merge_at(tiny, tmp_path, t, **changes) -> dict:
    """One mergekit merge of our config at ``t``; returns the output tensors."""
    cfg = config(tiny, tmp_path / "run", **changes)
    roles = {k: tiny[k] for k in ("instruct", "cpt", "base") if k == "base" and cfg.models.base or k != "base"}
    out = tmp_path / f"out-{t}"
    mergekit_merge(mkc.build(cfg, roles, t), out, seed=0)
    return load_tensors(out)


def assert_close(got: dict, want: dict, atol: float = 0.0):
    assert got.keys() == want.keys()
    for name in want:
        diff = (got[name].double() - want[name].double()).abs().max().item()
        assert diff <= atol, f"{name}: max diff {diff}"


# --- known answers -------------------------------------------------------------------------
def test_slerp_t0_is_instruct_and_t1_is_cpt(tiny, tmp_path):
    # mergekit's slerp: t = 0 gives base_model (our instruct parent), t = 1 the other model
    assert_close(merge_at(tiny, tmp_path, 0.0), tiny["tensors"]["instruct"], atol=1e-6)
    assert_close(merge_at(tiny, tmp_path, 1.0), tiny["tensors"]["cpt"], atol=1e-6)


def test_linear_t0_is_parent_a_and_half_is_the_mean(tiny, tmp_path):
    assert_close(merge_at(tiny, tmp_path, 0.0, method="linear"), tiny["tensors"]["instruct"])
    a, b = tiny["tensors"]["instruct"], tiny["tensors"]["cpt"]
    assert_close(merge_at(tiny, tmp_path, 0.5, method="linear"), {k: (a[k] + b[k]) / 2 for k in a}, atol=1e-6)


def test_task_arithmetic_half_is_the_mean_too(tiny, tmp_path):
    # base + 0.5 (instruct - base) + 0.5 (cpt - base) = (instruct + cpt) / 2
    got = merge_at(tiny, tmp_path, 0.5, method="task_arithmetic",
                   models={"cpt": str(tiny["cpt"]), "instruct": str(tiny["instruct"]), "base": str(tiny["base"])})
    a, b = tiny["tensors"]["instruct"], tiny["tensors"]["cpt"]
    assert_close(got, {k: (a[k] + b[k]) / 2 for k in a}, atol=1e-5)


@pytest.mark.parametrize("method,dtype", [("slerp", "float32"), ("linear", "bfloat16"), ("ties", "float32"),
                                          ("dare_ties", "float32"), ("task_arithmetic", "float32")])
def test_every_method_merges_loads_and_generates(tiny, tmp_path, method, dtype):
    extra = {"models": {"cpt": str(tiny["cpt"]), "instruct": str(tiny["instruct"]), "base": str(tiny["base"])}} \
        if method in ("ties", "dare_ties", "task_arithmetic") else {}
    metrics = run_merge(config(tiny, tmp_path / "run", method=method, dtype=dtype, **extra))
    (point,) = metrics["points"]
    checks = point["checks"]
    assert checks["ok"] and checks["parameters"] == 35_392_320 and checks["dtype"] == dtype
    assert checks["chat_template"] and checks["new_tokens"] >= 1  # the base has no template: copied from instruct
    # config.json and tokenizer are the instruct parent's, whatever mergekit's base model was
    def config_of(folder):
        conf = json.loads((Path(folder) / "config.json").read_text())
        return {k: v for k, v in conf.items() if k not in ("dtype", "torch_dtype", "transformers_version")}
    assert config_of(point["path"]) == config_of(tiny["instruct"])
    assert json.loads((Path(point["path"]) / "config.json").read_text())["dtype"] == dtype
    assert (Path(point["path"]) / "tokenizer.json").read_bytes() == (tiny["instruct"] / "tokenizer.json").read_bytes()
    merged = load_tensors(point["path"])
    assert {t.dtype for t in merged.values()} == {getattr(torch, dtype)}
    a, b = tiny["tensors"]["instruct"], tiny["tensors"]["cpt"]
    name = "model.layers.0.mlp.up_proj.weight"
    assert not torch.equal(merged[name].float(), a[name]) and not torch.equal(merged[name].float(), b[name])
    assert all(torch.isfinite(t).all() for t in merged.values())


# --- pre-checks ----------------------------------------------------------------------------
def one_line_error(fn) -> str:
    with pytest.raises(UserError) as err:
        fn()
    msg = str(err.value)
    assert "\n" not in msg
    return msg


def test_tokenizer_mismatch_is_refused_unless_tokenizer_source(tiny, tmp_path):
    folders = {"instruct": tiny["instruct"], "cpt": tiny["extra_token"]}
    msg = one_line_error(lambda: check_models(folders))
    assert "different tokenizers" in msg and "'<befund>'" in msg and "tokenizer_source" in msg
    # through the whole stage, before anything is written
    cfg = config(tiny, tmp_path / "run", models={"cpt": str(tiny["extra_token"]), "instruct": str(tiny["instruct"])})
    assert "different tokenizers" in one_line_error(lambda: run_merge(cfg))
    assert not (tmp_path / "run" / "manifest.json").exists()
    # an explicit choice lets it through: mergekit builds the output tokenizer from the instruct parent
    cfg = config(tiny, tmp_path / "chosen", tokenizer_source="instruct",
                 models={"cpt": str(tiny["extra_token"]), "instruct": str(tiny["instruct"])})
    (point,) = run_merge(cfg)["points"]
    assert point["checks"]["ok"] and point["checks"]["chat_template"]
    assert mkc.to_configuration(yaml.safe_load(Path(point["path"], "mergekit.yaml").read_text())).tokenizer_source


def test_layer_count_mismatch(tiny):
    msg = one_line_error(lambda: check_models({"instruct": tiny["instruct"], "cpt": tiny["three_layers"]}))
    assert "different weights" in msg and "num_hidden_layers 2 vs 3" in msg and "model.layers.2." in msg


def test_hidden_size_mismatch(tiny):
    msg = one_line_error(lambda: check_models({"instruct": tiny["instruct"], "cpt": tiny["hidden_512"]}))
    assert "different shapes" in msg and "hidden_size 576 vs 512" in msg


def test_shapes_are_read_from_the_weights_not_the_config(tiny, tmp_path):
    liar = tmp_path / "liar"  # a 3-layer checkpoint whose config.json claims 2 layers
    liar.mkdir()
    (liar / "model.safetensors").symlink_to(tiny["three_layers"] / "model.safetensors")
    (liar / "config.json").write_text((tiny["instruct"] / "config.json").read_text())
    for name in ("tokenizer.json", "tokenizer_config.json"):
        (liar / name).write_text((tiny["instruct"] / name).read_text())
    msg = one_line_error(lambda: check_models({"instruct": tiny["instruct"], "cpt": liar}))
    assert "different weights" in msg and "model.layers.2." in msg


def test_missing_path_and_pickle_only_and_quantized(tiny, tmp_path):
    cfg = config(tiny, tmp_path / "run", models={"cpt": str(tmp_path / "nope"), "instruct": str(tiny["instruct"])})
    assert "models.cpt" in one_line_error(lambda: run_merge(cfg))
    pickled = tmp_path / "pickled"
    pickled.mkdir()
    (pickled / "config.json").write_text((tiny["instruct"] / "config.json").read_text())
    (pickled / "pytorch_model.bin").write_bytes(b"not loaded")
    msg = one_line_error(lambda: check_models({"instruct": tiny["instruct"], "cpt": pickled}))
    assert "pytorch_model.bin" in msg and "pickled" in msg
    quant = tmp_path / "quant"
    quant.mkdir()
    (quant / "model.safetensors").symlink_to(tiny["cpt"] / "model.safetensors")
    conf = json.loads((tiny["cpt"] / "config.json").read_text())
    (quant / "config.json").write_text(json.dumps({**conf, "quantization_config": {"quant_method": "gptq"}}))
    assert "quantized" in one_line_error(lambda: check_models({"instruct": tiny["instruct"], "cpt": quant}))


def test_unsupported_dtype_in_raw_mergekit_config(tiny, tmp_path):
    raw = {"merge_method": "linear", "dtype": "int8",
           "models": [{"model": str(tiny["instruct"]), "parameters": {"weight": 1.0}}]}
    cfg = validate_config(MergeConfig, {"output_dir": str(tmp_path / "run"), "mergekit": raw, "eval": NO_EVAL})
    assert "unsupported dtype 'int8'" in one_line_error(lambda: run_merge(cfg))


def test_architecture_mismatch(tiny, tmp_path):
    other = tmp_path / "other"
    link_weights(tiny["cpt"], other)
    conf = json.loads((tiny["cpt"] / "config.json").read_text())
    (other / "config.json").unlink()
    (other / "config.json").write_text(json.dumps({**conf, "model_type": "mistral",
                                                    "architectures": ["MistralForCausalLM"]}))
    msg = one_line_error(lambda: check_models({"instruct": tiny["instruct"], "cpt": other}, tokenizer_source="x"))
    assert "different architectures" in msg and "mistral" in msg


# --- the sweep ---------------------------------------------------------------------------
@pytest.fixture(scope="module")
def sweep_run(tiny, tmp_path_factory):
    from definemed.data.heldout import TRAINING_DOCS_FILE, DocIndex
    from definemed.data.sources import TextSource, load_docs

    root = tmp_path_factory.mktemp("sweep")
    # the CPT parent was "trained" on the first held-out document: the sweep must not score it
    cpt = root / "cpt"
    shutil.copytree(tiny["cpt"], cpt)
    DocIndex.build([load_docs(TextSource(**TINY_EVAL["heldout"]))[0]]).save(cpt / TRAINING_DOCS_FILE)
    cfg = config({**tiny, "cpt": cpt}, root / "merge", sweep=[0.3, 0.7], eval=TINY_EVAL)
    return cfg, run_merge(cfg)


def test_sweep_writes_one_model_per_value_and_the_table(sweep_run, tiny):
    cfg, metrics = sweep_run
    out = Path(cfg.output_dir)
    assert [p["label"] for p in metrics["points"]] == ["t0.3", "t0.7"]
    for label, t in (("t0.3", 0.3), ("t0.7", 0.7)):
        folder = out / label
        for name in ("model.safetensors", "config.json", "tokenizer.json", "tokenizer_config.json",
                     "chat_template.jinja", "generation_config.json", "README.md", "mergekit.yaml", "verify.json"):
            assert (folder / name).exists(), name
        assert not list(folder.glob("*.bin"))
        card = (folder / "README.md").read_text()
        assert cfg.models.instruct in card and cfg.models.cpt in card and "SLERP" in card and f"t = {t}" in card
        mk = yaml.safe_load((folder / "mergekit.yaml").read_text())
        assert mk["merge_method"] == "slerp" and mk["parameters"]["t"] == t
    sweep = json.loads((out / "sweep.json").read_text())
    assert [p["t"] for p in sweep["points"]] == [0.3, 0.7]
    assert [p["label"] for p in sweep["parents"]] == ["instruct", "cpt"]
    for row in sweep["points"] + sweep["parents"]:
        ev = row["eval"]
        assert ev["medical_ppl"] > 1 and ev["tokens"] > 0 and ev["docs"] == 1
        assert ev["constraints"] >= 2 and 0 <= ev["if_strict"] <= ev["if_loose"] <= 1
    assert json.loads((out / "manifest.json").read_text())["status"] == "finished"
    # the best point is the one with the lowest perplexity (the two points differ, so picking either is no pass)
    ppl = {p["label"]: p["eval"]["medical_ppl"] for p in sweep["points"]}
    assert ppl["t0.3"] != ppl["t0.7"]
    assert json.loads((out / "metrics.json").read_text())["best_medical_ppl"] == min(ppl, key=ppl.get)


def test_sweep_excludes_documents_a_parent_was_trained_on(sweep_run):
    """Held-out is checked in code: the CPT parent's training index holds the first held-out
    document, so the sweep drops it (counted in sweep.json, metrics and manifest), scores the
    next one, and each merged model inherits the index for later held-out checks."""
    from definemed.data.heldout import model_training_index
    from definemed.data.sources import Doc, TextSource, load_docs

    cfg, metrics = sweep_run
    out = Path(cfg.output_dir)
    docs = load_docs(TextSource(**TINY_EVAL["heldout"]))
    assert metrics["heldout_overlap_docs"] == 1
    assert json.loads((out / "sweep.json").read_text())["heldout_overlap_docs"] == 1
    assert json.loads((out / "manifest.json").read_text())["heldout_overlap_docs"] == 1
    for row in metrics["points"]:
        assert row["eval"]["heldout_overlap_docs"] == 1 and row["eval"]["docs"] == 1
        index = model_training_index(out / row["label"])
        assert index is not None and index.contains(docs[0]) and not index.contains(docs[1])
    assert not model_training_index(out / "t0.3").contains(Doc("x", "ein anderer Text"))


def test_merged_model_reloads_and_generates(sweep_run):
    from definemed.models import load_causal_lm
    from definemed.models.chat import GenerationSettings, build_messages, generate_chat

    cfg, _ = sweep_run
    model, tok = load_causal_lm(Path(cfg.output_dir) / "t0.3")
    assert tok.chat_template and "<|im_start|>" in tok.chat_template
    res = generate_chat(model, tok, [build_messages("Was hilft gegen Kopfschmerzen?")],
                        GenerationSettings(max_new_tokens=5))[0]
    assert res["new_tokens"] >= 1


def test_interrupted_sweep_resumes_only_missing_points(sweep_run, monkeypatch, capsys):
    import definemed.merge.run as run_mod
    from definemed.merge.cli_glue import merge_run

    cfg, _ = sweep_run
    out = Path(cfg.output_dir)
    kept = (out / "t0.3" / "model.safetensors").stat().st_mtime_ns
    shutil.rmtree(out / "t0.7")  # as if killed while merging the second point
    manifest = json.loads((out / "manifest.json").read_text())
    (out / "manifest.json").write_text(json.dumps({**manifest, "status": "running"}))
    calls = []
    real = run_mod.mergekit_merge
    monkeypatch.setattr(run_mod, "mergekit_merge", lambda *a, **k: (calls.append(a[1]), real(*a, **k)))
    metrics = run_merge(cfg)
    assert [Path(c).name for c in calls] == [".t0.7.partial"]
    assert (out / "t0.3" / "model.safetensors").stat().st_mtime_ns == kept
    assert metrics["points"][1]["checks"]["ok"] and not (out / ".t0.7.partial").exists()
    # a finished run is a no-op through the CLI glue, which prints the table
    cfg_file = out.parent / "merge.yaml"
    cfg_file.write_text(yaml.safe_dump(cfg.model_dump(mode="json")))
    capsys.readouterr()
    merge_run(cfg_file, [])
    printed = capsys.readouterr()
    assert len(calls) == 1
    assert "t0.3" in printed.out and "t0.7" in printed.out and "nothing to do" in printed.err
    assert "different config" in one_line_error(lambda: merge_run(cfg_file, ["sweep=[0.4]"]))


def test_raw_mergekit_config(tiny, tmp_path):
    raw = {"merge_method": "linear", "dtype": "float32",
           "models": [{"model": str(tiny["instruct"]), "parameters": {"weight": 0.25}},
                      {"model": str(tiny["cpt"]), "parameters": {"weight": 0.75}}]}
    cfg = validate_config(MergeConfig, {"output_dir": str(tmp_path / "run"), "mergekit": raw, "eval": NO_EVAL})
    metrics = run_merge(cfg)
    assert metrics["points"][0]["label"] == "custom" and metrics["points"][0]["checks"]["ok"]
    a, b = tiny["tensors"]["instruct"], tiny["tensors"]["cpt"]
    assert_close(load_tensors(tmp_path / "run" / "custom"), {k: 0.25 * a[k] + 0.75 * b[k] for k in a}, atol=1e-6)


@pytest.mark.slow
def test_written_mergekit_yaml_reruns_with_the_mergekit_cli(sweep_run, tmp_path):
    cfg, _ = sweep_run
    folder = Path(cfg.output_dir) / "t0.3"
    exe = Path(sys.executable).parent / "mergekit-yaml"
    res = subprocess.run([str(exe), str(folder / "mergekit.yaml"), str(tmp_path / "cli"), "--copy-tokenizer",
                          "--no-lazy-unpickle", "--quiet"], capture_output=True, text=True, timeout=300)
    assert res.returncode == 0, res.stderr[-2000:]
    assert_close(load_tensors(tmp_path / "cli"), load_tensors(folder))
