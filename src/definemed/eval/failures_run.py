"""`definemed eval failures`: failure-mode analysis of answer files, as the "failures" section of
an eval run directory (`definemed.eval.rundir.EvalRun`: config.yaml, manifest.json, metrics.json).

Written there: ``failures.json`` (every rate with its CI, per model) and
``failures_examples.jsonl`` (a few answers per failure kind and model, to read).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Optional

from pydantic import Field
from rich.markup import escape

from definemed.config import StrictModel
from definemed.data.sample import instructions_path, load_instructions
from definemed.errors import UserError
from definemed.eval.answer_files import load_answer_files
from definemed.eval.failures import analyse_model, method
from definemed.eval.rundir import EvalRun
from definemed.runs import atomic_write_json, atomic_write_text, guarded


class FailuresConfig(StrictModel):
    answers: list[Path] = Field(min_length=1)
    instructions: Optional[Path] = None  # constraints and referral flags by item id; None = the sample set
    baseline: Optional[str] = None  # label of one of the answer files
    seed: int = 0
    n_boot: int = Field(1000, ge=100)
    max_examples: int = Field(5, ge=0)
    output_dir: Path  # the eval run directory


def _headline(r: dict) -> dict:
    lm, v, i = r["language_mixing"], r["verbosity"], r["instruction_following"]
    return {"n_answers": r["n_answers"],
            "mixed_language_rate": lm["answers_with_foreign_sentence"]["mean"],
            "words_per_answer": v["words_per_answer"]["mean"], "hit_token_limit": v["hit_token_limit"]["mean"],
            "degenerate_loops": r["repetition"]["degenerate_loops"]["mean"],
            "template_leakage": r["template_leakage"]["answers_with_leakage"]["mean"],
            "if_item_strict": i["item_strict"]["mean"], "if_item_loose": i["item_loose"]["mean"],
            "referral": i["referral"]["mean"]}


@guarded  # an exception records the evaluation as failed and releases the folder's lock
def run_failures(cfg: FailuresConfig) -> dict:
    from definemed.console import console, progress_bar

    answers = load_answer_files(cfg.answers)
    if cfg.baseline is not None and cfg.baseline not in answers:
        raise UserError(f"--baseline {cfg.baseline!r} is not one of the answer files' models "
                        f"({', '.join(answers)})")
    instructions = cfg.instructions or instructions_path()
    items = {it.id: it for it in load_instructions(instructions)}
    run = EvalRun(cfg.output_dir, "failures").start(cfg, seed=cfg.seed, inputs={**{f"answers_{k}": p for k, p in enumerate(cfg.answers)},
                                         "instructions": instructions})
    reports, examples = {}, []
    with progress_bar("failure modes", total=len(answers)) as advance:
        for label, rows in answers.items():
            base = answers[cfg.baseline] if cfg.baseline and cfg.baseline != label else None
            reports[label], ex = analyse_model(rows, items, base, seed=cfg.seed, n_boot=cfg.n_boot,
                                               max_examples=cfg.max_examples)
            examples += [{"model": label, **e} for e in ex]
            advance()
    out = cfg.output_dir
    atomic_write_json(out / "failures.json", {"models": reports, "baseline": cfg.baseline, "method": method()})
    atomic_write_text(out / "failures_examples.jsonl", "".join(json.dumps(e, ensure_ascii=False) + "\n" for e in examples))
    metrics = {label: _headline(r) for label, r in reports.items()}
    run.finish(metrics, outputs={"failures": out / "failures.json", "failures_examples": out / "failures_examples.jsonl"})
    console.print(f"[green]failure-mode results in {escape(str(out / 'failures.json'))}[/]")
    return metrics
