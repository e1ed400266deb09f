"""Run directories for the report tests, each written by the stage's own code (one session, tiny models).

The chain is the project's pipeline in miniature, so every file the report reads has the
structure and the kind of numbers the real stages write:

- ``models/instruct``: a 2-layer random model with the bundled SmolLM2 config, tokenizer and chat
  template (the "instruct" model).
- ``train``: `definemed.train.loop.train` continues pre-training that model for 3 steps on the
  sample documents (metrics.json with held-out perplexities, metrics.jsonl, ``final/``).
- ``merge``: `definemed.merge.run.run_merge` SLERPs the instruct model with ``train/final`` at
  t = 0.5 and scores the parents and the merge (sweep.json).
- ``corpus``: `definemed.corpus.pipeline.run_corpus` on the sample parquet with gold labels for
  the classifier and no LLM annotator (stats.json).
- ``eval-main``: MCQ of the instruct and trained models (`run_mcq`, 12 items, two subjects),
  answers of the instruct model (`run_generate`), two hand-written answer files in the same
  format (the references, and the references plus English text, a ``<script>`` tag, an image
  tag, a URL and leaked chat markup: the untrusted text no model here would write), the
  failure-mode analysis and pairwise judging by a consistent fake judge (Bradley–Terry, three
  models).
- ``eval-biased``: two of those answer files judged by a judge that always answers "A" (position
  consistency 0: the weak-judge warning).
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from conftest import ROOT
from definemed.data import sample
from definemed.eval.generate import ANSWER_FIELDS, user_text
from definemed.llm.injection import read_blocks
from definemed.runs import atomic_write_text

EVIL = ('<script>alert("xss")</script><img src="https://example.com/track.png" onerror="alert(1)"> '
        'See https://evil.example.org/page.')
DOCS = str(ROOT / "data/sample/fineweb2_deu")
GOLD = str(ROOT / "data/sample/labels/fineweb2_deu_gold.jsonl")
INSTRUCTIONS = sample.sample_dir() / "instructions_de" / "instructions_de.jsonl"
MCQ = sample.sample_dir() / "mcq_de" / "mcq_de.jsonl"
HELDOUT_CHARS = 600  # perplexity is over whole documents: short ones keep the scoring cheap
TOKENIZER_FILES = ("tokenizer.json", "tokenizer_config.json", "chat_template.jinja", "generation_config.json")
N_ANSWERS = 6


class FakeJudge:
    """Loglik-mode judge backend: prefers the longer answer, or always "A" with ``biased``."""

    def __init__(self, biased: bool = False):
        self.biased = biased
        self.name = "fake:biased" if biased else "fake:longer"

    def fingerprint(self) -> str:
        return self.name

    def score_options(self, chats, options, prefix=""):
        out = []
        for chat in chats:
            blocks = read_blocks(chat[-1]["content"])
            a, b = len(blocks.get("antwort_a", "")), len(blocks.get("antwort_b", ""))
            best = 0 if self.biased or a > b else 1 if b > a else 2
            out.append([-0.1 if k == best else -3.0 for k in range(3)])
        return out


def tiny_instruct(bundled: Path, out: Path) -> Path:
    """The bundled config with 2 layers and random weights, with its tokenizer and chat template."""
    from definemed.models import random_init_like

    random_init_like(bundled, num_hidden_layers=2, seed=1).save_pretrained(out, safe_serialization=True)
    for name in TOKENIZER_FILES:
        if (bundled / name).exists():
            shutil.copy2(bundled / name, out / name)
    return out


def heldout_file(path: Path) -> dict:
    """The first medical test-split documents of the sample, cut short, as a held-out JSONL source
    (ids kept, so the training and merge overlap checks see the sample's ids)."""
    from definemed.data.sources import TextSource, load_docs

    docs = load_docs(TextSource(path=DOCS, gold_labels=GOLD, split="test", min_medical=4, lang="de", max_docs=3))
    path.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_text(path, "".join(json.dumps({"id": d.id, "text": d.text[:HELDOUT_CHARS]}, ensure_ascii=False)
                                    + "\n" for d in docs))
    return {"path": str(path)}


def train_run(out: Path, model: Path, heldout: dict) -> Path:
    from definemed.config import validate_config
    from definemed.train.config import TrainConfig
    from definemed.train.loop import train

    train(validate_config(TrainConfig, {
        "output_dir": str(out), "model": str(model), "seed": 0,
        "data": [{"path": DOCS, "gold_labels": GOLD, "split": "train", "min_medical": 3, "lang": "de"}],
        "heldout": {"medical": heldout}, "heldout_max_docs": 2, "heldout_max_length": 64,
        "seq_len": 64, "micro_batch_size": 2, "max_steps": 3, "warmup_steps": 1, "lr": 1e-3,
        "checkpoint_every": 100, "tensorboard": False}))
    return out


def merge_run(out: Path, instruct: Path, cpt: Path, heldout: dict) -> Path:
    from definemed.config import validate_config
    from definemed.merge.config import MergeConfig
    from definemed.merge.run import run_merge

    # the cheapest sweep evaluation that still scores every row (as tests/merge TINY_EVAL)
    run_merge(validate_config(MergeConfig, {
        "output_dir": str(out), "models": {"cpt": str(cpt), "instruct": str(instruct)}, "sweep": [0.5],
        "eval": {"docs": 1, "max_length": 128, "instructions": 2, "max_new_tokens": 4, "heldout": heldout,
                 "instructions_data": str(INSTRUCTIONS)}}, "test"))
    return out


def corpus_run(out: Path) -> Path:
    from definemed.config import validate_config
    from definemed.corpus.config import CorpusConfig
    from definemed.corpus.pipeline import run_corpus

    run_corpus(validate_config(CorpusConfig, {
        "output_dir": str(out), "seed": 0, "input": {"paths": [DOCS]}, "executor": {"tasks": 1, "workers": 1},
        "annotate": {"enabled": False}, "classifier": {"labels_from": "gold", "gold_labels": GOLD}}))
    return out


def write_answers(path: Path, label: str, answers: dict[str, str], items) -> Path:
    """An answer file as `definemed eval generate` writes it, for answers no model here would give."""
    path.parent.mkdir(parents=True, exist_ok=True)
    rows = [{"id": it.id, "model": label, "model_ref": f"/models/{label}", "prompt": user_text(it),
             "answer": answers[it.id], "reference": it.reference, "new_tokens": len(answers[it.id].split()),
             "hit_limit": False, "seconds": 0.1,
             "settings": {"max_new_tokens": 256, "temperature": 0.0, "seed": 0, "chat_template": True},
             "status": "ok", "reason": None}
            for it in items]
    assert all(tuple(r) == ANSWER_FIELDS for r in rows)  # the generation writer's format, field for field
    atomic_write_text(path, "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows))
    return path


def eval_main(run: Path, instruct: Path, cpt: Path) -> dict[str, Path]:
    from definemed.eval.config import GenerateEvalConfig, MCQEvalConfig
    from definemed.eval.failures_run import FailuresConfig, run_failures
    from definemed.eval.generate import run_generate
    from definemed.eval.mcq import run_mcq
    from definemed.eval.pairwise import PairwiseConfig
    from definemed.eval.pairwise_run import run_pairwise

    models = [f"instruct={instruct}", f"cpt={cpt}"]
    run_mcq(MCQEvalConfig(models=models, data=MCQ, output_dir=run, limit=12, n_boot=100))
    run_generate(GenerateEvalConfig(models=models[:1], data=INSTRUCTIONS, output_dir=run, limit=N_ANSWERS,
                                    max_new_tokens=12, batch_size=N_ANSWERS))
    generated = run / "answers" / "instruct.jsonl"
    ids = [json.loads(line)["id"] for line in generated.read_text(encoding="utf-8").splitlines()]
    by_id = {it.id: it for it in sample.load_instructions(INSTRUCTIONS)}
    items = [by_id[i] for i in ids]  # the same items the model answered
    refs = {it.id: it.reference or it.instruction for it in items}
    paths = {"instruct": generated,
             "referenz": write_answers(run / "answers" / "referenz.jsonl", "referenz", refs, items),
             "gemischt": write_answers(run / "answers" / "gemischt.jsonl", "gemischt",
                                       {i: f"{r}\nIn summary, please consult your doctor. {EVIL}<|im_end|>"
                                        for i, r in refs.items()}, items)}
    run_failures(FailuresConfig(answers=list(paths.values()), output_dir=run, baseline="referenz", n_boot=100))
    run_pairwise(PairwiseConfig(answers=list(paths.values()), output_dir=run, n_boot=100), backend=FakeJudge())
    return paths


@pytest.fixture(scope="session")
def report_runs(tmp_path_factory, bundled_model_path) -> dict[str, Path]:
    from definemed.eval.pairwise import PairwiseConfig
    from definemed.eval.pairwise_run import run_pairwise

    root = tmp_path_factory.mktemp("report-runs")
    instruct = tiny_instruct(bundled_model_path, root / "models" / "instruct")
    heldout = heldout_file(root / "heldout.jsonl")
    train = train_run(root / "train", instruct, heldout)
    merge = merge_run(root / "merge", instruct, train / "final", heldout)
    corpus = corpus_run(root / "corpus")
    main, biased = root / "eval-main", root / "eval-biased"
    answers = eval_main(main, instruct, train / "final")
    run_pairwise(PairwiseConfig(answers=[answers["referenz"], answers["instruct"]], output_dir=biased, n_boot=100),
                 backend=FakeJudge(biased=True))
    return {"main": main, "biased": biased, "train": train, "merge": merge, "corpus": corpus, "root": root}
