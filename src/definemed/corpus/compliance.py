"""Compliance blocks of the corpus stage: rights reservations, decontamination, PII scrubbing.

How to wire them (three lines in the corpus pipeline, one field in its config):

    # corpus/config.py
    class CorpusConfig(StrictModel):
        ...
        compliance: ComplianceConfig = Field(default_factory=ComplianceConfig)

    # corpus/pipeline.py
    early, late = compliance_steps(cfg.compliance, excluded)   # excluded(name) -> exclusion writer
    phase 1: [*reader, Tally("input"), *make_prefilters(...), *early, Tally("prefiltered"), writer]
    last phase: [reader, MinhashDedupFilter(...), *late, Tally("output"), shard_writer(...)]
    stats["compliance"] = collect_compliance_stats(logs)       # after collect_stats(logs)

    # the card, after run.finish(...):  definemed.corpus.card.write_dataset_card(out)

Why there: the opt-out filter needs nothing but the URL, so it runs first and no later phase
(annotation included) ever sees a reserved page; decontamination and PII scrubbing run on the
final, deduplicated set, so they cost nothing for documents that are dropped anyway.
Decontamination runs before scrubbing so that it compares the text as published.

Counts land in datatrove's per-task stats: `dropped_optout_domain`, `dropped_optout_path`,
`dropped_contaminated` (the filters' drop reasons, which `collect_stats` already reports),
`contaminated_<benchmark>` and `pii_<TYPE>`, `pii_documents`; `collect_compliance_stats` sums
them over all phases for `stats.json` and the dataset card.

YAML (all optional; defaults shown):

    compliance:
      optout:   {enabled: true, lists: [data/sample/optout_de.txt]}      # no lists: no step
      decontam: {enabled: true, n: 13, min_words: 8, mode: drop,         # drop | flag
                 benchmarks: [data/sample/mcq_de/mcq_de.jsonl, data/sample/instructions_de/instructions_de.jsonl]}
      pii:      {enabled: true, types: [EMAIL, PHONE, IBAN, IP, KVNR, ADDRESS, BIRTHDATE], keep_numbers: []}
"""

from __future__ import annotations

from pathlib import Path
from typing import Callable

from pydantic import Field

from definemed.config import StrictModel
from definemed.corpus.decontam import DecontamConfig, DecontaminationFilter
from definemed.corpus.optout import OptOutConfig, OptOutFilter
from definemed.corpus.pii import PIIConfig, PIIScrubber
from definemed.corpus.task_stats import phase_stats

__all__ = ["ComplianceConfig", "DecontamConfig", "OptOutConfig", "PIIConfig", "collect_compliance_stats",
           "compliance_steps"]


class ComplianceConfig(StrictModel):
    optout: OptOutConfig = Field(default_factory=OptOutConfig)
    decontam: DecontamConfig = Field(default_factory=DecontamConfig)
    pii: PIIConfig = Field(default_factory=PIIConfig)


def compliance_steps(cfg: ComplianceConfig, excluded: Callable[[str], object] | None = None) -> tuple[list, list]:
    """(steps right after the prefilters, steps right before the output writer).

    `excluded(name)` returns an exclusion writer for dropped documents (or None); the names used
    are "optout" and "contaminated", i.e. `work/excluded/optout/`, `work/excluded/contaminated/`.
    """
    ew = excluded or (lambda name: None)
    early, late = [], []
    if cfg.optout.enabled and cfg.optout.lists:
        early.append(OptOutFilter(cfg.optout.lists, exclusion_writer=ew("optout")))
    if cfg.decontam.enabled and cfg.decontam.benchmarks:
        late.append(DecontaminationFilter(cfg.decontam,
                                          exclusion_writer=ew("contaminated") if cfg.decontam.mode == "drop" else None))
    if cfg.pii.enabled and cfg.pii.types:
        late.append(PIIScrubber(cfg.pii))
    return early, late


def _value(v) -> int:
    return int(v.get("total", 0)) if isinstance(v, dict) else int(v)


def collect_compliance_stats(logs: Path) -> dict:
    """Compliance counters summed over every phase's per-task stats under `logs/` (all tasks, also
    those of earlier invocations of a resumed run):
    {"optout": {reason: n}, "decontamination": {"dropped": n, "by_benchmark": {name: documents}},
     "pii": {"documents": n, "by_type": {TYPE: n}}}; sections with no counter are left out."""
    optout: dict[str, int] = {}
    by_bench: dict[str, int] = {}
    pii: dict[str, int] = {}
    pii_docs = contaminated_dropped = 0
    for phase in sorted(p for p in Path(logs).glob("*") if p.is_dir()):
        for step in phase_stats(phase):
            st = step.get("stats", {})
            for k, v in st.items():
                if k.startswith("dropped_optout_"):
                    optout[k[len("dropped_"):]] = optout.get(k[len("dropped_"):], 0) + _value(v)
                elif k == "dropped_contaminated":
                    contaminated_dropped += _value(v)
                elif k.startswith("contaminated_"):
                    name = k[len("contaminated_"):]
                    by_bench[name] = by_bench.get(name, 0) + _value(v)
                elif k == "pii_documents":
                    pii_docs += _value(v)
                elif k.startswith("pii_"):
                    pii[k[4:]] = pii.get(k[4:], 0) + _value(v)
    out: dict = {}
    if optout:
        out["optout"] = optout
    if by_bench or contaminated_dropped:
        out["decontamination"] = {"dropped": contaminated_dropped, "by_benchmark": by_bench}
    if pii or pii_docs:
        out["pii"] = {"documents": pii_docs, "by_type": pii}
    return out
