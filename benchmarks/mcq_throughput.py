"""MCQ throughput: `definemed eval mcq` scoring vs lm-evaluation-harness (`lm_eval.simple_evaluate` with
its `hf` model) on the exported task, same model (the bundled SmolLM2-135M-Instruct), same items,
same prompts, fp32, CPU, in one run. Both models are loaded before the clock starts; items/s counts
questions (each has 4 options).

    python benchmarks/mcq_throughput.py [--items 40] [--batch 8] [--shots 0]

Compared:
  lm-eval bs=1        lm_eval's default batch size
  lm-eval bs=B        lm_eval with our batch size (B items ≈ 4·B (context, option) rows)
  ours plain          one right-padded row per (context, option) pair: lm-eval's computation
  ours shared prefix  the default: the context once per item, all options packed after it
and the accuracies (acc, acc_norm) must be identical.
"""

from __future__ import annotations

import argparse
import logging
import os
import tempfile
import time
from pathlib import Path

os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")
os.environ.setdefault("HF_HUB_OFFLINE", "1")
ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT / "data/sample/mcq_de/mcq_de.jsonl"


def lm_eval_run(model_path: Path, task_dir: Path, task: str, n: int, shots: int, batch: int) -> tuple[float, dict]:
    from lm_eval import simple_evaluate
    from lm_eval.models.huggingface import HFLM
    from lm_eval.tasks import TaskManager

    lm = HFLM(pretrained=str(model_path), dtype="float32", device="cpu", batch_size=batch)
    manager = TaskManager(include_path=str(task_dir))
    t = time.perf_counter()
    res = simple_evaluate(model=lm, tasks=[task], num_fewshot=shots, limit=n, task_manager=manager,
                          log_samples=False, bootstrap_iters=0)
    seconds = time.perf_counter() - t
    r = res["results"][task]
    return seconds, {"acc": r["acc,none"], "acc_norm": r["acc_norm,none"]}


def ours_run(model, tok, n: int, shots: int, batch: int, share_prefix: bool) -> tuple[float, dict]:
    from definemed.eval import mcq_data
    from definemed.eval.config import MCQEvalConfig
    from definemed.eval.mcq import score_items

    pool = mcq_data.load_items(DATA)
    cfg = MCQEvalConfig(data=DATA, output_dir="unused", shots=shots, batch_size=batch, share_prefix=share_prefix)
    t = time.perf_counter()
    rows = score_items(model, tok, cfg, pool[:n], pool)
    seconds = time.perf_counter() - t
    return seconds, {"acc": sum(r["correct"] for r in rows) / n, "acc_norm": sum(r["correct_norm"] for r in rows) / n}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--items", type=int, default=40)
    ap.add_argument("--batch", type=int, default=8, help="items per forward (ours) / requests per batch (lm-eval)")
    ap.add_argument("--shots", type=int, default=0)
    args = ap.parse_args()
    logging.getLogger("lm_eval").setLevel(logging.ERROR)

    from definemed.eval.lmeval_export import export_task
    from definemed.models import load_causal_lm
    from definemed.models.bundled import ensure_bundled_model

    model_path = ensure_bundled_model()
    task_dir = Path(tempfile.mkdtemp(prefix="definemed-mcq-bench-"))
    export_task(DATA, task_dir, "mcq_bench", shots=args.shots)
    model, tok = load_causal_lm(model_path)
    runs = {
        "lm-eval bs=1": lambda: lm_eval_run(model_path, task_dir, "mcq_bench", args.items, args.shots, 1),
        f"lm-eval bs={args.batch}": lambda: lm_eval_run(model_path, task_dir, "mcq_bench", args.items, args.shots,
                                                        args.batch),
        "ours plain": lambda: ours_run(model, tok, args.items, args.shots, args.batch, share_prefix=False),
        "ours shared prefix": lambda: ours_run(model, tok, args.items, args.shots, args.batch, share_prefix=True),
    }
    results = {name: fn() for name, fn in runs.items()}
    import torch

    print(f"{args.items} items x 4 options, {args.shots}-shot, bundled SmolLM2-135M-Instruct fp32, CPU "
          f"({os.cpu_count()} cores, {torch.get_num_threads()} torch threads)")
    base = args.items / results[f"lm-eval bs={args.batch}"][0]
    print(f"{'':22}{'seconds':>9}{'items/s':>9}{'vs lm-eval bs=' + str(args.batch):>19}{'acc':>7}{'acc_norm':>10}")
    for name, (sec, acc) in results.items():
        print(f"{name:22}{sec:9.1f}{args.items / sec:9.2f}{args.items / sec / base:18.2f}x"
              f"{acc['acc']:7.3f}{acc['acc_norm']:10.3f}")
    accs = {name: acc for name, (_, acc) in results.items()}
    same = all(a == accs["lm-eval bs=1"] for a in accs.values())
    print(f"identical acc and acc_norm everywhere: {same}")
    if not same:
        raise SystemExit("accuracies differ")


if __name__ == "__main__":
    main()
