"""Export an MCQ set as an lm-evaluation-harness task: ``<out>/<task>.yaml`` + ``<out>/<task>.jsonl``.

    lm_eval --model hf --model_args pretrained=PATH --tasks <task> --include_path <out>

Each exported row carries the prompt we score (``prompt``, from `eval/mcq_data.py`), the option
targets (``choices``: texts or letters) and the gold index, so lm-eval's ``doc_to_text``,
``doc_to_choice`` and ``doc_to_target`` are plain field names and the harness sees exactly our
text. Few-shot uses lm-eval's ``first_n`` sampler over the same rows (which skips the item
itself when the shots come from the eval set), i.e. our shot rule.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Optional

import yaml

from definemed.data.io import write_jsonl
from definemed.errors import UserError
from definemed.eval import mcq_data
from definemed.runs import atomic_write_text


def export_rows(items: list[mcq_data.MCQ], target: str, answer_prefix: str) -> list[dict]:
    return [{"id": it.id, "subject": it.subject, "prompt": mcq_data.prompt(it, answer_prefix),
             "choices": mcq_data.targets(it, target), "answer": it.answer} for it in items]


def export_task(data: Path, out: Path, task_name: str, shots: int = 0, fewshot_data: Optional[Path] = None,
                target: str = "text", answer_prefix: str = "Antwort:") -> Path:
    """Write the task folder; returns the YAML path."""
    if not re.fullmatch(r"[A-Za-z0-9][\w-]*", task_name):
        raise UserError(f"task name '{task_name}' must be letters, digits, '_' or '-'")
    if target not in ("text", "letter"):
        raise UserError(f"target must be 'text' or 'letter', got '{target}'")
    items = mcq_data.load_items(data)
    out.mkdir(parents=True, exist_ok=True)
    data_file = out / f"{task_name}.jsonl"
    write_jsonl(data_file, export_rows(items, target, answer_prefix))
    data_files = {"test": str(data_file.resolve())}
    task = {
        "task": task_name,
        "dataset_path": "json",
        "dataset_kwargs": {"data_files": data_files},
        "test_split": "test",
        "output_type": "multiple_choice",
        "doc_to_text": "prompt",
        "doc_to_choice": "choices",
        "doc_to_target": "answer",
        "target_delimiter": mcq_data.TARGET_DELIMITER,
        "fewshot_delimiter": mcq_data.FEWSHOT_DELIMITER,
        "num_fewshot": shots,
        "metric_list": [{"metric": "acc", "aggregation": "mean", "higher_is_better": True},
                        {"metric": "acc_norm", "aggregation": "mean", "higher_is_better": True}],
        "metadata": {"version": 1.0, "exported_by": "definemed", "source": str(data)},
    }
    if shots:
        if fewshot_data is not None:
            pool_file = out / f"{task_name}.fewshot.jsonl"
            write_jsonl(pool_file, export_rows(mcq_data.load_items(fewshot_data), target, answer_prefix))
            data_files["fewshot"] = str(pool_file.resolve())
            task["fewshot_split"] = "fewshot"
        else:  # the eval set itself; lm-eval leaves out the item when fewshot_split == test_split
            task["fewshot_split"] = "test"
        task["fewshot_config"] = {"sampler": "first_n"}
    yaml_path = out / f"{task_name}.yaml"
    atomic_write_text(yaml_path, yaml.safe_dump(task, sort_keys=False, allow_unicode=True))
    return yaml_path
