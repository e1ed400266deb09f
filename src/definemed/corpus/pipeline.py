"""`definemed corpus run`: the FineMed-de pipeline, phase by phase, resumable.

    1 prefilter   read → held-out exclusion → input guard → language/length/function words/boilerplate
                  → opt-outs                                                → work/prefiltered
    2 annotate    LLM scores for a deterministic sample (cached)            → annotations/
    3 classifier  train on annotator or gold labels, held-out P/R/F1        → classifier/
    4 classify    score every document, keep those above the threshold,    → work/classified
                  and compute MinHash signatures in the same pass
    5 dedup       buckets → clusters → filter, token counts                → shards/*.parquet
    6 stats       docs/words/tokens per point, drops by reason, histograms → stats.json

Phases 1, 4 and 5 are datatrove pipelines (local, Slurm or Ray); completed tasks are skipped on
a rerun, the annotation cache and the classifier fingerprint make phases 2 and 3 resumable.
"""

from __future__ import annotations

import logging
from pathlib import Path

from datatrove.pipeline.readers import JsonlReader

from definemed.console import console
from definemed.corpus import bad_files
from definemed.corpus.compliance import collect_compliance_stats, compliance_steps
from definemed.corpus.config import CorpusConfig
from definemed.corpus.dedup import METHOD as DEDUP_METHOD
from definemed.corpus.dedup import FastMinhashSignature, minhash_config
from definemed.corpus.executors import Phase, run_phase, run_phases
from definemed.corpus.heldout import FOLDER as HELDOUT_FOLDER
from definemed.corpus.heldout import HeldOutFilter, heldout_reasons
from definemed.corpus.prefilters import make_prefilters
from definemed.corpus.readers import make_reader, preflight
from definemed.corpus.scoring import ClassifierScorer, ScoreThresholdFilter
from definemed.corpus.stats import collect_stats
from definemed.corpus.tally import Tally, TokenCounter
from definemed.corpus.task_stats import timings
from definemed.corpus.writers import exclusion_writer, intermediate_writer, shard_writer
from definemed.errors import UserError
from definemed.runs import RunDir, atomic_write_json

log = logging.getLogger("definemed.corpus")


def _tokenizer_file(ref: str | None) -> str | None:
    if ref is None:
        return None
    from definemed.models import resolve_model

    path = Path(resolve_model(ref, weights=False)) / "tokenizer.json"
    if not path.exists():
        raise UserError(f"tokenizer '{ref}' has no local tokenizer.json (token counts need a local tokenizer)")
    return str(path)


def _intermediate_reader(folder: Path) -> JsonlReader:
    return JsonlReader(str(folder), glob_pattern="*.jsonl", compression=None)


class SameRankJsonlReader(JsonlReader):
    """Reads only the intermediate file that the same rank wrote in the previous phase (even when
    some ranks wrote none, which would shift datatrove's file-to-rank assignment)."""

    def __init__(self, folder: str):
        super().__init__(folder, compression=None)

    def run(self, data=None, rank: int = 0, world_size: int = 1):
        self.glob_pattern = f"{rank:05d}.jsonl"
        yield from super().run(data, rank=0, world_size=1)


def run_corpus(cfg: CorpusConfig, backend=None) -> dict:
    """The whole stage under the run directory's lock; a failure is recorded in its manifest."""
    with RunDir(Path(cfg.output_dir), "corpus") as run:
        return _run_corpus(cfg, run, backend)


def _run_corpus(cfg: CorpusConfig, run: RunDir, backend) -> dict:
    out = run.path
    if (done := run.reuse(cfg)) is not None:
        return done
    files, bad_at_start = preflight(cfg.input.paths, cfg.input.format, cfg.input.on_bad_file)
    run.start(cfg, seed=cfg.seed, inputs={f"input/{i}": f for i, f in enumerate(files)})
    logs, work = out / "logs", out / "work"
    counter = TokenCounter(_tokenizer_file(cfg.tokenizer))
    every = counter if cfg.token_counts == "all" else None
    ex = cfg.executor

    console.print("[bold]corpus 1/5[/] prefilter")
    excluded = lambda name: exclusion_writer(str(work / "excluded" / name))  # noqa: E731
    rights, final_checks = compliance_steps(cfg.compliance, excluded)  # opt-outs; decontamination + PII
    bad_dir = work / "bad_files"
    try:
        run_phase([*make_reader(cfg.input.paths, cfg.input.format, cfg.input.limit, cfg.input.glob,
                                bad_files_dir=str(bad_dir), on_bad_file=cfg.input.on_bad_file,
                                skip_files=tuple(b["file"] for b in bad_at_start)),
                   Tally("input", every), *_heldout_steps(cfg, excluded), *make_prefilters(cfg.prefilter, excluded),
                   *rights, Tally("prefiltered"), intermediate_writer(str(work / "prefiltered"))],
                  ex, logs / "prefilter", "prefilter")
    finally:  # a bad file is the user's to fix: one line naming it, even if the phase failed because of it
        if cfg.input.on_bad_file == "fail":
            bad_files.fail_on(bad_files.collect(bad_dir), logs / "prefilter")
    bad_input = bad_files.summary(bad_at_start + bad_files.collect(bad_dir), cfg.input.on_bad_file)
    if bad_input["count"]:
        console.print(f"[yellow]skipped {bad_input['count']} unreadable input file(s) (input.on_bad_file: skip), "
                      f"e.g. {bad_input['files'][0]['file']}: {bad_input['files'][0]['reason']}[/]",
                      highlight=False, soft_wrap=True)

    console.print("[bold]corpus 2/5[/] LLM annotation of a sample")
    from definemed.corpus.annotate_phase import annotate_phase

    annotations, annotation_metrics = annotate_phase(cfg, out, backend=backend)

    console.print("[bold]corpus 3/5[/] classifier training and held-out evaluation")
    from definemed.corpus.train_classifier import train_phase

    classifier_metrics = train_phase(cfg, out, annotations)

    _classify_dedup_write(cfg, out, excluded, [*final_checks, Tally("output", counter),
                                                shard_writer(str(out / "shards"))])

    # every count from the per-task files of all tasks, whichever invocation ran them (resume-safe)
    stats = collect_stats(logs)
    stats["compliance"] = collect_compliance_stats(logs)
    stats.update(timings(logs))
    if cfg.dedup.enabled:
        stats["dedup"] = {"method": DEDUP_METHOD}
    stats["input_bad_files"] = bad_input
    stats["annotation"] = annotation_metrics
    stats["classifier"] = {k: v for k, v in classifier_metrics.items() if k != "threshold_curve_vs_gold"}
    atomic_write_json(out / "stats.json", stats)
    metrics = {"points": stats["points"], "input_bad_files": bad_input, "annotation": annotation_metrics,
               "classifier": stats["classifier"], "compliance": stats["compliance"]}
    run.finish(metrics, outputs={"shards": out / "shards", "classifier": out / "classifier",
                                 "stats": out / "stats.json"})
    from definemed.corpus.card import write_dataset_card

    write_dataset_card(out)  # README.md: the Hugging Face dataset card (`definemed corpus card` rewrites it)
    return metrics


def _heldout_steps(cfg: CorpusConfig, excluded) -> list:
    """The held-out exclusion, first after the reader (and the `input` tally that counts what was read)."""
    i = cfg.input
    if i.exclude_ids is None and not i.exclude_split:
        return []
    reasons = heldout_reasons(i.exclude_ids, i.exclude_split, i.split_labels)
    return [HeldOutFilter(reasons, exclusion_writer=excluded(HELDOUT_FOLDER))]


def _classify_dedup_write(cfg: CorpusConfig, out: Path, excluded, output: list) -> None:
    """Score → threshold → (signatures in the same pass) → buckets → clusters → filter → output
    (decontamination, PII scrubbing, token counts, shards: only for the documents that remain).

    The MinHash signatures are computed while the classified documents are written, so the
    documents are read once less; the filter phase then reads each rank's own file (signature
    indices count documents per rank).
    """
    from datatrove.pipeline.dedup.minhash import MinhashDedupBuckets, MinhashDedupCluster, MinhashDedupFilter

    logs, work, ex = out / "logs", out / "work", cfg.executor
    classify = [_intermediate_reader(work / "prefiltered"), ClassifierScorer(str(out / "classifier")),
                ScoreThresholdFilter(cfg.filter.threshold, exclusion_writer=excluded("below_threshold")),
                Tally("classified")]
    console.print("[bold]corpus 4/5[/] classify, filter" + (" and MinHash signatures" if cfg.dedup.enabled else ""))
    if not cfg.dedup.enabled:
        run_phase([*classify, *output], ex, logs / "classify", "classify")
        return
    mh = minhash_config(cfg.dedup, cfg.seed)
    mh_dir, classified = work / "minhash", work / "classified"
    console.print("[bold]corpus 5/5[/] near-duplicate removal and sharded output")
    # datatrove jobs only, no Python in between: on Slurm submitted at once, chained by dependencies
    run_phases([
        Phase([*classify, intermediate_writer(str(classified)), FastMinhashSignature(str(mh_dir / "signatures"), mh)],
              logs / "classify", "classify"),
        Phase([MinhashDedupBuckets(str(mh_dir / "signatures"), str(mh_dir / "buckets"), config=mh)],
              logs / "minhash_buckets", "minhash_buckets", tasks=mh.num_buckets),
        Phase([MinhashDedupCluster(str(mh_dir / "buckets"), str(mh_dir / "remove_ids"), config=mh)],
              logs / "minhash_cluster", "minhash_cluster", tasks=1, workers=1),
        Phase([SameRankJsonlReader(str(classified)),
               MinhashDedupFilter(str(mh_dir / "remove_ids"), exclusion_writer=excluded("near_duplicates")),
               *output], logs / "minhash_filter", "minhash_filter")], ex)
