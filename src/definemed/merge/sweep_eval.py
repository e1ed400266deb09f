"""The two numbers a merge trades off, per model: German medical perplexity and instruction following.

Merging pulls the CPT model's domain knowledge (low perplexity on German medical text) back
together with the instruct parent's ability to follow instructions; the sweep table shows both
for every interpolation factor. Both use the sample's held-out data only:

- perplexity: German test documents with gold medical score >= 4 (`labelled_docs("test")`);
- instruction following: share of verifiable constraints passed (strict and loose, IFEval-style)
  on the first sample instructions that have constraints, answered by greedy chat generation.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Optional

from definemed.merge.config import MergeEvalConfig
from definemed.runs import atomic_write_json, read_json

MIN_MEDICAL = 4


def medical_test_texts(n: int) -> list[str]:
    from definemed.data.sample import heldout_texts

    return heldout_texts(n, min_medical=MIN_MEDICAL)["medical"]


def constrained_instructions(n: int) -> list:
    from definemed.data.sample import load_instructions

    return [item for item in load_instructions() if item.constraints][:n]


def evaluate(model, tok, settings: MergeEvalConfig) -> dict:
    """Perplexity on medical test texts and the constraint pass rates of greedy answers."""
    from definemed.eval.generate import user_text
    from definemed.eval.ifeval import check_constraints
    from definemed.eval.perplexity import perplexity
    from definemed.models.chat import GenerationSettings, build_messages, generate_chat

    ppl = perplexity(model, tok, medical_test_texts(settings.docs), max_length=settings.max_length,
                     batch_size=settings.batch_size)
    items = constrained_instructions(settings.instructions)
    answers = generate_chat(model, tok, [build_messages(user_text(i), settings.system_prompt) for i in items],
                            GenerationSettings(max_new_tokens=settings.max_new_tokens),
                            batch_size=settings.batch_size)
    rows, strict, loose = [], 0, 0
    for item, ans in zip(items, answers):
        results = check_constraints(ans["text"], item.constraints)
        strict += sum(r["strict"] for r in results)
        loose += sum(r["loose"] for r in results)
        rows.append({"id": item.id, "answer": ans["text"], "hit_limit": ans["hit_limit"], "checks": results})
    n = sum(len(r["checks"]) for r in rows)
    return {"medical_ppl": ppl["ppl"], "medical_nll": ppl["nll"], "tokens": ppl["tokens"], "docs": ppl["docs"],
            "if_strict": strict / n if n else None, "if_loose": loose / n if n else None,
            "constraints": n, "instructions": len(rows), "answers": rows}


def fingerprint(settings: MergeEvalConfig, model_dir: str | Path, dtype: str = "") -> str:
    """The settings, the contents of the checkpoint (`definemed.models.fingerprint`: a model
    re-merged or replaced at the same path gets another one) and the dtype it is loaded in."""
    from definemed.models.fingerprint import folder_fingerprint

    blob = json.dumps({"settings": settings.model_dump(mode="json"), "model": folder_fingerprint(model_dir),
                       "dtype": dtype}, sort_keys=True)
    return hashlib.sha256(blob.encode()).hexdigest()


def cached_or_evaluate(path: Path, settings: MergeEvalConfig, model_dir: str | Path, load, dtype: str = "") -> dict:
    """Reuse ``path`` if it was computed with the same settings for the same model contents, else run.

    ``load`` returns (model, tokenizer) and is only called on a cache miss, so a resumed sweep
    never reloads a model it has already scored.
    """
    fp = fingerprint(settings, model_dir, dtype)
    if path.exists():
        try:
            cached = read_json(path)
            if cached.get("fingerprint") == fp:
                return cached["result"]
        except (OSError, json.JSONDecodeError, KeyError):
            pass
    model, tok = load()
    result = evaluate(model, tok, settings)
    atomic_write_json(path, {"fingerprint": fp, "result": result})
    return result


def summary(result: Optional[dict]) -> Optional[dict]:
    """The table's numbers without the answers."""
    if result is None:
        return None
    return {k: v for k, v in result.items() if k != "answers"}
