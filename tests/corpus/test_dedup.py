"""MinHash: our vectorised stage 1 gives datatrove's signatures bit for bit, its shingling is
datatrove's `simplify_text`, and planted near-duplicates are removed exactly."""

import json

import numpy as np
import pytest
from datatrove.pipeline.dedup.minhash import (MinhashConfig, MinhashDedupBuckets, MinhashDedupCluster,
                                              MinhashDedupFilter, MinhashDedupSignature)
from datatrove.pipeline.readers import JsonlReader
from datatrove.utils.hashing import HashConfig
from datatrove.utils.text import simplify_text

from definemed.corpus.config import ExecutorConfig
from definemed.corpus.dedup import FastMinhashSignature, WhitespaceWordTokenizer
from definemed.corpus.executors import run_phase
from definemed.corpus.writers import exclusion_writer, read_excluded
from definemed.data import sample

GERMAN = [
    "Die Ärztin verschrieb 1,5 mg/kg Körpergewicht – zweimal täglich (08:00 und 20:00 Uhr)!",
    "Größe: 1.80 m; Gewicht: 75,3 kg. Café-Besuch? Ja, im Straßencafé „Zur Mühle“ für 3,50 €.",
    "Naïve Crème brûlée à la façon de São Paulo: ÄÖÜ äöü ß ẞ — «Zitat» ‚einfach‘ …",
    "§ 630a BGB regelt den Behandlungsvertrag; ICD-10 I10.0, HbA1c 6,5 %, 37,8 °C Fieber.",
    "Kurz und gut",  # fewer words than n: no n-gram at all in datatrove, so no signature (never a duplicate)
    "   ",  # no words: no shingles, no signature
    "!!! ??? ...",
    "Co\u0301mbining marks: e\u0301 a\u0308 \u0301 und ein Wort\tmit\nZeilenumbruch  und   Leerzeichen.",
]


def _pair(cfg: MinhashConfig):
    ours = FastMinhashSignature("memory://ours", cfg)
    reference = MinhashDedupSignature("memory://ref", config=cfg, language=WhitespaceWordTokenizer())
    return ours, reference


@pytest.mark.parametrize("cfg", [
    MinhashConfig(seed=1),
    MinhashConfig(n_grams=3, num_buckets=4, hashes_per_bucket=5, seed=7, hash_config=HashConfig(precision=32)),
    MinhashConfig(n_grams=2, seed=3, hash_config=HashConfig(hash_fc="sha1")),
], ids=["default", "32bit", "sha1"])
def test_signatures_equal_datatrove(cfg):
    ours, reference = _pair(cfg)
    texts = GERMAN + [d["text"] for d in sample.load_docs()[:60]]
    for text in texts:
        a, b = ours.get_shingles(text), reference.get_shingles(text)
        assert a.dtype == b.dtype == np.uint64 and np.array_equal(a, b), text
        if a.size:
            assert ours.get_signature(a) == reference.get_signature(b), text
    for text in GERMAN:  # like datatrove: fewer words than n give no shingle at all
        assert (ours.get_shingles(text).size == 0) == (len(ours.words(text)) < cfg.n_grams)


def test_shingling_is_datatroves_simplify_text():
    ours, _ = _pair(MinhashConfig())
    for text in GERMAN + [d["text"] for d in sample.load_docs()]:
        assert ours.words(text) == simplify_text(text, ours.config.norm_config).split(), text
    # what datatrove's normalisation does to German: accents folded (ß stays), numbers incl. decimals → 0,
    # punctuation (also typographic quotes and dashes) → word boundary
    assert ours.words("Die Ärztin: 1,5 mg/kg – „Café“ Größe!") == \
        ["die", "arztin", "0", "mg", "kg", "cafe", "große"]


def test_spacy_tokenizer_gives_the_same_candidate_pairs_on_the_sample():
    """datatrove's default word tokenizer for German is spaCy's; ours splits on whitespace. On the
    sample the LSH candidate pairs are the same (measured: 39/364 documents have a different word
    list, e.g. `0mg` vs `0 mg`, `€`, `°c`; mean shingle-set Jaccard 0.990)."""
    pytest.importorskip("spacy")
    cfg = MinhashConfig()
    ours = FastMinhashSignature("memory://ours", cfg)
    spacy_sig = MinhashDedupSignature("memory://spacy", config=cfg, language="deu")

    def candidate_pairs(step) -> set:
        seen: dict = {}
        pairs = set()
        for i, doc in enumerate(sample.load_docs()):
            for bucket, sig in enumerate(step.get_signature(step.get_shingles(doc["text"]))):
                for j in seen.setdefault((bucket, tuple(sig)), []):
                    pairs.add((j, i))
                seen[(bucket, tuple(sig))].append(i)
        return pairs

    assert candidate_pairs(ours) == candidate_pairs(spacy_sig) and candidate_pairs(ours)


def _words(seed: int, n: int = 120) -> list[str]:
    vocab = ("Patient Therapie Dosis Arzt Klinik Blutdruck Diagnose Pflege Medikament Behandlung Symptom "
             "Infektion Krankenhaus Ärztin Übelkeit Schmerzen Fieber Husten Allergie Impfung Wirkung Nebenwirkung "
             "Tablette Salbe Verband Wunde Heilung Kontrolle Termin Labor Wert Niere Leber Herz Lunge Magen "
             "Darm Haut Auge Ohr").split()
    rng = np.random.default_rng(seed)
    return [vocab[i] for i in rng.integers(0, len(vocab), n)]


def test_planted_near_duplicates_are_removed_exactly(tmp_path):
    """Originals in rank 0, near-copies (a few words changed, punctuation and case altered) and
    unrelated documents in rank 1: exactly the copies go, whatever rank the original is in."""
    originals = {f"orig-{i}": _words(i) for i in range(4)}
    copies = {}
    for i, (oid, words) in enumerate(originals.items()):
        w = list(words)
        w[10 + i], w[60] = "anders", "neu"  # 2 of 120 words changed: Jaccard of 5-grams ~0.85
        copies[f"copy-of-{oid}"] = (" ".join(w).upper() + " !!!") if i % 2 else " ".join(w).replace(" ", ", ")
    unrelated = {f"other-{i}": " ".join(_words(100 + i)) for i in range(4)}
    (tmp_path / "in").mkdir()
    docs0 = [{"id": k, "text": " ".join(v)} for k, v in originals.items()]
    docs1 = [{"id": k, "text": v} for k, v in {**copies, **unrelated}.items()]
    for rank, docs in enumerate((docs0, docs1)):
        (tmp_path / "in" / f"{rank:05d}.jsonl").write_text("".join(json.dumps(d) + "\n" for d in docs))

    cfg, ex, mh = MinhashConfig(seed=1), ExecutorConfig(tasks=2, workers=1), tmp_path / "minhash"
    reader = lambda: JsonlReader(str(tmp_path / "in"), compression=None)  # noqa: E731
    run_phase([reader(), FastMinhashSignature(str(mh / "sigs"), cfg)], ex, tmp_path / "logs" / "sig", "sig")
    run_phase([MinhashDedupBuckets(str(mh / "sigs"), str(mh / "buckets"), config=cfg)], ex,
              tmp_path / "logs" / "buckets", "buckets", tasks=cfg.num_buckets)
    run_phase([MinhashDedupCluster(str(mh / "buckets"), str(mh / "remove"), config=cfg)], ex,
              tmp_path / "logs" / "cluster", "cluster", tasks=1)
    removed_dir = tmp_path / "removed"
    run_phase([reader(), MinhashDedupFilter(str(mh / "remove"), exclusion_writer=exclusion_writer(str(removed_dir)))],
              ex, tmp_path / "logs" / "filter", "filter")

    assert {d.id for d in read_excluded(removed_dir)} == set(copies)
