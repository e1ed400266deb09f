"""The real console script in subprocesses: help, bad inputs (exit 2, one line), demo."""

import json

import pytest

from conftest import ROOT, run_cli


def assert_user_error(res, needle):
    assert res.returncode == 2, res.stderr
    assert "Traceback" not in res.stderr and "Traceback" not in res.stdout
    lines = [line for line in res.stderr.strip().splitlines() if line.strip()]
    assert len(lines) == 1, res.stderr
    assert needle in lines[0], lines[0]


def test_help_lists_stage_groups():
    res = run_cli("--help")
    assert res.returncode == 0
    for word in ("demo", "model", "data", "eval"):
        assert word in res.stdout


def test_missing_config(tmp_path):
    assert_user_error(run_cli("demo", "--config", tmp_path / "missing.yaml"), "config file not found")


def test_wrong_field_type(tmp_path):
    cfg = tmp_path / "demo.yaml"
    cfg.write_text("max_new_tokens: viele\n")
    assert_user_error(run_cli("demo", "--config", cfg), "field 'max_new_tokens'")


def test_unknown_field(tmp_path):
    cfg = tmp_path / "demo.yaml"
    cfg.write_text("max_new_tokenz: 3\n")
    assert_user_error(run_cli("demo", "--config", cfg), "unknown field")


def test_bad_override_value():
    assert_user_error(run_cli("demo", "--set", "questions=[Was ist Fieber?]"), "not valid YAML")


def test_missing_data_file(tmp_path):
    assert_user_error(run_cli("eval", "perplexity", tmp_path / "nope.parquet"), "data not found")


def test_corrupt_parquet(tmp_path):
    bad = tmp_path / "bad.parquet"
    bad.write_bytes(b"not a parquet file at all")
    assert_user_error(run_cli("eval", "perplexity", bad), "cannot read parquet")


def test_data_info_prints_counts():
    res = run_cli("data", "info")
    assert res.returncode == 0, res.stderr
    assert "web documents" in res.stdout and "MCQ" in res.stdout


@pytest.mark.slow
def test_demo_runs_and_writes_run_dir(tmp_path):
    res = run_cli("demo", "--output-dir", tmp_path, "--set", "ppl_max_docs=3", "--set", "max_new_tokens=16",
                  "--set", 'questions=["Was ist Fieber?"]',
                  "--set", 'corpus_overrides=["annotate.sample_size=4", "annotate.compare_modes=[]"]',
                  "--set", 'train_overrides=["max_steps=2", "warmup_steps=1", "seq_len=64", "micro_batch_size=2", '
                           '"heldout_max_docs=2", "heldout_max_length=64", "checkpoint_every=100"]',
                  "--set", 'merge_overrides=["sweep=[0.5]", "eval.docs=2", "eval.instructions=1", '
                           '"eval.max_new_tokens=8"]',
                  "--set", "eval.mcq_limit=6", "--set", "eval.instructions_limit=3", "--set", "eval.max_new_tokens=12")
    assert res.returncode == 0, res.stderr[-3000:]
    run = tmp_path / "base-model"
    manifest = json.loads((run / "manifest.json").read_text())
    assert manifest["status"] == "finished" and manifest["seed"] == 0
    metrics = json.loads((run / "metrics.json").read_text())
    ppl = metrics["perplexity"]
    assert ppl["bundled/medical"]["ppl"] < ppl["random_init/medical"]["ppl"]
    assert (run / "config.yaml").exists() and (run / "run.log").exists()
    assert "Held-out perplexity" in res.stdout
    corpus = json.loads((tmp_path / "corpus" / "manifest.json").read_text())
    assert corpus["status"] == "finished" and list((tmp_path / "corpus" / "shards").glob("*.parquet"))
    assert "words and tokens through" in res.stdout
    train = json.loads((tmp_path / "train" / "metrics.json").read_text())
    assert train["steps"] == 2 and (tmp_path / "train" / "final" / "model.safetensors").exists()
    sweep = json.loads((tmp_path / "merge" / "sweep.json").read_text())
    assert (tmp_path / "merge" / "t0.5" / "model.safetensors").exists() and sweep
    # eval of base, CPT and the merged model; the study's table; the report
    ev = tmp_path / "eval"
    mcq = json.loads((ev / "mcq.json").read_text())
    assert set(mcq["models"]) == {"base", "cpt", "merged-t0.5"} and mcq["items"] == 6
    assert all(len((ev / "answers" / f"{m}.jsonl").read_text().splitlines()) == 3 for m in mcq["models"])
    pairwise = json.loads((ev / "pairwise.json").read_text())
    llm = [j for j in pairwise["judges"].values() if j["kind"] == "llm"]
    assert len(llm) == 1 and len(llm[0]["pairs"]) == 3
    assert set(json.loads((ev / "failures.json").read_text())["models"]) == set(mcq["models"])
    study = json.loads((ev / "study.json").read_text())
    assert study["labels"] == ["base", "cpt", "merged-t0.5"]
    measures = [r["measure"] for r in study["rows"]]
    for prefix in ("held-out medical PPL (2 docs, train stage; 0 training docs excluded)", "MCQ acc (6 items",
                   "IF items, all constraints met", "answers that stopped on their own", "words per answer"):
        assert any(m.startswith(prefix) for m in measures), (prefix, measures)
    assert any("instruct model itself" in n for n in study["notes"])  # the demo pre-trains the instruct model
    assert "held-out overlap with the training data: medical 0, general 0" in res.stdout + res.stderr
    assert train["heldout_overlap_docs"] == {"medical": 0, "general": 0}
    assert "The study's questions" in res.stdout
    html = (tmp_path / "report.html").read_text()
    assert "The study" in html and "<svg" in html and "merged-t0.5" in html


@pytest.mark.parametrize("path", sorted((ROOT / "configs" / "paper").glob("pipeline-*.yaml")))
def test_paper_pipeline_configs_check(path):
    """Paper-scale recipes: the pipeline schema and every stage config they name validate."""
    res = run_cli("pipeline", path, "--check")
    assert res.returncode == 0, res.stderr
    assert "stage configs valid: corpus, train, merge" in " ".join(res.stdout.split())


def test_pipeline_check_names_a_bad_stage_config(tmp_path):
    bad = tmp_path / "train.yaml"
    bad.write_text("model: x\nmax_steps: -3\n")
    cfg = tmp_path / "pipeline.yaml"
    cfg.write_text(f"corpus_config: null\ntrain_config: {bad}\nmerge_config: null\n")
    res = run_cli("pipeline", cfg, "--check")
    assert res.returncode == 2 and "Traceback" not in res.stderr
    assert "train.yaml" in res.stderr
