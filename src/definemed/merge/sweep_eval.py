"""The two numbers a merge trades off, per model: German medical perplexity and instruction following.

Merging pulls the CPT model's domain knowledge (low perplexity on German medical text) back
together with the instruct parent's ability to follow instructions; the sweep table shows both
for every interpolation factor. Both use the held-out data named in the merge config
(``eval.heldout``, ``eval.instructions_data``) — the user's own held-out set at any scale:

- perplexity: the held-out documents, minus every document that a parent model was trained on
  (by id or normalised text, from the parents' definemed training indexes), counted as
  ``heldout_overlap_docs``;
- instruction following: share of verifiable constraints passed (strict and loose, IFEval-style)
  on the first instructions that have constraints, answered by greedy chat generation.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Optional

from definemed.data.heldout import DocIndex, exclude_training
from definemed.merge.config import MergeEvalConfig
from definemed.runs import atomic_write_json, read_json


@dataclass
class EvalData:
    """The sweep's evaluation data, loaded once and shared by every model of the sweep."""

    texts: list[str]
    items: list
    heldout_overlap_docs: int

    def key(self) -> str:
        """Hash of the data itself: a cached score of other data is never reused."""
        blob = json.dumps({"texts": self.texts, "items": [i.model_dump(mode="json") for i in self.items]},
                          sort_keys=True, ensure_ascii=False)
        return hashlib.sha256(blob.encode()).hexdigest()


def load_eval_data(settings: MergeEvalConfig, training: Optional[DocIndex]) -> EvalData:
    from definemed.data.sample import load_instructions
    from definemed.data.sources import load_docs
    from definemed.errors import UserError

    docs, overlap = exclude_training(load_docs(settings.heldout, limit=False, what="eval.heldout data"), training)
    texts = [d.text for d in docs][: min(n for n in (settings.heldout.max_docs, settings.docs) if n)]
    if not texts:
        raise UserError(f"eval.heldout: no held-out documents left in {settings.heldout.path} "
                        f"({overlap} were training data of a parent)")
    items = [item for item in load_instructions(settings.instructions_data) if item.constraints]
    if settings.instructions and not items:  # a pass rate over 0 answers would be nan%
        raise UserError(f"eval.instructions_data: {settings.instructions_data} has no instruction with constraints "
                        "(the sweep scores instruction following on those)")
    return EvalData(texts, items[: settings.instructions], overlap)


def evaluate(model, tok, settings: MergeEvalConfig, data: EvalData) -> dict:
    """Perplexity on the held-out texts and the constraint pass rates of greedy answers."""
    from definemed.eval.generate import user_text
    from definemed.eval.ifeval import check_constraints
    from definemed.eval.perplexity import perplexity
    from definemed.models.chat import GenerationSettings, build_messages, generate_chat

    ppl = perplexity(model, tok, data.texts, max_length=settings.max_length, batch_size=settings.batch_size)
    items = data.items
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
            "heldout_overlap_docs": data.heldout_overlap_docs,
            "if_strict": strict / n if n else None, "if_loose": loose / n if n else None,
            "constraints": n, "instructions": len(rows), "answers": rows}


def fingerprint(settings: MergeEvalConfig, model_dir: str | Path, dtype: str = "") -> str:
    """The settings, the contents of the checkpoint (`definemed.models.fingerprint`: a model
    re-merged or replaced at the same path gets another one) and the dtype it is loaded in."""
    from definemed.models.fingerprint import folder_fingerprint

    blob = json.dumps({"settings": settings.model_dump(mode="json"), "model": folder_fingerprint(model_dir),
                       "dtype": dtype}, sort_keys=True)
    return hashlib.sha256(blob.encode()).hexdigest()


def cached_or_evaluate(path: Path, settings: MergeEvalConfig, model_dir: str | Path, load, data: EvalData,
                       dtype: str = "") -> dict:
    """Reuse ``path`` if it was computed with the same settings, data and model contents, else run.

    ``load`` returns (model, tokenizer) and is only called on a cache miss, so a resumed sweep
    never reloads a model it has already scored.
    """
    fp = hashlib.sha256(f"{fingerprint(settings, model_dir, dtype)}|data:{data.key()}".encode()).hexdigest()
    if path.exists():
        try:
            cached = read_json(path)
            if cached.get("fingerprint") == fp:
                return cached["result"]
        except (OSError, json.JSONDecodeError, KeyError):
            pass
    model, tok = load()
    result = evaluate(model, tok, settings, data)
    atomic_write_json(path, {"fingerprint": fp, "result": result})
    return result


def summary(result: Optional[dict]) -> Optional[dict]:
    """The table's numbers without the answers."""
    if result is None:
        return None
    return {k: v for k, v in result.items() if k != "answers"}
