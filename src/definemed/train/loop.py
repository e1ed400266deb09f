"""`definemed train run`: continual pre-training, short and linear like nanoGPT.

The same entry point runs on one process or under `accelerate launch` / `torchrun` (DDP): the
global batch is world_size × micro_batch_size × grad_accum_steps sequences, and sequence i of the
run is fixed by the seed, so every process takes its own share and a resumed run continues with
exactly the data it would have seen.
"""

from __future__ import annotations

import json
import logging
import time
from pathlib import Path

import torch

from definemed.console import console
from definemed.data.heldout import TRAINING_DOCS_FILE, DocIndex, exclude_training
from definemed.data.sources import load_docs
from definemed.errors import UserError
from definemed.models.masks import packed_positions_honoured
from definemed.runs import RunDir, atomic_write_text, read_json
from definemed.train.checkpoint import checkpoint_dirs, load_checkpoint, save_checkpoint
from definemed.train.config import TrainConfig
from definemed.train.packing import PackedMixture, forward
from definemed.train.schedule import lr_at
from definemed.train.tokens import token_store

log = logging.getLogger("definemed.train")


def _prepare_model(cfg: TrainConfig, model_path: str):
    from definemed.models.loading import from_pretrained_checked

    torch.manual_seed(cfg.seed)
    # the folder passed `check_model_folder`; what transformers still refuses, or weights that do
    # not fill the architecture, are one line too
    model = from_pretrained_checked(model_path, torch.float32, cfg.trust_remote_code)
    if cfg.freeze_embeddings:  # tied models: this freezes the output layer too
        model.get_input_embeddings().weight.requires_grad_(False)
    if cfg.lora is not None:
        from peft import LoraConfig, get_peft_model

        model = get_peft_model(model, LoraConfig(r=cfg.lora.r, lora_alpha=cfg.lora.alpha,
                                                 lora_dropout=cfg.lora.dropout,
                                                 target_modules=cfg.lora.target_modules, task_type="CAUSAL_LM"))
    if cfg.gradient_checkpointing:
        model.gradient_checkpointing_enable()
        model.config.use_cache = False
    return model


def _optimizer(cfg: TrainConfig, model) -> torch.optim.Optimizer:
    params = [p for p in model.parameters() if p.requires_grad]
    decay = [p for p in params if p.dim() >= 2]  # no weight decay on norms and biases
    no_decay = [p for p in params if p.dim() < 2]
    return torch.optim.AdamW([{"params": decay, "weight_decay": cfg.weight_decay},
                              {"params": no_decay, "weight_decay": 0.0}], lr=cfg.lr, betas=cfg.betas,
                             foreach=False)


def heldout_sets(cfg: TrainConfig, training: DocIndex) -> tuple[dict[str, list[str]], dict[str, int]]:
    """Per held-out set: its texts after dropping every document that is also training data (by
    id or normalised text), and how many were dropped. The cut to ``heldout_max_docs`` comes after
    the check, so an overlap never shrinks the set silently."""
    texts, overlap = {}, {}
    for name, src in cfg.heldout.items():
        kept, dropped = exclude_training(load_docs(src, limit=False, what=f"held-out data ({name})"), training)
        overlap[name] = dropped
        limit = min(n for n in (src.max_docs, cfg.heldout_max_docs) if n)
        texts[name] = [d.text for d in kept][:limit]
        if dropped:
            log.warning("held-out set %s: %d documents are also training data; excluded", name, dropped)
    return texts, overlap


def heldout_perplexity(cfg: TrainConfig, model, tok, texts: dict[str, list[str]]) -> dict:
    from definemed.eval.perplexity import perplexity

    model.eval()
    out = {name: round(perplexity(model, tok, docs, max_length=cfg.heldout_max_length)["ppl"], 4)
           for name, docs in texts.items() if docs}
    model.train()
    return out


def train(cfg: TrainConfig) -> dict:
    from accelerate import Accelerator

    acc = Accelerator(cpu=not torch.cuda.is_available(),
                      mixed_precision="bf16" if cfg.dtype == "bfloat16" else "no")
    # only the main process locks the folder and writes its manifest; the other ranks share it
    with RunDir(Path(cfg.output_dir), "train", lock=acc.is_main_process) as run:
        return _train(cfg, acc, run)


def _train(cfg: TrainConfig, acc, run: RunDir) -> dict:
    from definemed.models import load_tokenizer, resolve_model

    out = run.path
    if (done := run.reuse(cfg, announce=acc.is_main_process)) is not None:
        return done
    model_path = resolve_model(cfg.model, trust_remote_code=cfg.trust_remote_code)
    tok = load_tokenizer(model_path, trust_remote_code=cfg.trust_remote_code)
    if acc.is_main_process:
        run.start(cfg, seed=cfg.seed, inputs={f"data/{i}": s.path for i, s in enumerate(cfg.data)})
    stores = [token_store(src, tok, Path(model_path)) for src in cfg.data]  # main builds, others reuse cache
    training = DocIndex.union(s.index for s in stores)
    heldout, overlap = heldout_sets(cfg, training)
    if acc.is_main_process and cfg.heldout:
        console.print("held-out overlap with the training data: " + ", ".join(
            f"{name} {n} of {n + len(heldout[name])} documents excluded" if n else f"{name} 0"
            for name, n in overlap.items()), highlight=False, markup=False)
    mixture = PackedMixture(stores, [s.weight for s in cfg.data], cfg.seq_len, cfg.seed)
    world, rank = acc.num_processes, acc.process_index
    per_step = world * cfg.micro_batch_size * cfg.grad_accum_steps
    plan = mixture.plan(cfg.max_steps * per_step)

    model = _prepare_model(cfg, model_path)
    optimizer = _optimizer(cfg, model)
    start_step = 0
    ckpts = checkpoint_dirs(out / "checkpoints")
    if ckpts:  # exact resume: weights, optimizer, RNG and data position from the last checkpoint
        start_step = load_checkpoint(ckpts[-1], model, optimizer)["step"]
        if acc.is_main_process:
            console.print(f"resuming from {ckpts[-1].name} (step {start_step})")
    model, optimizer = acc.prepare(model, optimizer)
    if not cfg.cross_document_attention and packed_positions_honoured(acc.unwrap_model(model)) is False:
        raise UserError(f"{cfg.model}: this model ignores document boundaries given as position ids "
                        "(packed training would attend across documents); set cross_document_attention: true")
    model.train()

    metrics_file = out / "metrics.jsonl"
    tb = None
    if acc.is_main_process:
        _truncate_metrics(metrics_file, start_step)
        if cfg.tensorboard:
            from torch.utils.tensorboard import SummaryWriter

            tb = SummaryWriter(str(out / "tensorboard"), purge_step=start_step + 1)
    start_ppl = read_json(out / "heldout_start.json") if (out / "heldout_start.json").exists() else None
    if start_ppl is None and acc.is_main_process and cfg.heldout:
        start_ppl = heldout_perplexity(cfg, acc.unwrap_model(model), tok, heldout)
        atomic_write_text(out / "heldout_start.json", json.dumps(start_ppl))

    block = not cfg.cross_document_attention
    trained_tokens = start_step * per_step * cfg.seq_len
    loss = float("nan")
    for step in range(start_step, cfg.max_steps):
        t0 = time.time()
        lr = lr_at(step, cfg)
        for group in optimizer.param_groups:
            group["lr"] = lr
        step_items = plan[step * per_step:(step + 1) * per_step]
        mine = step_items[rank::world]  # this process's share of the global batch
        step_loss = torch.zeros((), device=acc.device)
        for micro in range(cfg.grad_accum_steps):
            items = mine[micro * cfg.micro_batch_size:(micro + 1) * cfg.micro_batch_size]
            batch = {k: v.to(acc.device) for k, v in mixture.batch(items, block_diagonal=block).items()}
            with acc.autocast():
                out_ = forward(model, batch)
            micro_loss = out_.loss / cfg.grad_accum_steps
            # no gradient sync until the last micro-batch of the step
            with acc.no_sync(model) if micro < cfg.grad_accum_steps - 1 else _null():
                acc.backward(micro_loss)
            step_loss += micro_loss.detach()
        grad_norm = acc.clip_grad_norm_([p for p in model.parameters() if p.requires_grad], cfg.grad_clip)
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
        loss = acc.reduce(step_loss, reduction="mean").item()
        trained_tokens += per_step * cfg.seq_len
        if acc.is_main_process and (step % cfg.log_every == 0 or step == cfg.max_steps - 1):
            rec = {"step": step + 1, "loss": round(loss, 6), "lr": lr, "grad_norm": round(float(grad_norm), 6),
                   "tokens": trained_tokens, "tokens_per_s": round(per_step * cfg.seq_len / (time.time() - t0), 1)}
            with open(metrics_file, "a", encoding="utf-8") as f:
                f.write(json.dumps(rec) + "\n")
            if tb is not None:
                for k in ("loss", "lr", "grad_norm", "tokens_per_s"):
                    tb.add_scalar(f"train/{k}", rec[k], step + 1)
            console.print(f"step {step + 1}/{cfg.max_steps}  loss {loss:.4f}  lr {lr:.2e}  "
                          f"{rec['tokens_per_s']:.0f} tok/s", highlight=False)
        if (step + 1) % cfg.checkpoint_every == 0 and step + 1 < cfg.max_steps:
            acc.wait_for_everyone()
            if acc.is_main_process:
                save_checkpoint(out / "checkpoints", step + 1, acc.unwrap_model(model), optimizer, cfg.keep_last,
                                {"loss": loss})
            acc.wait_for_everyone()

    acc.wait_for_everyone()
    if not acc.is_main_process:
        return {}
    final_model = acc.unwrap_model(model)
    if cfg.lora is not None:
        final_model = final_model.merge_and_unload()
    end_ppl = heldout_perplexity(cfg, final_model, tok, heldout) if cfg.heldout else {}
    metrics = {"final_loss": loss, "steps": cfg.max_steps, "tokens": trained_tokens,
               "heldout_ppl_start": start_ppl, "heldout_ppl_end": end_ppl,
               "heldout_docs": {k: len(v) for k, v in heldout.items()}, "heldout_overlap_docs": overlap,
               "training_docs": int(len(training)),
               "world_size": world, "global_batch_sequences": per_step}
    _save_final(out / "final", final_model, tok, cfg, metrics, training)
    if tb is not None:
        tb.close()
    run.finish(metrics, outputs={"model": out / "final"},
               manifest={"heldout_overlap_docs": overlap, "training_docs": int(len(training))})
    return metrics


class _null:
    def __enter__(self):
        return self

    def __exit__(self, *a):
        return False


def _truncate_metrics(path: Path, step: int) -> None:
    """On resume, forget metric lines of steps after the checkpoint (they will be redone)."""
    if not path.exists():
        return
    keep = [line for line in path.read_text().splitlines() if line and json.loads(line)["step"] <= step]
    atomic_write_text(path, "".join(line + "\n" for line in keep))


def _save_final(folder: Path, model, tok, cfg: TrainConfig, metrics: dict, training: DocIndex) -> None:
    import shutil
    import tempfile

    folder.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(dir=folder.parent, prefix=".final-"))
    model.save_pretrained(tmp, safe_serialization=True)
    tok.save_pretrained(tmp)  # keeps the base model's chat template
    atomic_write_text(tmp / "README.md", model_card(cfg, metrics))
    training.save(tmp / TRAINING_DOCS_FILE)  # later held-out checks (merge sweep, eval) read it
    if folder.exists():
        shutil.rmtree(folder)
    tmp.rename(folder)


def model_card(cfg: TrainConfig, metrics: dict) -> str:
    data = "\n".join(f"- `{s.path}` (weight {s.weight}, {s.kind})" for s in cfg.data)
    ppl = "\n".join(f"| {k} | {metrics['heldout_ppl_start'].get(k)} | {v} |"
                    for k, v in (metrics.get("heldout_ppl_end") or {}).items())
    return f"""---
base_model: {cfg.model}
library_name: transformers
tags: [definemed, continual-pretraining]
---
# Continually pre-trained model (definemed)

Base model: `{cfg.model}`. Trained with `definemed train` for {metrics['steps']} steps,
{metrics['tokens']:,} tokens ({metrics['world_size']} process(es), global batch
{metrics['global_batch_sequences']} × {cfg.seq_len} tokens).

## Data
{data}

## Hyperparameters
lr {cfg.lr} ({cfg.schedule}, warmup {cfg.warmup_steps}, min ratio {cfg.min_lr_ratio}), AdamW betas
{list(cfg.betas)}, weight decay {cfg.weight_decay}, grad clip {cfg.grad_clip}, dtype {cfg.dtype},
cross-document attention {cfg.cross_document_attention}, frozen embeddings {cfg.freeze_embeddings},
LoRA {cfg.lora.model_dump() if cfg.lora else None}, seed {cfg.seed}.

## Held-out perplexity
| set | start | end |
|---|---|---|
{ppl}

Final training loss: {metrics['final_loss']:.4f}.
"""
