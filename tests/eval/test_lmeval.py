"""The lm-evaluation-harness export: task layout, and (slow) the same accuracy as lm_eval itself."""

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
    task = yaml.safe_load(export_task(SAMPLE, tmp_path, "t", shots=1, fewshot_data=SAMPLE).read_text())
    assert task["fewshot_split"] == "fewshot" and Path(task["dataset_kwargs"]["data_files"]["fewshot"]).exists()


def lm_eval_scores(model: Path, task_dir: Path, task: str, limit: int, out: Path) -> dict:
    env = {**os.environ, "HF_DATASETS_OFFLINE": "1", "HF_HUB_OFFLINE": "1", "TOKENIZERS_PARALLELISM": "false"}
    exe = Path(sys.executable).parent / "lm_eval"
    res = subprocess.run([str(exe), "--model", "hf", "--model_args", f"pretrained={model},dtype=float32",
                          "--tasks", task, "--include_path", str(task_dir), "--device", "cpu", "--limit", str(limit),
                          "--batch_size", "8", "--output_path", str(out)],
                         capture_output=True, text=True, timeout=1500, env=env)
    assert res.returncode == 0, res.stderr[-3000:]
    (results,) = list(out.rglob("results_*.json"))
    scores = json.loads(results.read_text())["results"][task]
    return {"acc": scores["acc,none"], "acc_norm": scores["acc_norm,none"]}


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
                  "--out", tmp_path / "ours", "--set", f"limit={n}", timeout=1500)
    assert res.returncode == 0, res.stderr
    ours = json.loads((tmp_path / "ours" / "mcq.json").read_text())["models"]
    (m,) = ours.values()
    assert m["acc"]["n"] == n
    assert {"acc": m["acc"]["mean"], "acc_norm": m["acc_norm"]["mean"]} == theirs
