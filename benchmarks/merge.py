"""Merge overhead: definemed's merge stage vs mergekit's own `mergekit-yaml` CLI, one run.

    python benchmarks/merge.py [--layers 8] [--repeats 3]

Two random models with the bundled model's architecture (fewer layers) are merged by SLERP at
t = 0.5 with one and the same mergekit config, each way in a fresh child process (so Python and
library start-up count for both, as they do for a user), measured with wait4: wall time and
peak RSS. Compared:

  mergekit-yaml       the CLI on the mergekit.yaml our stage writes
  definemed merge     pre-checks + mergekit's Python API + the instruct tokenizer (the merge itself)
  definemed stage     the whole stage without the sweep table: also hashes the inputs for the
                      manifest and reloads the merged model to check it (load, generate, counts)
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
ROOT = Path(__file__).resolve().parents[1]

MERGE_ONLY = """
import sys, json
from pathlib import Path
from definemed.config import validate_config
from definemed.merge.config import MergeConfig
from definemed.merge import mergekit_config as mkc
from definemed.merge.prechecks import check_models
from definemed.merge.run import finish_tokenizer, mergekit_merge
cfg = validate_config(MergeConfig, json.loads(sys.argv[1]))
models = {"instruct": Path(cfg.models.instruct), "cpt": Path(cfg.models.cpt)}
check_models(models)
out = Path(sys.argv[2])
mergekit_merge(mkc.build(cfg, models, 0.5), out, cfg.seed)
finish_tokenizer(cfg, out, models)
"""

STAGE = """
import sys, json
from definemed.config import validate_config
from definemed.merge.config import MergeConfig
from definemed.merge.run import run_merge
run_merge(validate_config(MergeConfig, json.loads(sys.argv[1])))
"""


def make_models(folder: Path, layers: int) -> dict[str, Path]:
    from definemed.models import random_init_like
    from definemed.models.bundled import ensure_bundled_model

    bundled = ensure_bundled_model()
    out = {}
    for seed, role in enumerate(("instruct", "cpt")):
        model = random_init_like(bundled, seed=seed, num_hidden_layers=layers)
        model.save_pretrained(folder / role, safe_serialization=True)
        for name in ("tokenizer.json", "tokenizer_config.json", "chat_template.jinja", "generation_config.json"):
            if (bundled / name).exists():
                shutil.copy2(bundled / name, folder / role / name)
        out[role] = folder / role
        params = sum(p.numel() for p in model.parameters())
    print(f"models: 2 x {params / 1e6:.1f}M parameters ({layers} layers, float32)")
    return out


def measure(cmd: list[str], out: Path) -> tuple[float, float]:
    """(wall seconds, peak RSS in MB) of one child process; ``out`` is removed first."""
    shutil.rmtree(out, ignore_errors=True)
    t = time.perf_counter()
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    _, status, usage = os.wait4(proc.pid, 0)
    wall = time.perf_counter() - t
    err = proc.stderr.read().decode(errors="replace")
    proc.stderr.close()
    proc.returncode = os.waitstatus_to_exitcode(status)
    if proc.returncode != 0:
        raise SystemExit(f"{cmd[0]} failed ({proc.returncode}):\n{err[-3000:]}")
    return wall, usage.ru_maxrss / 1024  # Linux reports KiB


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--layers", type=int, default=8, help="hidden layers of the random models (bundled: 30)")
    ap.add_argument("--repeats", type=int, default=3, help="runs of each; the median is reported")
    args = ap.parse_args()

    from definemed.config import validate_config
    from definemed.merge import mergekit_config as mkc
    from definemed.merge.config import MergeConfig

    tmp = Path(tempfile.mkdtemp(prefix="definemed-merge-bench-"))
    try:
        models = make_models(tmp, args.layers)
        base = {"models": {k: str(v) for k, v in models.items()}, "sweep": [0.5], "method": "slerp",
                "eval": {"enabled": False}}
        cfg = validate_config(MergeConfig, {**base, "output_dir": str(tmp / "unused")})
        yaml_path = tmp / "mergekit.yaml"
        yaml_path.write_text(mkc.to_yaml(mkc.build(cfg, models, 0.5)))
        cli = str(Path(sys.executable).parent / "mergekit-yaml")
        runs = {
            "mergekit-yaml": lambda: measure([cli, str(yaml_path), str(tmp / "cli"), "--copy-tokenizer",
                                              "--no-lazy-unpickle", "--quiet", "--device", "cpu"], tmp / "cli"),
            "definemed merge": lambda: measure([sys.executable, "-c", MERGE_ONLY,
                                                json.dumps({**base, "output_dir": str(tmp / "m")}),
                                                str(tmp / "merge-only")], tmp / "merge-only"),
            "definemed stage": lambda: measure([sys.executable, "-c", STAGE,
                                                json.dumps({**base, "output_dir": str(tmp / "stage")})], tmp / "stage"),
        }
        results: dict[str, list[tuple[float, float]]] = {k: [] for k in runs}
        for _ in range(args.repeats):  # interleaved, so that drifting machine load hits all alike
            for name, fn in runs.items():
                results[name].append(fn())
        same = _same_tensors(tmp / "cli", tmp / "merge-only") and _same_tensors(tmp / "cli", tmp / "stage" / "t0.5")
    finally:
        shutil.rmtree(tmp, ignore_errors=True)

    med = {k: (statistics.median(w for w, _ in v), statistics.median(r for _, r in v)) for k, v in results.items()}
    cli_wall, cli_rss = med["mergekit-yaml"]
    print(f"SLERP t=0.5, float32, CPU, {os.cpu_count()} cores, median of {args.repeats} "
          "(each a fresh process, start-up included)")
    print(f"{'':18}{'wall s':>8}{'peak RSS MB':>13}{'wall ratio':>12}{'RSS ratio':>11}")
    for name, (wall, rss) in med.items():
        print(f"{name:18}{wall:8.2f}{rss:13.0f}{wall / cli_wall:11.2f}x{rss / cli_rss:10.2f}x")
    print(f"merged tensors identical to the CLI's: {same}")


def _same_tensors(a: Path, b: Path) -> bool:
    import torch
    from safetensors.torch import load_file

    ta = {k: v for f in sorted(a.glob("*.safetensors")) for k, v in load_file(f).items()}
    tb = {k: v for f in sorted(b.glob("*.safetensors")) for k, v in load_file(f).items()}
    return ta.keys() == tb.keys() and all(torch.equal(ta[k], tb[k]) for k in ta)


if __name__ == "__main__":
    main()
