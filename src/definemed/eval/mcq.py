"""Multiple-choice evaluation by log-likelihood, as lm-evaluation-harness scores ``multiple_choice`` tasks.

Per item the model scores every option as a continuation of the prompt (`eval/mcq_data.py`);
``acc`` takes the option with the highest summed log-probability, ``acc_norm`` the highest
log-probability per character of the option (lm-eval's ``acc_norm``: ``len(choice)``, without
the leading delimiter). Ties go to the first option (``np.argmax``).

Writes into the eval run directory: ``mcq/<model>.jsonl`` (per item: options' log-probabilities,
chosen options, correctness) and ``mcq.json`` (per model: acc and acc_norm with bootstrap 95%
CIs, per-subject breakdown, throughput). A model already scored with the same settings, items and
weights is not scored again.
"""

from __future__ import annotations

import hashlib
import json
import logging
import time
from collections import defaultdict

import numpy as np

from definemed.eval import mcq_data
from definemed.eval.bootstrap import mean_with_ci
from definemed.eval.config import MCQEvalConfig
from definemed.errors import UserError
from definemed.eval.rundir import EvalRun, model_labels
from definemed.models.fingerprint import model_fingerprint
from definemed.runs import atomic_write_json, guarded, read_json

log = logging.getLogger("definemed.eval")

# Settings that change scores (batching and prefix sharing do not, beyond float noise).
SCORING_FIELDS = ("shots", "fewshot_data", "target", "answer_prefix", "chat_template", "system_prompt", "dtype")


def contexts_for(cfg: MCQEvalConfig, items: list[mcq_data.MCQ], pool: list[mcq_data.MCQ], tokenizer=None) -> list[str]:
    """The text each item's options continue; with ``chat_template`` the plain prompt (without the
    answer prefix) is the user turn and the assistant turn starts with the answer prefix."""
    plain = [mcq_data.context(it, mcq_data.shots_for(it, pool, cfg.shots), cfg.target, cfg.answer_prefix)
             for it in items]
    if not cfg.chat_template:
        return plain
    from definemed.models.chat import build_messages

    out = []
    for text in plain:
        user = text[:len(text) - len(cfg.answer_prefix)].rstrip("\n")
        rendered = tokenizer.apply_chat_template(build_messages(user, cfg.system_prompt), tokenize=False,
                                                 add_generation_prompt=True)
        out.append(rendered + cfg.answer_prefix)
    return out


def score_items(model, tokenizer, cfg: MCQEvalConfig, items, pool, progress=None) -> list[dict]:
    """One result row per item."""
    from definemed.eval.loglik import make_request, score

    contexts = contexts_for(cfg, items, pool, tokenizer)
    requests = [make_request(tokenizer, ctx, [mcq_data.TARGET_DELIMITER + t for t in mcq_data.targets(it, cfg.target)])
                for it, ctx in zip(items, contexts)]
    logprobs = score(model, requests, batch_size=cfg.batch_size, share_prefix=cfg.share_prefix, progress=progress)
    rows = []
    for it, lps in zip(items, logprobs):
        lengths = np.array([float(len(t)) for t in mcq_data.targets(it, cfg.target)])
        chosen = int(np.argmax(lps))
        chosen_norm = int(np.argmax(np.array(lps) / lengths))
        rows.append({"id": it.id, "subject": it.subject, "answer": it.answer, "chosen": chosen,
                     "chosen_norm": chosen_norm, "correct": chosen == it.answer,
                     "correct_norm": chosen_norm == it.answer, "logprobs": lps})
    return rows


def summarize(rows: list[dict], seed: int = 0, n_boot: int = 2000) -> dict:
    acc = [float(r["correct"]) for r in rows]
    norm = [float(r["correct_norm"]) for r in rows]
    by_subject: dict[str, list[dict]] = defaultdict(list)
    for r in rows:
        by_subject[r["subject"]].append(r)
    return {
        "acc": mean_with_ci(acc, seed=seed, n_boot=n_boot),
        "acc_norm": mean_with_ci(norm, seed=seed, n_boot=n_boot),
        "per_subject": {s: {"acc": mean_with_ci([float(r["correct"]) for r in rs], seed=seed, n_boot=n_boot),
                            "acc_norm": mean_with_ci([float(r["correct_norm"]) for r in rs], seed=seed, n_boot=n_boot)}
                        for s, rs in sorted(by_subject.items())},
    }


def cache_key(cfg: MCQEvalConfig, fingerprint: str, items, pool) -> str:
    blob = json.dumps({"model": fingerprint, "settings": {k: str(getattr(cfg, k)) for k in SCORING_FIELDS},
                       "items": [[it.id, it.question, list(it.choices), it.answer] for it in items],
                       "pool": [it.id for it in pool] if cfg.shots else []}, sort_keys=True, ensure_ascii=False)
    return hashlib.sha256(blob.encode()).hexdigest()


@guarded  # an exception records the evaluation as failed and releases the folder's lock
def run_mcq(cfg: MCQEvalConfig, progress_factory=None) -> dict:
    """Score every model of ``cfg``; returns the content of ``mcq.json``.

    ``progress_factory(description, total)`` is a context manager yielding ``advance(n)``
    (``definemed.console.progress_bar``), or None for no progress display.
    """
    from contextlib import nullcontext

    from collections import Counter

    from definemed.data.io import read_jsonl, write_jsonl
    from definemed.data.subsets import stratified_subset
    from definemed.models import load_causal_lm, resolve_model

    items_all = mcq_data.load_items(cfg.data)
    items = stratified_subset(items_all, cfg.limit, key=lambda q: q.subject, seed=cfg.seed) \
        if cfg.subset == "stratified" else items_all[:cfg.limit]
    pool = mcq_data.load_items(cfg.fewshot_data) if cfg.fewshot_data else items_all
    if not items:  # 0 items would "succeed" with nan% accuracy
        raise UserError(f"{cfg.data}: no MCQ items left to score (limit {cfg.limit}, subset {cfg.subset})")
    for _, ref in model_labels(cfg.models):  # a broken checkpoint is one line before the run starts
        resolve_model(ref, trust_remote_code=cfg.trust_remote_code)
    run = EvalRun(cfg.output_dir, "mcq").start(cfg, seed=cfg.seed, inputs={
        "data": cfg.data, **({"fewshot_data": cfg.fewshot_data} if cfg.fewshot_data else {})})
    out_path = cfg.output_dir / "mcq.json"
    previous = read_json(out_path).get("models", {}) if out_path.exists() else {}
    results = {}
    for label, ref in model_labels(cfg.models):
        key = cache_key(cfg, model_fingerprint(ref), items, pool)
        items_path = cfg.output_dir / "mcq" / f"{label}.jsonl"
        if previous.get(label, {}).get("key") == key and items_path.exists():
            log.info("mcq: %s already scored with these settings", label)
            rows = read_jsonl(items_path)
            results[label] = {**previous[label], **summarize(rows, cfg.seed, cfg.n_boot)}
            continue
        model, tok = load_causal_lm(ref, dtype=cfg.dtype, trust_remote_code=cfg.trust_remote_code)
        bar = progress_factory(f"mcq {label}", len(items)) if progress_factory else nullcontext(None)
        t0 = time.perf_counter()
        with bar as advance:
            rows = score_items(model, tok, cfg, items, pool, progress=advance)
        seconds = time.perf_counter() - t0
        write_jsonl(items_path, rows)
        results[label] = {"model_ref": str(ref), "key": key, **summarize(rows, cfg.seed, cfg.n_boot),
                          "seconds": round(seconds, 3), "items_per_s": round(len(rows) / seconds, 3)}
        del model
    summary = {"data": str(cfg.data), "items": len(items), "items_in_file": len(items_all),
               "subset": "all" if len(items) == len(items_all) else
               "stratified by subject" if cfg.subset == "stratified" else "first items",
               # expected accuracy of guessing, from each item's own number of options
               "chance": sum(1 / len(q.choices) for q in items) / len(items),
               "options": dict(sorted(Counter(len(q.choices) for q in items).items())),
               "shots": cfg.shots, "target": cfg.target,
               "chat_template": cfg.chat_template, "models": results}
    atomic_write_json(out_path, summary)
    run.finish({label: {"acc": r["acc"], "acc_norm": r["acc_norm"]} for label, r in results.items()},
               outputs={"mcq": out_path, **{f"mcq/{label}": cfg.output_dir / "mcq" / f"{label}.jsonl"
                                              for label in results}})
    return summary
