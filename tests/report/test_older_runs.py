"""Run directories written before a stage published a field still render: the column shows "–"
and no sentence claims a number that is not there. (Hand-built on purpose: they stand for older
files the current stage code no longer writes; tests/report/conftest.py has the real ones.)"""

from pathlib import Path

from definemed.report.build import render_report
from definemed.report.load import Run

from .tables import table_with


def test_older_train_merge_and_corpus_files_render_without_the_newer_fields():
    train = Run(path=Path("/runs/train/old"), stage="train", manifest={"status": "finished"},
                metrics={"steps": 3, "tokens": 384, "final_loss": 9.5,
                         "heldout_ppl_start": {"medical": 80.0}, "heldout_ppl_end": {"medical": 40.0}})
    merge = Run(path=Path("/runs/merge/old"), stage="merge", manifest={}, files={"sweep.json": {
        "method": "slerp", "dtype": "float32", "parents": [],
        "points": [{"label": "t0.5", "t": 0.5, "checks": {"ok": True}, "eval": {"medical_ppl": 50.0}}]}})
    corpus = Run(path=Path("/runs/corpus/old"), stage="corpus", manifest={}, files={"stats.json": {
        "points": {"input": {"documents": 10, "tokens": 900}}}})
    page = render_report([train, merge, corpus])
    t = table_with(page, "final loss")
    row = dict(zip(t[0], t[1]))
    assert row["held-out documents"] == "–" and row["excluded (in the training data)"] == "–"
    m = table_with(page, "medical perplexity ↓")
    assert dict(zip(m[0], m[1]))["ppl docs"] == "–"
    assert "excluded from the perplexity" not in page
    c = table_with(page, "point")
    assert dict(zip(c[0], c[1])) == {"point": "input", "documents": "10", "words": "–", "tokens": "900"}
