"""Run directories for the report tests, written by the real eval code (no model needed).

- ``eval-main``: three "models" answering six real sample instructions (the references, a short
  generic answer, and the reference plus English text, a ``<script>`` tag, an image tag, a URL
  and leaked chat markup), an MCQ summary, the failure-mode analysis, and pairwise judging by a
  consistent fake judge (Bradley–Terry with three models).
- ``eval-biased``: two of the same models judged by a judge that always answers "A" (position
  consistency 0: the weak-judge warning).
- ``train``, ``merge``, ``corpus``: the files those stages publish, with small made-up numbers.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from definemed.data import sample
from definemed.llm.injection import read_blocks
from definemed.runs import atomic_write_json, atomic_write_text

EVIL = ('<script>alert("xss")</script><img src="https://example.com/track.png" onerror="alert(1)"> '
        'See https://evil.example.org/page.')


class FakeJudge:
    """Loglik-mode judge backend: prefers the longer answer, or always "A" with ``biased``."""

    def __init__(self, biased: bool = False):
        self.biased = biased
        self.name = "fake:biased" if biased else "fake:longer"

    def score_options(self, chats, options, prefix=""):
        out = []
        for chat in chats:
            blocks = read_blocks(chat[-1]["content"])
            a, b = len(blocks.get("antwort_a", "")), len(blocks.get("antwort_b", ""))
            best = 0 if self.biased or a > b else 1 if b > a else 2
            out.append([-0.1 if k == best else -3.0 for k in range(3)])
        return out


def write_answers(path: Path, label: str, answers: dict, items) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    rows = [{"id": it.id, "model": label, "model_ref": f"/models/{label}", "prompt": it.instruction,
             "answer": answers[it.id], "reference": it.reference, "new_tokens": len(answers[it.id].split()),
             "hit_limit": k == 0 and label == "kurz", "seconds": 0.1,
             "settings": {"max_new_tokens": 64, "temperature": 0.0, "seed": 0, "chat_template": True}}
            for k, it in enumerate(items)]
    atomic_write_text(path, "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows))
    return path


def write_mcq(run: Path, labels: list[str]) -> None:
    from definemed.eval.config import MCQEvalConfig
    from definemed.eval.mcq import summarize
    from definemed.eval.rundir import EvalRun

    cfg = MCQEvalConfig(models=labels, data=sample.sample_dir() / "mcq_de" / "mcq_de.jsonl", output_dir=run, limit=12)
    er = EvalRun(run, "mcq").start(cfg, seed=0)
    models = {}
    for m, label in enumerate(labels):
        rows = [{"id": f"q{k}", "subject": ("cardiology", "pharmacology")[k % 2], "answer": 0,
                 "chosen": 0 if k % (m + 2) == 0 else 1, "chosen_norm": 0 if k % (m + 1) == 0 else 2,
                 "correct": k % (m + 2) == 0, "correct_norm": k % (m + 1) == 0, "logprobs": [-1.0, -2.0, -3.0, -4.0]}
                for k in range(12)]
        atomic_write_text(run / "mcq" / f"{label}.jsonl", "".join(json.dumps(r) + "\n" for r in rows))
        models[label] = {"model_ref": f"/models/{label}", "key": "k", **summarize(rows, n_boot=200),
                         "seconds": 1.0, "items_per_s": 12.0}
    atomic_write_json(run / "mcq.json", {"data": str(cfg.data), "items": 12, "shots": 0, "target": "text",
                                         "chat_template": False, "models": models})
    er.finish({label: {"acc": r["acc"]} for label, r in models.items()})


def write_stage(run: Path, stage: str, metrics: dict, files: dict[str, object]) -> Path:
    run.mkdir(parents=True, exist_ok=True)
    atomic_write_text(run / "config.yaml", f"name: {run.name}\nstage: {stage}\n")
    atomic_write_json(run / "manifest.json", {"stage": stage, "status": "finished", "seed": 0,
                                              "versions": {"definemed": "0.1.0"}})
    atomic_write_json(run / "metrics.json", metrics)
    for name, content in files.items():
        if isinstance(content, str):
            atomic_write_text(run / name, content)
        else:
            atomic_write_json(run / name, content)
    return run


@pytest.fixture(scope="session")
def report_runs(tmp_path_factory) -> dict[str, Path]:
    from definemed.eval.failures_run import FailuresConfig, run_failures
    from definemed.eval.pairwise import PairwiseConfig
    from definemed.eval.pairwise_run import run_pairwise

    root = tmp_path_factory.mktemp("report-runs")
    items = sample.load_instructions()[:6]
    refs = {it.id: it.reference or it.instruction for it in items}
    main, biased = root / "eval-main", root / "eval-biased"
    answers = {
        "referenz": refs,
        "kurz": {i: "Das kommt darauf an. Fragen Sie Ihre Ärztin." for i in refs},
        "gemischt": {i: f"{r}\nIn summary, please consult your doctor. {EVIL}<|im_end|>" for i, r in refs.items()},
    }
    paths = [write_answers(main / "answers" / f"{label}.jsonl", label, a, items) for label, a in answers.items()]
    write_mcq(main, list(answers))
    run_failures(FailuresConfig(answers=paths, output_dir=main, baseline="referenz", n_boot=200))
    run_pairwise(PairwiseConfig(answers=paths, output_dir=main, n_boot=200), backend=FakeJudge())
    bpaths = [write_answers(biased / "answers" / f"{label}.jsonl", label, answers[label], items)
              for label in ("referenz", "kurz")]
    run_pairwise(PairwiseConfig(answers=bpaths, output_dir=biased, n_boot=200), backend=FakeJudge(biased=True))

    train = write_stage(root / "train", "train",
                        {"final_loss": 3.7, "steps": 3, "tokens": 3072, "world_size": 1, "global_batch_sequences": 1,
                         "heldout_ppl_start": {"medical": 64.4, "general": 61.8},
                         "heldout_ppl_end": {"medical": 28.1, "general": 40.5}},
                        {"metrics.jsonl": "".join(json.dumps({"step": s, "loss": 4.2 - 0.2 * s}) + "\n"
                                                  for s in (1, 2, 3))})
    point = lambda label, t, ppl: {"label": label, "t": t, "path": label, "merge_seconds": 1.5,  # noqa: E731
                                   "checks": {"ok": True, "problems": []},
                                   "eval": {"medical_ppl": ppl, "if_strict": 0.6, "if_loose": 0.8}}
    sweep = {"name": "m", "method": "slerp", "dtype": "float32",
             "parents": [point("instruct", 0.0, 68.3), point("cpt", 1.0, 29.9)],
             "points": [point("t0.5", 0.5, 33.4)]}
    merge = write_stage(root / "merge", "merge", {"method": "slerp"}, {"sweep.json": sweep})
    stats = {"points": {"input": {"documents": 358, "tokens": 330898}, "output": {"documents": 135, "tokens": 162742}},
             "steps": [{"phase": "prefilter", "step": "language score", "in": 358, "out": 341, "dropped": 17,
                        "reasons": {"low_language_score": 17}}],
             "score_histogram": {"bins": [0.0, 0.5, 1.0], "counts": [200, 158]},
             "classifier": {"test_vs_gold": {"precision": 0.86, "recall": 0.86, "f1": 0.86, "n": 49}}}
    corpus = write_stage(root / "corpus", "corpus", {}, {"stats.json": stats})
    return {"main": main, "biased": biased, "train": train, "merge": merge, "corpus": corpus, "root": root}
