"""Training throughput: `definemed train` vs a plain Hugging Face `Trainer` with a padding
collator, same model (the bundled SmolLM2-135M-Instruct), same documents, same hardware, fp32,
measured in one run. Throughput counts useful tokens (padding excluded) per second.

    python benchmarks/train_throughput.py [--steps 6] [--seq-len 1024] [--batch 2]
    python benchmarks/train_throughput.py --random-init --bf16 --seq-len 2048 --batch 8 --steps 12   # on a GPU

Why ours is faster: documents are packed into full windows (no padding), so every token of
compute trains; the padding collator pads each batch to its longest document (the sample's
pages have 150–1,900 tokens) and truncates longer ones. At a realistic CPT length (1k–8k
tokens) padding is most of a batch; at 256 tokens almost every page fills the window, nothing
is padded, and both run at the same speed. `--random-init` builds the model from the bundled
config with random weights (throughput does not depend on the weights; for machines that only
have the config).
"""

from __future__ import annotations

import argparse
import shutil
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
GOLD = str(ROOT / "data/sample/labels/fineweb2_deu_gold.jsonl")
DOCS = str(ROOT / "data/sample/fineweb2_deu")


def ours(model_path: str, out: Path, steps: int, seq_len: int, batch: int, bf16: bool = False,
         cross_document_attention: bool = False) -> float:
    import json

    from definemed.config import validate_config
    from definemed.train.config import TrainConfig
    from definemed.train.loop import train

    cfg = validate_config(TrainConfig, {
        "output_dir": str(out), "model": model_path, "max_steps": steps, "warmup_steps": 1,
        "data": [{"path": DOCS, "gold_labels": GOLD, "split": "train", "min_medical": 3, "lang": "de"}],
        "seq_len": seq_len, "micro_batch_size": batch, "checkpoint_every": 10_000, "tensorboard": False,
        "dtype": "bfloat16" if bf16 else "float32", "cross_document_attention": cross_document_attention})
    train(cfg)
    recs = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()][1:]  # skip warm-up
    return sum(r["tokens_per_s"] for r in recs) / len(recs)


def hf_trainer(model_path: str, out: Path, steps: int, seq_len: int, batch: int, bf16: bool = False) -> float:
    import torch
    from transformers import (AutoModelForCausalLM, AutoTokenizer, DataCollatorForLanguageModeling, Trainer,
                              TrainerCallback, TrainingArguments)

    from definemed.train.config import DataSource
    from definemed.train.tokens import load_texts

    tok = AutoTokenizer.from_pretrained(model_path)
    tok.pad_token = tok.pad_token or tok.eos_token
    texts = load_texts(DataSource(path=DOCS, gold_labels=GOLD, split="train", min_medical=3, lang="de"))
    enc = tok(texts, truncation=True, max_length=seq_len)
    ds = [{"input_ids": ids, "attention_mask": m} for ids, m in zip(enc["input_ids"], enc["attention_mask"])]
    model = AutoModelForCausalLM.from_pretrained(model_path, dtype=torch.float32)
    times, useful = [], []

    class Clock(TrainerCallback):
        def on_step_begin(self, args, state, control, **kw):
            self.t = time.perf_counter()

        def on_step_end(self, args, state, control, **kw):
            times.append(time.perf_counter() - self.t)

    collator = DataCollatorForLanguageModeling(tok, mlm=False)

    def counting_collator(features):
        b = collator(features)
        useful.append(int(b["attention_mask"].sum()))
        return b

    args = TrainingArguments(output_dir=str(out), per_device_train_batch_size=batch, max_steps=steps,
                             learning_rate=3e-4, warmup_steps=1, logging_steps=1000, save_strategy="no",
                             report_to=[], use_cpu=not torch.cuda.is_available(), bf16=bf16,
                             dataloader_num_workers=0, seed=0)
    Trainer(model=model, args=args, train_dataset=ds, data_collator=counting_collator,
            callbacks=[Clock()]).train()
    n = min(len(times), len(useful))
    return sum(useful[1:n]) / sum(times[1:n])  # skip warm-up step


def _bundled_path() -> str:
    from definemed.models import resolve_model

    return resolve_model("smollm2-135m-instruct")


def _random_copy(model_path: str, out: Path) -> str:
    """Config + tokenizer of `model_path`, random weights (seeded)."""
    import torch
    from transformers import AutoConfig, AutoModelForCausalLM, AutoTokenizer

    torch.manual_seed(0)
    model = AutoModelForCausalLM.from_config(AutoConfig.from_pretrained(model_path))
    model.save_pretrained(out)
    AutoTokenizer.from_pretrained(model_path).save_pretrained(out)
    return str(out)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--steps", type=int, default=6)
    ap.add_argument("--seq-len", type=int, default=1024)
    ap.add_argument("--batch", type=int, default=2)
    ap.add_argument("--bf16", action="store_true", help="bf16 autocast in both (GPUs; this CPU is slow in bf16)")
    ap.add_argument("--random-init", action="store_true", help="random weights from the bundled model's config")
    ap.add_argument("--model", default=None, help="model folder (default: the bundled model)")
    ap.add_argument("--cross-document-attention", action="store_true",
                    help="also time ours without the block-diagonal mask (causal over the packed window)")
    args = ap.parse_args()
    import torch

    tmp = Path(tempfile.mkdtemp(prefix="definemed-train-bench-"))
    try:
        model_path = args.model or _bundled_path()
        if args.random_init:
            model_path = _random_copy(model_path, tmp / "random-init")
        base = hf_trainer(model_path, tmp / "hf", args.steps, args.seq_len, args.batch, args.bf16)
        mine = ours(model_path, tmp / "ours", args.steps, args.seq_len, args.batch, args.bf16)
        free = ours(model_path, tmp / "ours-causal", args.steps, args.seq_len, args.batch, args.bf16, True) \
            if args.cross_document_attention else None
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    device = torch.cuda.get_device_name() if torch.cuda.is_available() else "CPU"
    print(f"model SmolLM2-135M-Instruct{' (random init)' if args.random_init else ''} "
          f"{'bf16' if args.bf16 else 'fp32'} on {device}, batch {args.batch} x {args.seq_len}, "
          f"{args.steps} steps (first skipped)")
    print(f"HF Trainer + padding collator: {base:,.1f} useful tokens/s")
    print(f"definemed train (packed):      {mine:,.1f} tokens/s")
    print(f"ratio: {mine / base:.2f}x (target >= 1.2x: {'met' if mine / base >= 1.2 else 'NOT met'})")
    if free is not None:
        print(f"definemed train, cross_document_attention: true (no mask): {free:,.1f} tokens/s, "
              f"ratio {free / base:.2f}x")


if __name__ == "__main__":
    main()
