"""Answers of models to an instruction set, one JSONL file per model: ``<run>/answers/<label>.jsonl``.

Each row has exactly the fields of `ANSWER_FIELDS` (the judge and the failure analysis read them):

    {"id", "model" (label), "model_ref" (checkpoint path or served name), "prompt" (the user text),
     "answer", "reference" (or null), "new_tokens", "hit_limit", "seconds",
     "settings": {"max_new_tokens", "temperature", "seed", "chat_template"},
     "status" ("ok" or "failed"), "reason" (null, "http_error", "empty_output", ...)}

Local models generate with `definemed.models.chat.generate_chat` (batched, greedy or sampled);
servers through the OpenAI-compatible backend. Fail closed: a request that fails for good is a
row with status "failed" and its reason (answer ""), never a crash of the run and never an "ok"
empty answer; the judges leave such items out and count them. An empty answer that the model
did give (it stopped at once) is its answer: status "ok", judged like any other (it loses), and
counted in the metrics as ``empty_answers``. (An empty *verdict* from a judge, by contrast, is a
failed verdict: `definemed.llm.base.EMPTY_OUTPUT`.)

The file is cached: a sidecar ``answers/.<label>.key`` holds the hash of the model identity
(`definemed.llm.fingerprint`: the content of a local checkpoint's weights, config and tokenizer
plus the dtype, or server URL + served name), the settings, the system prompt and the items' ids
and prompts. With the same key, rows already on disk are kept and only missing or failed items
are generated (rows are appended per batch, so an interrupted run resumes); with another key
the file is regenerated. Sampled answers
(temperature > 0) are seeded per batch, so a resumed sampled run may differ from an
uninterrupted one; greedy answers do not.
"""

from __future__ import annotations

import hashlib
import json
import os
import time
from pathlib import Path

from rich.markup import escape

from definemed.data.io import read_jsonl_tolerant, write_jsonl
from definemed.data.schemas import InstructionItem
from definemed.eval.bootstrap import mean_with_ci
from definemed.eval.config import GenerateEvalConfig
from definemed.eval.rundir import EvalRun, model_labels
from definemed.errors import UserError
from definemed.llm.base import Failed
from definemed.llm.fingerprint import local_fingerprint, served_fingerprint
from definemed.runs import atomic_write_text, guarded

ANSWER_FIELDS = ("id", "model", "model_ref", "prompt", "answer", "reference", "new_tokens", "hit_limit",
                 "seconds", "settings", "status", "reason")


def user_text(item: InstructionItem) -> str:
    """The user turn of an instruction item: the instruction, then its input after a blank line."""
    return f"{item.instruction}\n\n{item.input}" if item.input else item.instruction


def settings_of(cfg: GenerateEvalConfig) -> dict:
    return {"max_new_tokens": cfg.max_new_tokens, "temperature": cfg.temperature, "seed": cfg.seed,
            "chat_template": cfg.chat_template}


def answers_key(fingerprint: str, cfg: GenerateEvalConfig, items: list[InstructionItem]) -> str:
    blob = json.dumps({"model": fingerprint, "settings": settings_of(cfg), "system": cfg.system_prompt,
                       "items": [[it.id, user_text(it)] for it in items]}, sort_keys=True, ensure_ascii=False)
    return hashlib.sha256(blob.encode()).hexdigest()


class AnswerFile:
    """``answers/<label>.jsonl`` plus its cache key; rows appended per batch, torn tails dropped."""

    def __init__(self, folder: Path, label: str):
        self.path = folder / f"{label}.jsonl"
        self.key_path = folder / f".{label}.key"

    def open(self, key: str) -> dict[str, dict]:
        """Rows already generated under ``key`` (by id); anything else on disk is discarded."""
        rows: dict[str, dict] = {}
        if self.key_path.exists() and self.key_path.read_text().strip() == key and self.path.exists():
            for row in read_jsonl_tolerant(self.path.read_text(encoding="utf-8")):  # torn: regenerate
                if set(row) == set(ANSWER_FIELDS) and row["status"] == "ok":  # failed rows: asked again
                    rows[row["id"]] = row
        atomic_write_text(self.key_path, key + "\n")
        self.rewrite(list(rows.values()))
        return rows

    def append(self, rows: list[dict]) -> None:
        with open(self.path, "a", encoding="utf-8") as f:
            f.write("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows))
            f.flush()
            os.fsync(f.fileno())

    def rewrite(self, rows: list[dict]) -> None:
        write_jsonl(self.path, rows)


def _local_generator(ref: str, cfg: GenerateEvalConfig):
    from definemed.models import load_causal_lm
    from definemed.models.chat import GenerationSettings, build_messages, generate_chat

    model, tok = load_causal_lm(ref, dtype=cfg.dtype, trust_remote_code=cfg.trust_remote_code)
    if not cfg.chat_template:
        tok.chat_template = None  # generate_chat then uses the plain "user text\n" prompt

    def run(texts: list[str], batch_start: int) -> list[dict]:
        t0 = time.perf_counter()
        settings = GenerationSettings(max_new_tokens=cfg.max_new_tokens, temperature=cfg.temperature,
                                      seed=cfg.seed + batch_start)
        out = generate_chat(model, tok, [build_messages(t, cfg.system_prompt) for t in texts], settings,
                            batch_size=cfg.batch_size)
        per_item = (time.perf_counter() - t0) / len(texts)
        return [{**r, "seconds": per_item} for r in out]

    return run


def server_backend(ref: str, cfg: GenerateEvalConfig):
    """The server backend for model ``ref``, preflighted (``GET /models``): an unreachable server,
    a wrong URL, a refused key or a model the server does not serve stops here, in one line."""
    from definemed.llm import connect_backend
    from definemed.llm.base import BackendConfig

    if not cfg.chat_template:
        raise UserError("backend 'openai' always applies the server's chat template: set chat_template: true")
    return connect_backend(BackendConfig(kind="openai", model=ref, base_url=cfg.base_url,
                                         api_key_env=cfg.api_key_env, concurrency=cfg.concurrency,
                                         timeout_s=cfg.timeout_s))


def _server_generator(ref: str, cfg: GenerateEvalConfig, backend=None):
    from definemed.models.chat import build_messages

    backend = backend or server_backend(ref, cfg)

    def run(texts: list[str], batch_start: int) -> list[dict]:
        return backend.generate_detailed([build_messages(t, cfg.system_prompt) for t in texts],
                                         max_new_tokens=cfg.max_new_tokens, temperature=cfg.temperature,
                                         seed=cfg.seed)

    return run


def generate_for_model(label: str, ref: str, cfg: GenerateEvalConfig, items: list[InstructionItem],
                       progress=None, backend=None) -> tuple[list[dict], int]:
    """All answer rows of one model in item order, and how many were generated now (``backend``:
    the served model's, already preflighted)."""
    server = cfg.backend == "openai"
    fingerprint = served_fingerprint(cfg.base_url or "", ref) if server else local_fingerprint(ref, cfg.dtype)
    store = AnswerFile(cfg.output_dir / "answers", label)
    done = store.open(answers_key(fingerprint, cfg, items))
    todo = [it for it in items if it.id not in done]
    if progress is not None and len(items) > len(todo):
        progress(len(items) - len(todo))
    model_ref = ref if server else _resolved(ref, cfg.trust_remote_code)
    if todo:
        generate = _server_generator(ref, cfg, backend) if server else _local_generator(ref, cfg)
        step = cfg.concurrency * 2 if server else cfg.batch_size
        for start in range(0, len(todo), step):
            batch = todo[start:start + step]
            outs = generate([user_text(it) for it in batch], items.index(batch[0]))
            rows = [_row(it, o, label, model_ref, cfg) for it, o in zip(batch, outs)]
            store.append(rows)
            done.update({r["id"]: r for r in rows})
            if progress is not None:
                progress(len(batch))
    ordered = [done[it.id] for it in items]
    store.rewrite(ordered)
    return ordered, len(todo)


def _row(it: InstructionItem, out: dict | Failed, label: str, model_ref: str, cfg: GenerateEvalConfig) -> dict:
    row = {"id": it.id, "model": label, "model_ref": model_ref, "prompt": user_text(it), "reference": it.reference,
           "settings": settings_of(cfg)}
    if isinstance(out, Failed):
        return {**row, "answer": "", "new_tokens": None, "hit_limit": False, "seconds": 0.0, "status": "failed",
                "reason": out.reason}
    return {**row, "answer": out["text"], "new_tokens": out["new_tokens"], "hit_limit": bool(out["hit_limit"]),
            "seconds": round(out["seconds"], 4), "status": "ok", "reason": None}


def _resolved(ref: str, trust_remote_code: bool = False) -> str:
    from definemed.models import resolve_model

    return resolve_model(ref, trust_remote_code=trust_remote_code)


@guarded  # an exception records the evaluation as failed and releases the folder's lock
def run_generate(cfg: GenerateEvalConfig, progress_factory=None) -> dict:
    """Answers of every model of ``cfg``; returns per-model metrics (also in metrics.json)."""
    from collections import Counter
    from contextlib import nullcontext

    from definemed.console import console
    from definemed.data.sample import load_instructions
    from definemed.data.subsets import stratified_subset

    if not cfg.data.is_file():
        raise UserError(f"instruction data not found: {cfg.data}")
    if cfg.backend == "openai" and not cfg.base_url:
        raise UserError("backend 'openai' needs base_url, e.g. http://localhost:8000/v1")
    items = load_instructions(cfg.data)
    items = stratified_subset(items, cfg.limit, key=lambda i: i.category, seed=cfg.seed)
    if not items:  # 0 answers would "succeed" with nan% everywhere downstream
        raise UserError(f"{cfg.data}: no instruction items (the file is empty)")
    # every model is checked before the run starts: no half-done run for a wrong URL, a wrong model
    # name or a broken checkpoint
    servers = {ref: server_backend(ref, cfg) for _, ref in model_labels(cfg.models)} if cfg.backend == "openai" \
        else {}
    if cfg.backend != "openai":
        for _, ref in model_labels(cfg.models):
            _resolved(ref, cfg.trust_remote_code)
    run = EvalRun(cfg.output_dir, "generate").start(cfg, seed=cfg.seed, inputs={"data": cfg.data})
    metrics, outputs = {}, {}
    for label, ref in model_labels(cfg.models):
        bar = progress_factory(f"generate {label}", len(items)) if progress_factory else nullcontext(None)
        with bar as advance:
            rows, generated = generate_for_model(label, ref, cfg, items, progress=advance, backend=servers.get(ref))
        ok = [r for r in rows if r["status"] == "ok"]
        tokens = [r["new_tokens"] for r in ok if r["new_tokens"] is not None]
        failed = Counter(r["reason"] for r in rows if r["status"] != "ok")
        if failed:
            console.print(f"[yellow]{escape(label)}: {sum(failed.values())} answer(s) failed "
                          f"({', '.join(f'{k} {v}' for k, v in sorted(failed.items()))}); rerun to retry them[/]")
        metrics[label] = {"items": len(rows), "generated_now": generated, "failed": sum(failed.values()),
                          "failed_reasons": dict(failed), "empty_answers": sum(not r["answer"].strip() for r in ok),
                          "hit_limit": mean_with_ci([float(r["hit_limit"]) for r in ok], seed=cfg.seed),
                          "mean_new_tokens": sum(tokens) / len(tokens) if tokens else None,
                          "seconds": round(sum(r["seconds"] for r in rows), 3)}
        outputs[f"answers/{label}"] = cfg.output_dir / "answers" / f"{label}.jsonl"
    run.finish(metrics, outputs)
    return metrics
