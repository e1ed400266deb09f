"""Labels for the classifier: the annotation sample, gold labels, and agreement between them."""

from __future__ import annotations

import hashlib
import heapq
import json
from pathlib import Path
from typing import Iterator

import numpy as np

from definemed.data.io import read_jsonl


def iter_intermediate(folder: Path) -> Iterator[dict]:
    """Documents written by the intermediate jsonl writer: {"text", "id", "metadata"}."""
    for f in sorted(Path(folder).glob("*.jsonl")):
        with open(f, encoding="utf-8") as fh:
            for line in fh:
                if line.strip():
                    yield json.loads(line)


def sample_documents(folder: Path, n: int, seed: int) -> list[dict]:
    """A deterministic pseudo-random sample of n documents (the n smallest seeded id hashes):
    independent of task count and file order, and streamable at any corpus size."""
    def h(doc_id: str) -> int:
        return int(hashlib.sha256(f"{seed}|{doc_id}".encode()).hexdigest()[:16], 16)

    chosen = heapq.nsmallest(n, ((h(d["id"]), d["id"], d["text"]) for d in iter_intermediate(folder)))
    return [{"id": i, "text": t} for _, i, t in sorted(chosen, key=lambda x: x[1])]


def load_gold(path: Path) -> dict[str, dict]:
    return {row["id"]: row for row in read_jsonl(path)}


def agreement(pred: list[float], gold: list[int], threshold: float = 3.0) -> dict:
    """How well annotator scores match gold labels: rank correlation, accuracy at the medical
    threshold, and ROC-AUC of the score for gold >= threshold (threshold-free)."""
    from scipy.stats import pearsonr, spearmanr
    from sklearn.metrics import roc_auc_score

    p, g = np.asarray(pred, dtype=float), np.asarray(gold, dtype=float)
    out = {"n": int(len(p))}
    if len(p) < 3 or np.std(p) == 0 or np.std(g) == 0:
        return {**out, "spearman": None, "pearson": None, "accuracy_at_threshold": None, "roc_auc": None}
    y = g >= threshold
    out.update(
        spearman=round(float(spearmanr(p, g).statistic), 4),
        pearson=round(float(pearsonr(p, g).statistic), 4),
        accuracy_at_threshold=round(float(((p >= threshold) == y).mean()), 4),
        roc_auc=round(float(roc_auc_score(y, p)), 4) if 0 < y.sum() < len(y) else None,
        mean_abs_error=round(float(np.abs(p - g).mean()), 4),
    )
    return out
