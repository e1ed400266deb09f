"""Annotator: parsing, injection pages fenced whole and flagged, retries, failure counting, cache;
real local model (slow)."""

import json

import pytest

from definemed.corpus.annotator import Annotator, AnnotatorConfig
from definemed.corpus.prompts import generation_chat
from definemed.llm.injection import clean_data, neutralise, read_blocks
from definemed.corpus.parse import parse_scores
from definemed.data import sample

from .fakes import GullibleBackend


@pytest.mark.parametrize("text,expected", [
    ('{"medical": 4, "edu": 3, "reason": "gut"}', (4, 3)),
    ('```json\n{"medical": "5", "edu": 2}\n```', (5, 2)),
    ('Antwort: {"Medizin": 2, "Bildungswert": 1}', (2, 1)),
    ("Medizinische Relevanz: 4/5\nBildungswert: 3", (4, 3)),
    ("medical relevance = 1, educational quality 2.0", (1, 2)),
    ('{"medical": 9, "edu": 3}', None),  # out of range
    ("Das Dokument ist sehr gut.", None),
    ("", None),
])
def test_parse_scores(text, expected):
    res = parse_scores(text)
    assert (None if res is None else (res["medical"], res["edu"])) == expected


def _injection_docs():
    rows = [json.loads(line) for line in (sample.sample_dir() / "src" / "docs_injection.jsonl").open()]
    assert len(rows) >= 5
    return rows


def test_planted_injection_pages_reach_the_model_whole_fenced_and_flagged(tmp_path):
    """Nothing is cut out of a page (the annotator must see it as written); its orders stay inside
    the data fence; every planted page is flagged and no other sample page is."""
    backend = GullibleBackend()
    ann = Annotator(AnnotatorConfig(mode="generate"), tmp_path / "c.sqlite", backend=backend)
    docs = _injection_docs()
    for d in docs:
        text, signs = ann.prepare(d["text"])
        assert text == clean_data(d["text"])[0][: ann.cfg.prompt.max_chars] and signs >= 1, d["key"]
        block = read_blocks(generation_chat(ann.cfg.prompt, text)[1]["content"])["dokument"]
        assert block == text
    res = ann.annotate([d["text"] for d in docs])
    assert all(r["injection_signs"] >= 1 for r in res) and ann.stats["injection_flagged"] == len(docs)
    planted = {lab.id for lab in sample.load_labels() if lab.key.startswith("inj-")}
    assert all(neutralise(d["text"])[1] == 0 for d in sample.load_docs() if d["id"] not in planted)


def test_malformed_output_is_retried_once_then_counted(tmp_path):
    ok = Annotator(AnnotatorConfig(mode="generate"), tmp_path / "a.sqlite", backend=GullibleBackend(malformed_first=True))
    res = ok.annotate(["Die Patientin erhält eine Therapie mit 5 mg Ramipril gegen Bluthochdruck."])
    assert res[0]["status"] == "ok" and ok.stats["retried"] == 1
    bad = Annotator(AnnotatorConfig(mode="generate"), tmp_path / "b.sqlite", backend=GullibleBackend(always_malformed=True))
    res = bad.annotate(["Ein Text.", "Noch ein Text."])
    assert [r["status"] for r in res] == ["failed", "failed"] and bad.stats["failed"] == 2


def test_cache_makes_rerun_free(tmp_path):
    texts = ["Die Ärztin verordnet eine Therapie.", "Das Wetter ist schön."]
    first = GullibleBackend()
    a = Annotator(AnnotatorConfig(), tmp_path / "c.sqlite", backend=first).annotate(texts)
    second = GullibleBackend()
    b = Annotator(AnnotatorConfig(), tmp_path / "c.sqlite", backend=second).annotate(texts)
    assert a == b and second.calls == 0
    cfg = AnnotatorConfig()
    cfg.prompt.version = "changed"
    third = GullibleBackend()
    Annotator(cfg, tmp_path / "c.sqlite", backend=third).annotate(texts)
    assert third.calls > 0  # a new prompt version is not served from the old cache


@pytest.mark.slow
def test_real_local_model_both_modes_on_injection_pages(tmp_path, bundled):
    """The real model annotates planted pages in both modes (how often injections flip its scores
    is measured by `definemed eval injection`, not asserted here)."""
    from definemed.llm.local import LocalBackend

    model, tok = bundled
    backend = LocalBackend(AnnotatorConfig().backend, model=model, tokenizer=tok)
    docs = _injection_docs()[:2]
    for mode in ("loglik", "generate"):
        cfg = AnnotatorConfig(mode=mode, max_new_tokens=24)
        cfg.prompt.max_chars = 600
        ann = Annotator(cfg, tmp_path / f"{mode}.sqlite", backend=backend)
        injected = ann.annotate([d["text"] for d in docs])
        assert all(a["status"] in ("ok", "failed") and a["injection_signs"] >= 1 for a in injected)
        if mode == "loglik":
            assert all(0 <= r["medical"] <= 5 and abs(sum(r["medical_probs"]) - 1) < 1e-3 for r in injected)
