"""Checkpoints with everything exact resume needs: model weights (safetensors), optimizer state,
RNG states and the step (which is also the data position). Written to a temp folder and renamed,
so a kill during saving leaves the previous checkpoint intact; only the last K are kept."""

from __future__ import annotations

import json
import shutil
import tempfile
from pathlib import Path

import torch

from definemed.runs import atomic_write_json


def checkpoint_dirs(root: Path) -> list[Path]:
    return sorted(p for p in Path(root).glob("step_*") if (p / "state.json").exists())


def save_checkpoint(root: Path, step: int, model, optimizer, keep_last: int, extra: dict) -> Path:
    from safetensors.torch import save_model

    root.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(dir=root, prefix=".tmp-step-"))
    save_model(model, str(tmp / "model.safetensors"))  # handles tied weights
    # training draws no random numbers besides torch's (data order is precomputed from the seed)
    torch.save({"optimizer": optimizer.state_dict(), "torch_rng": torch.get_rng_state()}, tmp / "optimizer.pt")
    atomic_write_json(tmp / "state.json", {"step": step, **extra})
    final = root / f"step_{step:07d}"
    if final.exists():
        shutil.rmtree(final)
    tmp.rename(final)
    for old in checkpoint_dirs(root)[:-keep_last]:
        shutil.rmtree(old, ignore_errors=True)
    return final


def load_checkpoint(path: Path, model, optimizer) -> dict:
    from safetensors.torch import load_model

    load_model(model, str(path / "model.safetensors"))
    # weights_only: our own checkpoint, but never unpickle arbitrary objects
    state = torch.load(path / "optimizer.pt", weights_only=True)
    optimizer.load_state_dict(state["optimizer"])
    torch.set_rng_state(state["torch_rng"])
    return json.loads((path / "state.json").read_text())
