"""The lm-evaluation-harness export: task layout, the same per-item log-likelihoods as lm_eval itself
on tiny models of two tokenizer families, and (slow) the same accuracy with the real model."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from conftest import ROOT, run_cli
from definemed.eval import mcq_data
from definemed.eval.lmeval_export import export_task

SAMPLE = ROOT / "data/sample/mcq_de/mcq_de.jsonl"


def test_export_task_layout_and_prompts(tmp_path):
    path = export_task(SAMPLE, tmp_path, "mcq_de_x", shots=2, target="letter")
    task = yaml.safe_load(path.read_text())
    assert task["task"] == "mcq_de_x" and task["dataset_path"] == "json"
    assert task["output_type"] == "multiple_choice" and task["num_fewshot"] == 2
    assert (task["doc_to_text"], task["doc_to_choice"], task["doc_to_target"]) == ("prompt", "choices", "answer")
    assert [m["metric"] for m in task["metric_list"]] == ["acc", "acc_norm"]
    assert task["fewshot_split"] == "test" and task["fewshot_config"] == {"sampler": "first_n"}
    data = Path(task["dataset_kwargs"]["data_files"]["test"])
    rows = [json.loads(x) for x in data.read_text().splitlines()]
    items = mcq_data.load_items(SAMPLE)
    assert len(rows) == len(items)
    assert rows[5]["prompt"] == mcq_data.prompt(items[5]) and rows[5]["choices"] == ["A", "B", "C", "D"]
    assert rows[5]["answer"] == items[5].answer


def test_export_with_separate_fewshot_pool(tmp_path):
    # a pool that differs from the eval set, so a pool file written from the eval items cannot pass
    lines = SAMPLE.read_text(encoding="utf-8").splitlines(keepends=True)
    pool = tmp_path / "pool.jsonl"
    pool.write_text("".join(lines[-3:]), encoding="utf-8")
    task = yaml.safe_load(export_task(SAMPLE, tmp_path, "t", shots=1, fewshot_data=pool).read_text())
    assert task["fewshot_split"] == "fewshot"
    rows = [json.loads(x) for x in Path(task["dataset_kwargs"]["data_files"]["fewshot"]).read_text().splitlines()]
    expected = mcq_data.load_items(pool)
    assert [r["prompt"] for r in rows] == [mcq_data.prompt(it) for it in expected]
    assert [r["answer"] for r in rows] == [it.answer for it in expected]


def run_lm_eval(model: Path, task_dir: Path, task: str, limit: int, out: Path) -> tuple[dict, list[dict]]:
    """``lm_eval --model hf`` on the exported task: (acc and acc_norm, per-item samples)."""
    env = {**os.environ, "HF_DATASETS_OFFLINE": "1", "HF_HUB_OFFLINE": "1", "TOKENIZERS_PARALLELISM": "false"}
    exe = Path(sys.executable).parent / "lm_eval"
    res = subprocess.run([str(exe), "--model", "hf", "--model_args", f"pretrained={model},dtype=float32",
                          "--tasks", task, "--include_path", str(task_dir), "--device", "cpu", "--limit", str(limit),
                          "--batch_size", "8", "--output_path", str(out), "--log_samples"],
                         capture_output=True, text=True, timeout=1500, env=env)
    assert res.returncode == 0, res.stderr[-3000:]
    (results,) = list(out.rglob("results_*.json"))
    scores = json.loads(results.read_text())["results"][task]
    (samples,) = list(out.rglob(f"samples_{task}_*.jsonl"))
    rows = sorted((json.loads(x) for x in samples.read_text().splitlines() if x.strip()), key=lambda r: r["doc_id"])
    return {"acc": scores["acc,none"], "acc_norm": scores["acc_norm,none"]}, rows


def lm_eval_scores(model: Path, task_dir: Path, task: str, limit: int, out: Path) -> dict:
    return run_lm_eval(model, task_dir, task, limit, out)[0]


@pytest.mark.parametrize("family", ["tiny_llama", "tiny_bos_model"])
def test_same_loglikelihoods_as_lm_eval(family, request, tmp_path):
    """30 sample questions with one shot, tiny random models of two tokenizer families (SmolLM2's,
    which adds no BOS, and a Llama-3-like one that adds BOS): every option's log-likelihood from
    `definemed eval mcq` (packed) equals lm_eval's within 1e-4, and so do acc and acc_norm."""
    from definemed.eval.config import MCQEvalConfig
    from definemed.eval.mcq import run_mcq

    n, model = 30, request.getfixturevalue(family)
    export_task(SAMPLE, tmp_path / "task", "mcq_de_ll", shots=1, target="text")
    theirs, samples = run_lm_eval(model, tmp_path / "task", "mcq_de_ll", n, tmp_path / "lm_eval_out")
    summary = run_mcq(MCQEvalConfig(models=[str(model)], data=SAMPLE, output_dir=tmp_path / "ours", shots=1,
                                    limit=n, subset="first", n_boot=100))
    (m,) = summary["models"].values()
    (items_file,) = (tmp_path / "ours" / "mcq").glob("*.jsonl")
    ours = [json.loads(x) for x in items_file.read_text().splitlines()]
    assert len(ours) == len(samples) == n
    for mine, sample in zip(ours, samples):
        assert sample["doc"]["id"] == mine["id"]
        lm_eval_ll = [float(ll) for ll, _greedy in sample["filtered_resps"]]
        assert mine["logprobs"] == pytest.approx(lm_eval_ll, abs=1e-4), mine["id"]
    assert {"acc": m["acc"]["mean"], "acc_norm": m["acc_norm"]["mean"]} == theirs


@pytest.mark.slow
@pytest.mark.parametrize("shots", [0, 1])
def test_same_accuracy_as_lm_eval(bundled_model_path, tmp_path, shots):
    """12 sample questions, bundled model, plain prompts: `definemed eval mcq` and `lm_eval --model hf`
    on the exported task agree exactly on acc and acc_norm."""
    n = 12
    res = run_cli("eval", "export-lmeval", "--data", SAMPLE, "--out", tmp_path / "task", "--task-name", "mcq_de_eq",
                  "--shots", shots, timeout=120)
    assert res.returncode == 0, res.stderr
    theirs = lm_eval_scores(bundled_model_path, tmp_path / "task", "mcq_de_eq", n, tmp_path / "lm_eval_out")
    res = run_cli("eval", "mcq", "--model", bundled_model_path, "--data", SAMPLE, "--shots", shots,
                  "--out", tmp_path / "ours", "--set", f"limit={n}", "--set", "subset=first", timeout=1500)
    assert res.returncode == 0, res.stderr
    ours = json.loads((tmp_path / "ours" / "mcq.json").read_text())["models"]
    (m,) = ours.values()
    assert m["acc"]["n"] == n
    assert {"acc": m["acc"]["mean"], "acc_norm": m["acc_norm"]["mean"]} == theirs
