"""Statistics of an interrupted and resumed corpus run equal those of an uninterrupted run.

A task of one phase fails (after other tasks of that phase completed), the run is started again
and resumes: datatrove skips the completed tasks, so anything counted in the second process only
(datatrove's merged `stats.json` of that invocation, in-process counters) would miss them.
"""

import json
import re
from pathlib import Path

import pytest
from datatrove.pipeline.dedup.minhash import MinhashDedupBuckets, MinhashDedupCluster, MinhashDedupFilter

from conftest import ROOT
from definemed.config import validate_config
from definemed.corpus.config import CorpusConfig
from definemed.corpus.scoring import ClassifierScorer
from definemed.corpus.tally import Tally

GOLD = str(ROOT / "data/sample/labels/fineweb2_deu_gold.jsonl")
FAIL_RANK = 2  # ranks 0 and 1 complete in the first invocation (workers=1 runs ranks in order)

# one step of each phase that fails for FAIL_RANK; the phase's other steps are left as they are
PHASE_STEP = {"prefilter": Tally, "classify": ClassifierScorer, "minhash_buckets": MinhashDedupBuckets,
              "minhash_cluster": MinhashDedupCluster, "minhash_filter": MinhashDedupFilter}


def _config(out: Path) -> CorpusConfig:
    return validate_config(CorpusConfig, {
        "output_dir": str(out), "seed": 0,
        "input": {"paths": [str(ROOT / "data/sample/fineweb2_deu")]},
        "executor": {"tasks": 4, "workers": 1},
        "annotate": {"enabled": False},
        "classifier": {"labels_from": "gold", "gold_labels": GOLD},
        "compliance": {"optout": {"lists": [str(ROOT / "data/sample/optout_de.txt")]}},
        "tokenizer": None,
    })


def comparable(out: Path) -> tuple[dict, str]:
    """stats.json and the dataset card without wall times and timestamps."""
    stats = json.loads((out / "stats.json").read_text())
    for key in ("phase_seconds", "task_seconds"):
        stats.pop(key)
    card = re.sub(r"Run finished [^(]*\(", "Run finished (", (out / "README.md").read_text())
    return stats, card


@pytest.fixture(scope="module")
def clean(tmp_path_factory):
    from definemed.corpus.pipeline import run_corpus

    out = tmp_path_factory.mktemp("clean") / "run"
    run_corpus(_config(out))
    return comparable(out)


def _fail_once(monkeypatch, phase: str) -> None:
    cls = PHASE_STEP[phase]
    original = cls.run
    rank_to_fail = 0 if phase == "minhash_cluster" else FAIL_RANK  # the cluster phase has a single task

    def run(self, data=None, rank: int = 0, world_size: int = 1):
        if rank == rank_to_fail and (cls is not Tally or self.name == "prefiltered"):
            raise RuntimeError(f"injected failure in {phase}, rank {rank}")
        return original(self, data, rank, world_size)

    monkeypatch.setattr(cls, "run", run)


@pytest.mark.parametrize("phase", [
    "prefilter",
    pytest.param("classify", marks=pytest.mark.slow),
    pytest.param("minhash_buckets", marks=pytest.mark.slow),
    pytest.param("minhash_cluster", marks=pytest.mark.slow),
    "minhash_filter",
])
def test_resumed_run_counts_every_task(clean, tmp_path, monkeypatch, phase):
    from definemed.corpus.pipeline import run_corpus

    out = tmp_path / "run"
    with monkeypatch.context() as m:
        _fail_once(m, phase)
        with pytest.raises(RuntimeError, match="injected failure"):
            run_corpus(_config(out))
    done = list((out / "logs" / phase / "completions").glob("*")) if phase != "minhash_cluster" else []
    assert len(done) == (0 if phase == "minhash_cluster" else FAIL_RANK)  # a partial phase to resume
    run_corpus(_config(out))
    stats, card = comparable(out)
    clean_stats, clean_card = clean
    assert stats["points"]["input"]["documents"] == clean_stats["points"]["input"]["documents"] == 364
    assert stats == clean_stats
    assert card == clean_card
