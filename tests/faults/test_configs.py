"""Issue #12, configs: every field typed and checked, the whole pipeline validated before the
first stage runs, errors that name the file and the field (never '<root>')."""

from __future__ import annotations

import json

import pytest

from conftest import ROOT, run_cli
from faults._configs import (assert_one_line_error, cli, pipeline_yaml, tiny_model_dir,  # noqa: F401 (fixture)
                             write_yaml)

# --- a bad eval section: `pipeline --check` refuses it in one line naming the file and the field ------------

BAD_EVAL = [
    pytest.param({"eval": {"judge_mode": "vibes"}}, "eval.judge_mode", id="judge_mode-vibes"),
    pytest.param({"eval": {"judge_mode": "Loglik"}}, "eval.judge_mode", id="judge_mode-case"),
    pytest.param({"eval": {"mcq_data": "no/such/mcq.jsonl"}}, "eval.mcq_data", id="mcq_data-missing"),
    pytest.param({"eval": {"mcq_data": "data"}}, "eval.mcq_data", id="mcq_data-folder"),
    pytest.param({"eval": {"instructions": "no/such/instructions.jsonl"}}, "eval.instructions",
                 id="instructions-missing"),
    pytest.param({"eval": {"judge_model": "./no/such/judge"}}, "eval.judge_model", id="judge_model-missing"),
    pytest.param({"eval": {"judge_model": None, "judge_base_url": "http://localhost:8001/v1"}},
                 "eval.judge_served_model", id="base_url-without-served_model"),
    pytest.param({"eval": {"judge_served_model": "Qwen/Qwen2.5-72B-Instruct"}}, "eval.judge_base_url",
                 id="served_model-without-base_url"),
    pytest.param({"eval": {"seed": -1}}, "eval.seed", id="eval-seed-negative"),
    pytest.param({"model": "/no/such/model"}, "model", id="model-absolute-missing"),
    pytest.param({"model": "runs/no/such/model"}, "model", id="model-relative-missing"),
    pytest.param({"seed": -3}, "seed", id="pipeline-seed-negative"),
]


@pytest.mark.parametrize("fields,field", BAD_EVAL)
def test_pipeline_check_rejects_bad_eval_section(tmp_path, capsys, monkeypatch, fields, field):
    cfg = pipeline_yaml(tmp_path, **fields)
    code, _, err = cli(capsys, monkeypatch, "pipeline", cfg, "--check")
    assert_one_line_error(code, err, str(cfg), f"'{field}'")


def test_pipeline_check_rejects_model_folder_without_config_json(tmp_path, capsys, monkeypatch):
    folder = tmp_path / "not-a-checkpoint"
    folder.mkdir()
    cfg = pipeline_yaml(tmp_path, model=str(folder))
    code, _, err = cli(capsys, monkeypatch, "pipeline", cfg, "--check")
    assert_one_line_error(code, err, "'model'", "config.json")


def test_pipeline_check_through_the_console_script(tmp_path):
    """The real entry point in a subprocess: exit 2, one line naming the file and the field."""
    cfg = pipeline_yaml(tmp_path, eval={"judge_mode": "vibes"})
    res = run_cli("pipeline", cfg, "--check", timeout=300)
    assert_one_line_error(res.returncode, res.stderr, str(cfg), "'eval.judge_mode'")


# --- the same configs refused by a real run, before any stage runs ------------------------------------------

RUN_REFUSED = [
    pytest.param({"judge_mode": "vibes"}, "eval.judge_mode", id="judge_mode-vibes"),
    pytest.param({"mcq_data": "no/such/mcq.jsonl"}, "eval.mcq_data", id="mcq_data-missing"),
    pytest.param({"instructions": "no/such/instructions.jsonl"}, "eval.instructions", id="instructions-missing"),
    pytest.param({"judge_model": None, "judge_base_url": "http://localhost:8001/v1"}, "eval.judge_served_model",
                 id="base_url-without-served_model"),
]


@pytest.mark.parametrize("bad,field", RUN_REFUSED)
def test_pipeline_run_refuses_bad_eval_before_any_stage(tmp_path, capsys, monkeypatch, tiny_model_dir, bad, field):
    # tiny settings, so that old code (which ran MCQ and generation first) got to its crash quickly
    ev = {"mcq_limit": 1, "instructions_limit": 1, "max_new_tokens": 2, "judge_model": str(tiny_model_dir), **bad}
    cfg = pipeline_yaml(tmp_path, model=str(tiny_model_dir), eval=ev)
    code, _, err = cli(capsys, monkeypatch, "pipeline", cfg)
    assert_one_line_error(code, err, str(cfg), f"'{field}'")
    assert not (tmp_path / "runs").exists(), "a stage ran (or made its run directory) before validation"


def test_pipeline_run_through_the_console_script_creates_nothing(tmp_path, tiny_model_dir):
    ev = {"mcq_limit": 1, "instructions_limit": 1, "max_new_tokens": 2, "judge_model": str(tiny_model_dir),
          "judge_mode": "vibes"}
    cfg = pipeline_yaml(tmp_path, model=str(tiny_model_dir), eval=ev)
    res = run_cli("pipeline", cfg, timeout=300)
    assert_one_line_error(res.returncode, res.stderr, str(cfg), "'eval.judge_mode'")
    assert not (tmp_path / "runs").exists()


# --- stages, stage configs and the model references between them --------------------------------------------

def _stages(tmp_path, **fields):
    return pipeline_yaml(tmp_path, **fields)


STAGE_CASES = [
    pytest.param(dict(stages=["train"]), "pipeline.yaml", "train_config", id="train-stage-without-config"),
    pytest.param(dict(stages=["merge"]), "pipeline.yaml", "merge_config", id="merge-stage-without-config"),
    pytest.param(dict(stages=["corpus", "report"]), "pipeline.yaml", "corpus_config", id="corpus-stage-without-config"),
    pytest.param(dict(stages=["train"], train_config="configs/demo-train.yaml", train_overrides=["model=./no/such"]),
                 "demo-train.yaml", "model", id="train-model-missing"),
    pytest.param(dict(stages=["train"], train_config="configs/demo-train.yaml",
                      train_overrides=["model=/no/such/model"]), "demo-train.yaml", "model", id="train-model-abs"),
    pytest.param(dict(stages=["corpus"], corpus_config="configs/demo-corpus.yaml",
                      corpus_overrides=["tokenizer=./no/such/tokenizer"]), "demo-corpus.yaml", "tokenizer",
                 id="corpus-tokenizer-missing"),
    pytest.param(dict(stages=["corpus"], corpus_config="configs/demo-corpus.yaml",
                      corpus_overrides=["annotate.annotator.backend.model=./no/such/annotator"]),
                 "demo-corpus.yaml", "annotate.annotator.backend.model", id="corpus-annotator-missing"),
    pytest.param(dict(stages=["merge"], merge_config="configs/demo-merge.yaml",
                      merge_overrides=["models.cpt=smollm2-135m-instruct", "models.instruct=./no/such/instruct"]),
                 "demo-merge.yaml", "models.instruct", id="merge-instruct-missing"),
    pytest.param(dict(stages=["merge"], merge_config="configs/demo-merge.yaml",
                      merge_overrides=["models.cpt=smollm2-135m-instruct", "tokenizer_source=./no/such/tok"]),
                 "demo-merge.yaml", "tokenizer_source", id="merge-tokenizer_source-missing"),
    # train is configured but not run: the merge needs the train stage's model from an earlier run
    pytest.param(dict(stages=["merge"], train_config="configs/demo-train.yaml", merge_config="configs/demo-merge.yaml"),
                 "demo-merge.yaml", "models.cpt", id="merge-wired-cpt-not-trained"),
    pytest.param(dict(stages=["merge", "eval"], merge_config="configs/demo-merge.yaml",
                      merge_overrides=["models.cpt=smollm2-135m-instruct"], eval_merged=["t0.9"]),
                 "pipeline.yaml", "eval_merged", id="eval_merged-not-in-sweep"),
]


@pytest.mark.parametrize("fields,file,field", STAGE_CASES)
def test_pipeline_check_rejects_bad_stage_wiring(tmp_path, capsys, monkeypatch, fields, file, field):
    cfg = _stages(tmp_path, **fields)
    code, _, err = cli(capsys, monkeypatch, "pipeline", cfg, "--check")
    assert_one_line_error(code, err, file, f"'{field}'")


def test_stage_outputs_of_this_run_are_not_required_to_exist(tmp_path, capsys, monkeypatch):
    """Guard: the merge's CPT model is made by this run's train stage, so it need not exist yet;
    hub ids stay hub ids (nothing downloaded)."""
    cfg = _stages(tmp_path, stages=["train", "merge"], train_config="configs/demo-train.yaml",
                  merge_config="configs/demo-merge.yaml", train_overrides=["model=Qwen/Qwen2.5-7B"])
    code, out, err = cli(capsys, monkeypatch, "pipeline", cfg, "--check")
    assert code == 0, err
    assert "ok" in out


def test_null_stage_config_still_skips_its_stage_by_default(tmp_path, capsys, monkeypatch):
    """Guard: with `stages` left at its default, a null stage config skips that stage (as documented)."""
    cfg = write_yaml(tmp_path / "pipeline.yaml", {"output_dir": str(tmp_path / "runs"), "corpus_config": None,
                                                  "train_config": None, "merge_config": None})
    code, out, err = cli(capsys, monkeypatch, "pipeline", cfg, "--check")
    assert code == 0, err


# --- one model: run what makes sense, say why there is no pairwise -------------------------------------------

def test_pairwise_skip_reasons():
    from definemed.eval.suite import SuiteConfig, pairwise_skip_reason

    assert "two models" in pairwise_skip_reason(SuiteConfig(), {"base": "m"})
    assert "judge" in pairwise_skip_reason(SuiteConfig(judge_model=None), {"base": "m", "cpt": "n"})
    assert pairwise_skip_reason(SuiteConfig(), {"base": "m", "cpt": "n"}) is None


def test_single_model_eval_skips_pairwise_with_a_note(tmp_path, capsys, monkeypatch, tiny_model_dir):
    ev = {"mcq_limit": 2, "instructions_limit": 2, "max_new_tokens": 4, "judge_model": str(tiny_model_dir)}
    cfg = pipeline_yaml(tmp_path, model=str(tiny_model_dir), eval=ev)
    code, _, err = cli(capsys, monkeypatch, "pipeline", cfg)
    assert code == 0, err
    folder = tmp_path / "runs" / "eval"
    study = json.loads((folder / "study.json").read_text())
    assert any("pairwise" in n.lower() and "two models" in n for n in study["notes"]), study["notes"]
    assert (folder / "mcq.json").exists() and (folder / "failures.json").exists()
    assert not (folder / "pairwise.json").exists()


# --- values wrong for the library they feed: caught by our validation, naming the field ---------------------

TRAIN_BASE = {"data": [{"path": "shards"}]}
TRAIN_CASES = [
    pytest.param({"betas": [0.9, 1.0]}, "betas", id="beta2-one"),
    pytest.param({"betas": [-0.1, 0.95]}, "betas", id="beta1-negative"),
    pytest.param({"betas": [1.5, 0.9]}, "betas", id="beta1-above-one"),
    pytest.param({"lora": {"r": 0}}, "lora.r", id="lora-rank-0"),
    pytest.param({"lora": {"r": -8}}, "lora.r", id="lora-rank-negative"),
    pytest.param({"lora": {"alpha": 0}}, "lora.alpha", id="lora-alpha-0"),
    pytest.param({"lora": {"dropout": 1.0}}, "lora.dropout", id="lora-dropout-1"),
    pytest.param({"lora": {"dropout": -0.1}}, "lora.dropout", id="lora-dropout-negative"),
    pytest.param({"lora": {"target_modules": []}}, "lora.target_modules", id="lora-no-modules"),
    pytest.param({"weight_decay": -0.1}, "weight_decay", id="weight_decay-negative"),
    pytest.param({"heldout_max_docs": 0}, "heldout_max_docs", id="heldout_max_docs-0"),
    pytest.param({"heldout_max_docs": -1}, "heldout_max_docs", id="heldout_max_docs-negative"),
    pytest.param({"heldout_max_length": 0}, "heldout_max_length", id="heldout_max_length-0"),
    pytest.param({"seed": -1}, "seed", id="seed-negative"),
    pytest.param({"warmup_steps": 50, "max_steps": 10}, "warmup_steps", id="warmup-names-field"),
]


@pytest.mark.parametrize("fields,field", TRAIN_CASES)
def test_train_config_values(tmp_path, capsys, monkeypatch, fields, field):
    cfg = write_yaml(tmp_path / "train.yaml", {**TRAIN_BASE, **fields})
    code, _, err = cli(capsys, monkeypatch, "train", "validate", cfg)
    line = assert_one_line_error(code, err, str(cfg), f"'{field}")
    assert "<root>" not in line


def test_set_max_steps_names_the_fields_not_root(tmp_path, capsys, monkeypatch):
    """Issue #14: `--set max_steps=2` against the default warmup names both fields."""
    cfg = write_yaml(tmp_path / "train.yaml", TRAIN_BASE)
    code, _, err = cli(capsys, monkeypatch, "train", "run", cfg, "--set", "max_steps=2")
    line = assert_one_line_error(code, err, "'warmup_steps'", "'max_steps'")
    assert "<root>" not in line
    assert not (tmp_path / "runs").exists()


CORPUS_BASE = {"input": {"paths": ["data/sample/fineweb2_deu"]}}
CORPUS_CASES = [
    pytest.param({"input": {"paths": ["x"], "limit": -5}}, "input.limit", id="limit-minus-5"),
    pytest.param({"input": {"paths": ["x"], "limit": 0}}, "input.limit", id="limit-0"),
    pytest.param({"input": {"paths": ["x"], "limit": -2}}, "input.limit", id="limit-minus-2"),
    pytest.param({"executor": {"slurm": {"cpus_per_task": 0}}}, "executor.slurm.cpus_per_task", id="slurm-cpus-0"),
    pytest.param({"executor": {"slurm": {"mem_per_cpu_gb": -2}}}, "executor.slurm.mem_per_cpu_gb",
                 id="slurm-mem-negative"),
    pytest.param({"executor": {"slurm": {"time": "1 day"}}}, "executor.slurm.time", id="slurm-time-words"),
    pytest.param({"executor": {"slurm": {"time": "24h"}}}, "executor.slurm.time", id="slurm-time-hours"),
    pytest.param({"prefilter": {"min_words": 500, "max_words": 100}}, "prefilter.min_words", id="min-over-max-words"),
    pytest.param({"seed": -1}, "seed", id="seed-negative"),
    pytest.param({"classifier": {"seed": -1}}, "classifier.seed", id="classifier-seed-negative"),
    pytest.param({"annotate": {"annotator": {"backend": {"dtype": "float8"}}}}, "annotate.annotator.backend.dtype",
                 id="backend-dtype"),
    pytest.param({"classifier": {"target": "medizin"}}, "classifier.target", id="target-not-a-criterion"),
    pytest.param({"classifier": {"labels_from": "gold"}}, "classifier.gold_labels", id="gold-needs-labels"),
    pytest.param({"annotate": {"enabled": False}}, "annotate.enabled", id="annotator-labels-need-annotate"),
]


@pytest.mark.parametrize("fields,field", CORPUS_CASES)
def test_corpus_config_values(tmp_path, capsys, monkeypatch, fields, field):
    cfg = write_yaml(tmp_path / "corpus.yaml", {**CORPUS_BASE, **fields})
    code, _, err = cli(capsys, monkeypatch, "corpus", "validate", cfg)
    line = assert_one_line_error(code, err, str(cfg), f"'{field}'")
    assert "<root>" not in line


MERGE_BASE = {"models": {"cpt": "org/cpt", "instruct": "org/instruct"}, "sweep": [0.5], "eval": {"enabled": False}}
MERGE_CASES = [
    pytest.param({"seed": -1}, "seed", id="seed-negative"),
    pytest.param({"method": "ties"}, "models.base", id="ties-needs-base"),
    pytest.param({"sweep": [1.5]}, "sweep", id="sweep-outside"),
    pytest.param({"sweep": [0.5, 0.5]}, "sweep", id="sweep-repeated"),
    pytest.param({"parameters": {"t": 0.5}}, "parameters.t", id="sweep-and-t"),
    pytest.param({"eval": {"enabled": True}}, "eval.heldout", id="sweep-table-needs-data"),
]


@pytest.mark.parametrize("fields,field", MERGE_CASES)
def test_merge_config_values(tmp_path, capsys, monkeypatch, fields, field):
    cfg = write_yaml(tmp_path / "merge.yaml", {**MERGE_BASE, **fields})
    code, _, err = cli(capsys, monkeypatch, "merge", "validate", cfg)
    line = assert_one_line_error(code, err, str(cfg), f"'{field}'")
    assert "<root>" not in line


EVAL_CASES = [
    pytest.param("mcq", {"dtype": "float8"}, "dtype", id="mcq-dtype"),
    pytest.param("mcq", {"dtype": "int4"}, "dtype", id="mcq-dtype-int"),
    pytest.param("mcq", {"seed": -1}, "seed", id="mcq-seed"),
    pytest.param("generate", {"dtype": "float64"}, "dtype", id="generate-dtype"),
    pytest.param("generate", {"seed": -2}, "seed", id="generate-seed"),
]


@pytest.mark.parametrize("command,fields,field", EVAL_CASES)
def test_eval_config_values(tmp_path, capsys, monkeypatch, command, fields, field):
    cfg = write_yaml(tmp_path / f"{command}.yaml", {"data": "data.jsonl", "output_dir": str(tmp_path / "out"),
                                                     **fields})
    code, _, err = cli(capsys, monkeypatch, "eval", command, "--config", cfg)
    assert_one_line_error(code, err, str(cfg), f"'{field}'")
    assert not (tmp_path / "out").exists()


def test_paper_pipeline_still_checks(capsys, monkeypatch):
    """Guard: hub ids, remote corpus paths and stage outputs of the same run pass `--check` anywhere."""
    code, out, err = cli(capsys, monkeypatch, "pipeline", ROOT / "configs/paper/pipeline-qwen2.5-7b.yaml", "--check")
    assert code == 0, err
