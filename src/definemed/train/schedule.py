"""Learning-rate schedules: linear warmup, then cosine or WSD (warmup-stable-decay) to min_lr."""

from __future__ import annotations

import math

from definemed.train.config import TrainConfig


def lr_at(step: int, cfg: TrainConfig) -> float:
    """Learning rate for optimizer step ``step`` (0-based)."""
    if cfg.schedule == "constant":
        return cfg.lr * min(1.0, (step + 1) / max(cfg.warmup_steps, 1)) if cfg.warmup_steps else cfg.lr
    if step < cfg.warmup_steps:
        return cfg.lr * (step + 1) / cfg.warmup_steps
    min_lr = cfg.lr * cfg.min_lr_ratio
    if cfg.schedule == "wsd":
        decay_start = int(cfg.max_steps * (1 - cfg.wsd_decay_fraction))
        if step < decay_start:
            return cfg.lr
        frac = (step - decay_start) / max(cfg.max_steps - decay_start, 1)
        return cfg.lr - (cfg.lr - min_lr) * frac
    frac = (step - cfg.warmup_steps) / max(cfg.max_steps - cfg.warmup_steps, 1)
    return min_lr + 0.5 * (cfg.lr - min_lr) * (1 + math.cos(math.pi * min(frac, 1.0)))
