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
        for a in injected:
            assert a["injection_signs"] >= 1  # the planted pages are flagged, and reach the model whole
            if a["status"] == "ok":
                assert 0 <= a["medical"] <= 5 and 0 <= a["edu"] <= 5
            else:  # a failure names its reason and carries no score
                assert a["reason"] == "unparseable_output" and "medical" not in a and mode == "generate"
        if mode == "loglik":  # a local model always has every digit's log-prob: no failure is acceptable
            assert [r["status"] for r in injected] == ["ok", "ok"]
            assert all(abs(sum(r["medical_probs"]) - 1) < 1e-3 for r in injected)
            assert len({r["medical"] for r in injected}) > 1  # not a constant (2.5 = uniform)


# -- fail closed -----------------------------------------------------------------------------------
@pytest.mark.parametrize("mode,reason", [("loglik", "no_logprobs"), ("loglik", "option_not_in_top_logprobs"),
                                         ("generate", "http_error"), ("generate", "empty_output")])
def test_no_answer_from_the_model_is_a_failed_document_with_its_reason(tmp_path, mode, reason):
    """Never a default score (the old loglik path said 2.5 = expectation of a uniform distribution)."""
    ann = Annotator(AnnotatorConfig(mode=mode), tmp_path / "c.sqlite", backend=GullibleBackend(fail=reason))
    res = ann.annotate(["Die Ärztin verordnet eine Therapie.", "Das Wetter ist schön."])
    assert [(r["status"], r["reason"]) for r in res] == [("failed", reason)] * 2
    assert not any("medical" in r or "edu" in r for r in res)
    assert ann.stats["failed"] == 2 and ann.stats[f"failed:{reason}"] == 2 and ann.stats["retried"] == 0


def test_unparseable_output_names_its_reason(tmp_path):
    ann = Annotator(AnnotatorConfig(mode="generate"), tmp_path / "c.sqlite",
                    backend=GullibleBackend(always_malformed=True))
    assert ann.annotate(["Ein Text."])[0]["reason"] == "unparseable_output"


def test_failures_are_asked_again_on_the_next_run(tmp_path):
    texts = ["Die Ärztin verordnet eine Therapie mit Dosis und Diagnose.", "Das Wetter ist schön."]
    Annotator(AnnotatorConfig(), tmp_path / "c.sqlite", backend=GullibleBackend(fail="http_error")).annotate(texts)
    healthy = GullibleBackend()
    res = Annotator(AnnotatorConfig(), tmp_path / "c.sqlite", backend=healthy).annotate(texts)
    assert healthy.calls > 0 and [r["status"] for r in res] == ["ok", "ok"] and res[0]["medical"] > res[1]["medical"]


def test_cache_key_is_the_full_identity(tmp_path):
    """Same backend identity and settings: zero model calls; another server/model, or another
    token budget in generate mode: asked again."""
    texts = ["Die Ärztin verordnet eine Therapie.", "Das Wetter ist schön."]

    def calls(identity, **cfg):
        fake = GullibleBackend(identity=identity)
        Annotator(AnnotatorConfig(**cfg), tmp_path / "c.sqlite", backend=fake).annotate(texts)
        return fake.calls

    assert calls("openai|http://a/v1|m", mode="generate", max_new_tokens=64) == 1
    assert calls("openai|http://a/v1|m", mode="generate", max_new_tokens=64) == 0
    assert calls("openai|http://b/v1|m", mode="generate", max_new_tokens=64) == 1
    assert calls("openai|http://a/v1|m", mode="generate", max_new_tokens=32) == 1


def test_retrained_local_model_in_the_same_folder_is_asked_again(tmp_path, monkeypatch, bundled_model_path):
    """The local fingerprint hashes the weights: new weights in the same folder miss the cache;
    unchanged weights hit it (zero model calls)."""
    import shutil

    from definemed.llm.base import BackendConfig
    from definemed.llm.fingerprint import backend_fingerprint

    monkeypatch.setenv("DEFINEMED_CACHE", str(tmp_path / "cache"))
    folder = tmp_path / "model"
    folder.mkdir()
    shutil.copy2(bundled_model_path / "config.json", folder / "config.json")
    (folder / "model.safetensors").write_bytes(b"weights v1")
    cfg = BackendConfig(kind="local", model=str(folder))

    class FolderBackend(GullibleBackend):
        def fingerprint(self):
            return backend_fingerprint(cfg)

    texts = ["Die Ärztin verordnet eine Therapie."]

    def calls():
        fake = FolderBackend()
        Annotator(AnnotatorConfig(), tmp_path / "c.sqlite", backend=fake).annotate(texts)
        return fake.calls

    assert calls() == 2 and calls() == 0  # two criteria, one call each; then cached
    (folder / "model.safetensors").write_bytes(b"weights v2")  # retrained: same folder, same size
    assert calls() == 2
