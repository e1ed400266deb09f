"""Phase 2: annotate a deterministic sample of the prefiltered documents with the LLM
(and, optionally, a smaller sample in other modes), and measure agreement with gold labels.
Failed annotations (no score from the model) are left out of the agreement and counted per reason."""

from __future__ import annotations

import logging
from collections import Counter
from pathlib import Path

from definemed.console import progress_bar
from definemed.corpus.annotator import Annotator
from definemed.corpus.config import CorpusConfig
from definemed.corpus.labels import agreement, load_gold, sample_documents
from definemed.data.io import write_jsonl
from definemed.llm import connect_backend

log = logging.getLogger("definemed.corpus")


def annotate_phase(cfg: CorpusConfig, out: Path, backend=None) -> tuple[dict[str, dict], dict]:
    a = cfg.annotate
    if not a.enabled:
        return {}, {}
    docs = sample_documents(out / "work" / "prefiltered", a.sample_size, cfg.seed)
    gold = load_gold(a.gold_labels) if a.gold_labels else {}
    metrics: dict = {"documents": len(docs), "mode": a.annotator.mode, "prompt_version": a.annotator.prompt.version}
    results: dict[str, dict] = {}
    backend = backend or connect_backend(a.annotator.backend)  # a server is checked before any document
    modes = [(a.annotator.mode, docs)] + [(m, docs[: a.compare_sample_size]) for m in a.compare_modes
                                         if m != a.annotator.mode]
    for mode, subset in modes:
        ann_cfg = a.annotator.model_copy(update={"mode": mode})
        annotator = Annotator(ann_cfg, out / "annotations" / "cache.sqlite", backend=backend)
        backend = annotator.backend  # reuse the loaded model for the next mode
        with progress_bar(f"annotate ({mode})", total=len(subset)) as advance:
            res = annotator.annotate([d["text"] for d in subset], progress=advance)
        rows = [{"id": d["id"], **r} for d, r in zip(subset, res)]
        write_jsonl(out / "annotations" / f"{mode}.jsonl", rows)
        m = {"stats": dict(annotator.stats), "failed": sum(r["status"] != "ok" for r in rows),
             "failed_reasons": dict(Counter(r["reason"] for r in rows if r["status"] != "ok"))}
        if gold:
            for crit in ann_cfg.prompt.criteria:
                pairs = [(r[crit], gold[r["id"]][crit]) for r in rows if r["status"] == "ok" and r["id"] in gold]
                m[f"agreement_{crit}"] = agreement([p for p, _ in pairs], [g for _, g in pairs])
                m[f"agreement_{crit}"]["failed"] = sum(r["status"] != "ok" for r in rows if r["id"] in gold)
        metrics[mode] = m
        if mode == a.annotator.mode:
            results = {r["id"]: r for r in rows}
        annotator.cache.close()
    return results, metrics
