"""Phase 3: train the document classifier on annotator or gold labels and measure it on the
held-out test split (precision/recall/F1 at the filter threshold, plus the threshold curve).

Training reads the prefiltered documents; the test split also includes documents excluded as
held-out (`input.exclude_split` / `exclude_ids`) that the prefilters would have kept, so
excluding the test split from the corpus leaves the classifier's test metrics unchanged.
Annotations that failed (no score from the model) are never labels; their number is reported as
``annotations_failed_excluded``."""

from __future__ import annotations

import hashlib
import json
import logging
from pathlib import Path

from definemed.corpus.classifier import DocClassifier, binary_metrics, threshold_curve
from definemed.corpus.config import CorpusConfig
from definemed.corpus.labels import iter_intermediate, load_gold
from definemed.errors import UserError
from definemed.runs import atomic_write_json, read_json

log = logging.getLogger("definemed.corpus")


def _hash_split(doc_id: str, seed: int) -> str:
    return "test" if int(hashlib.sha256(f"split|{seed}|{doc_id}".encode()).hexdigest()[:8], 16) % 5 == 0 else "train"


def _heldout_passing_prefilters(cfg: CorpusConfig, out: Path):
    """Held-out documents that the prefilters and opt-outs would have kept: the same population
    that the classifier was evaluated on before they were excluded right after the reader."""
    from definemed.corpus.compliance import compliance_steps
    from definemed.corpus.heldout import heldout_documents
    from definemed.corpus.prefilters import make_prefilters

    filters = [*make_prefilters(cfg.prefilter), *compliance_steps(cfg.compliance)[0]]
    for doc in heldout_documents(out / "work" / "excluded"):
        if all(f.filter(doc) is True for f in filters):
            yield doc


def train_phase(cfg: CorpusConfig, out: Path, annotations: dict[str, dict]) -> dict:
    c = cfg.classifier
    gold = load_gold(c.gold_labels) if c.gold_labels else {}
    needed = set(gold) | set(annotations)
    texts = {d["id"]: d["text"] for d in iter_intermediate(out / "work" / "prefiltered") if d["id"] in needed}
    # held-out documents (input.exclude_*) never train; they are evaluated if the prefilters keep them
    heldout = {d.id: d.text for d in _heldout_passing_prefilters(cfg, out) if d.id in needed}

    def split_of(doc_id: str) -> str:
        g = gold.get(doc_id)
        return g.get("split", _hash_split(doc_id, cfg.seed)) if g else _hash_split(doc_id, cfg.seed)

    if c.labels_from == "gold":
        labelled = {i: float(g[c.target]) for i, g in gold.items() if i in texts}
    else:
        labelled = {i: float(a[c.target]) for i, a in annotations.items()
                    if a.get("status") == "ok" and i in texts}
    excluded = 0 if c.labels_from == "gold" else sum(a.get("status") != "ok" for i, a in annotations.items()
                                                       if i in texts)
    train_ids = sorted(i for i in labelled if split_of(i) != "test")
    test_ids = sorted(i for i in {**texts, **heldout} if split_of(i) == "test" and (i in gold or i in labelled))
    texts = {**heldout, **texts}  # texts of the test documents; train_ids come from the prefiltered ones only
    if not train_ids:
        raise UserError(f"no training documents with {c.labels_from} labels survived the prefilters")
    y_train = [int(labelled[i] >= c.positive_min_score) for i in train_ids]

    fingerprint = hashlib.sha256(json.dumps(
        [c.model_dump(mode="json"), train_ids, y_train], sort_keys=True).encode()).hexdigest()
    folder = out / "classifier"
    if (folder / "metrics.json").exists() and read_json(folder / "metrics.json").get("fingerprint") == fingerprint:
        log.info("classifier up to date, not retrained")
        return read_json(folder / "metrics.json")

    clf = DocClassifier.train([texts[i] for i in train_ids], y_train, kind=c.kind, max_chars=c.max_chars,
                              n_features=c.n_features, C=c.C, seed=c.seed)
    metrics: dict = {"fingerprint": fingerprint, "labels_from": c.labels_from, "kind": c.kind,
                     "annotations_failed_excluded": excluded,
                     "train_documents": len(train_ids), "train_positives": int(sum(y_train)),
                     "threshold": cfg.filter.threshold}
    scores = clf.predict_proba([texts[i] for i in test_ids])
    score_of = dict(zip(test_ids, scores))
    gold_test = [i for i in test_ids if i in gold]
    if gold_test:  # the measure that matters: held-out documents against gold labels
        y = [int(gold[i][c.target] >= 3) for i in gold_test]
        s = [score_of[i] for i in gold_test]
        metrics["test_vs_gold"] = binary_metrics(y, s, cfg.filter.threshold)
        metrics["threshold_curve_vs_gold"] = threshold_curve(y, s)
    ann_test = [i for i in test_ids if i in labelled and c.labels_from == "annotator"]
    if ann_test:
        y = [int(labelled[i] >= c.positive_min_score) for i in ann_test]
        metrics["test_vs_annotator"] = binary_metrics(y, [score_of[i] for i in ann_test], cfg.filter.threshold)
    clf.meta = {"target": c.target, "labels_from": c.labels_from, "positive_min_score": c.positive_min_score,
                "fingerprint": fingerprint}
    clf.save(folder)
    atomic_write_json(folder / "metrics.json", metrics)
    return metrics
